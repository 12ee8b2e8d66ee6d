"""Text-line detection with a kept, pretrained DB detector (PaddleOCR's PP-OCR det, Apache-2.0) run through
onnxruntime; the ONNX file is the one a PyPI wheel installs, found through importlib, never downloaded.

Two detectors are known by name: "ppocrv4" (PP-OCRv4 det, in rapidocr-onnxruntime 1.4.4) and "ppocrv6"
(PP-OCRv6 small det, in rapidocr 3.10.0). Only the ONNX file is used from those packages; nothing of
theirs is imported (importing them would pull in OpenCV).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from masterocr.errors import UserError
from masterocr.page.dbpost import boxes_from_map

PAGE_EXTRA = "pip install 'masterocr[page]'"


@dataclass(frozen=True)
class DetectorFile:
    package: str  # the module the wheel installs
    wheel: str  # the pip requirement that brings it
    path: str  # the ONNX file inside the package


DETECTORS = {
    "ppocrv4": DetectorFile("rapidocr_onnxruntime", "rapidocr-onnxruntime==1.4.4", "models/ch_PP-OCRv4_det_infer.onnx"),
    "ppocrv6": DetectorFile("rapidocr", "rapidocr==3.10.0", "models/PP-OCRv6_det_small.onnx"),
}
DEFAULT_DETECTOR = "ppocrv4"

# Input size, a rule set before any page was measured: PaddleOCR's detectors are trained on images whose text is
# roughly as tall as on a 150-dpi page, so a page is fed at its own resolution (both sides rounded to the
# network's stride 32), scaled down only when its longer side passes MAX_SIDE (a 200-dpi A4 page fits) and up
# when its shorter side is under MIN_SIDE (the peers' own minimum, 736).
STRIDE = 32
MAX_SIDE = 2400
MIN_SIDE = 736
MEAN, STD = 0.5, 0.5  # the detectors' normalisation, (x / 255 - 0.5) / 0.5


def missing_extra(what: str) -> UserError:
    """The one-line error for a missing optional package of the page reader."""
    return UserError(f"reading pages needs {what}; install the page extra: {PAGE_EXTRA}")


def detector_path(name: str) -> Path:
    """The ONNX file of detector `name`, inside its installed wheel."""
    if name not in DETECTORS:
        raise UserError(f"no detector {name!r}; choose one of {', '.join(DETECTORS)} or tesseract")
    entry = DETECTORS[name]
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"detector {name} needs {entry.wheel} (its ONNX file ships in that wheel): "
                        f"pip install '{entry.wheel}' or {PAGE_EXTRA}")
    path = Path(next(iter(spec.submodule_search_locations))) / entry.path
    if not path.is_file():
        raise UserError(f"detector {name}: {path} is missing from the installed {entry.wheel}; reinstall it")
    return path


def input_size(width: int, height: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """The detector's input (w, h) for a page of width x height: the rule above."""
    scale = 1.0
    if max(width, height) > max_side:
        scale = max_side / max(width, height)
    elif min(width, height) < MIN_SIDE:
        scale = min(MIN_SIDE / min(width, height), max_side / max(width, height))
    return (max(STRIDE, round(width * scale / STRIDE) * STRIDE), max(STRIDE, round(height * scale / STRIDE) * STRIDE))


class DBDetector:
    """Finds text lines: `detect(image)` -> [(quad (4, 2) in image pixels, score)]."""

    def __init__(self, name: str = DEFAULT_DETECTOR, threads: int | None = None, max_side: int = MAX_SIDE) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise missing_extra("onnxruntime") from exc
        try:
            import pyclipper  # noqa: F401  (the unclip step needs it; say so before the first page)
        except ImportError as exc:
            raise missing_extra("pyclipper") from exc
        self.name = name
        self.max_side = max_side
        opts = ort.SessionOptions()
        if threads is not None:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(detector_path(name)), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def probability_map(self, image: Image.Image) -> np.ndarray:
        """The detector's text probability map (h, w) at its input size."""
        w, h = input_size(*image.size, self.max_side)
        rgb = image.convert("RGB").resize((w, h), Image.BILINEAR)
        x = (np.asarray(rgb, dtype=np.float32)[:, :, ::-1] / 255.0 - MEAN) / STD  # trained on BGR images
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        return self.session.run(None, {self.input_name: x})[0][0, 0]

    def detect(self, image: Image.Image) -> list[tuple[np.ndarray, float]]:
        """Text-line quads in `image`'s pixel coordinates with their scores."""
        prob = self.probability_map(image)
        sx, sy = image.size[0] / prob.shape[1], image.size[1] / prob.shape[0]
        out = []
        for quad, score in boxes_from_map(prob):
            quad = quad * np.array([sx, sy])
            quad[:, 0] = quad[:, 0].clip(0, image.size[0])
            quad[:, 1] = quad[:, 1].clip(0, image.size[1])
            out.append((quad, score))
        return out
