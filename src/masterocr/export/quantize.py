"""int8 ONNX graphs: static int8 convolutions in the encoder, dynamic int8 matmuls in the decoder step.

The encoder's activations are calibrated on rendered synthetic words (training fonts), never on evaluation
images. Weights are int8 per output channel with `reduce_range` (7-bit): CPUs without VNNI multiply u8 x s8
pairs into saturating 16-bit sums, and full-range weights lost 3.7 points of word accuracy here, 7-bit none.
The accuracy change on the shipped model is measured by `bench/accuracy.py` (variant `onnx-int8`).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from masterocr.data.folders import list_image_files
from masterocr.data.images import ImageError, load_image
from masterocr.data.synth import SynthDataset, SynthLineDataset
from masterocr.data.transforms import ModelInput
from masterocr.errors import UserError
from masterocr.export.onnx import export_onnx
from masterocr.formats.load import charset_of
from masterocr.formats.onnx_layout import DECODER_FILE, ENCODER_FILE, META_FILE, read_meta, write_meta
from masterocr.imports import check_installed

log = logging.getLogger(__name__)


INT8_FEATURE = "int8 ONNX graphs (masterocr export --int8)"


def synthetic_calibration(meta: dict, count: int = 128, seed: int = 0) -> np.ndarray:
    """`count` preprocessed synthetic images (N, C, H, W) float32 for the model described by `meta`: words for a
    word model, lines (training faces, right-padded to the model's width) for a variable-width one."""
    cfg, charset = meta["model_config"], charset_of(meta)
    if cfg.get("variable_width"):
        ds = SynthLineDataset(
            charset=charset, height=cfg["img_h"], max_width=cfg["img_w"], in_channels=cfg["in_channels"],
            training=False, seed=seed, length=count, fonts="train", max_len=cfg["max_len"], pad_to=cfg["img_w"],
        )  # fmt: skip
    else:
        ds = SynthDataset(
            charset=charset, img_h=cfg["img_h"], img_w=cfg["img_w"], in_channels=cfg["in_channels"],
            max_len=cfg["max_len"], training=False, seed=seed, length=count, fonts="train",
            keep_ratio=cfg.get("keep_ratio", False),
        )  # fmt: skip
    return np.stack([ds[i][0].numpy() for i in range(count)]).astype(np.float32)


def quantize_exported(src: str | Path, dst: str | Path, calibration: np.ndarray, batch: int = 16) -> Path:
    """Write int8 versions of the fp32 graphs in `src` (from `export_model`) to `dst`; returns `dst`."""
    check_installed(INT8_FEATURE, "onnxruntime", extra="export")
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, dst = Path(src), Path(dst)
    meta = read_meta(src)
    if len(calibration) == 0:
        raise UserError("int8 calibration needs at least one image")
    if meta.get("quantized"):
        raise UserError(f"{src} is already quantized ({meta['quantized']})")
    dst.mkdir(parents=True, exist_ok=True)

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(calibration[i : i + batch] for i in range(0, len(calibration), batch))

        def get_next(self) -> dict | None:
            x = next(self.it, None)
            if x is None:
                return None
            feeds = {"images": np.ascontiguousarray(x, dtype=np.float32)}
            if lines:  # a variable-width encoder also takes the valid widths: the whole (padded) image here
                feeds["widths"] = np.full(len(x), x.shape[-1], dtype=np.int64)
            return feeds

    lines = bool(meta["model_config"].get("variable_width"))

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "encoder_prepared.onnx"
        # shape inference + graph cleanup; the symbolic pass cannot follow a dynamic width through the masks
        quant_pre_process(str(src / ENCODER_FILE), str(prepared), skip_symbolic_shape=lines)
        quantize_static(
            str(prepared), str(dst / ENCODER_FILE), Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
            reduce_range=True, op_types_to_quantize=["Conv"], activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            # this option's default path fails on per-channel conv biases in onnxruntime 1.32
            extra_options={"QDQDisableWeightAdjustForInt32Bias": True},
        )  # fmt: skip
    quantize_dynamic(str(src / DECODER_FILE), str(dst / DECODER_FILE), weight_type=QuantType.QInt8)
    meta["quantized"] = f"int8: static Conv (per-channel, 7-bit, {len(calibration)} synthetic images), dynamic MatMul"
    write_meta(dst, meta)
    return dst


def export_onnx_int8(
    checkpoint: str | Path | None, out_dir: str | Path, calib_count: int = 128, calib_images: str | Path | None = None
) -> Path:
    """Export `checkpoint` (None = shipped weights) and quantize it to int8 in `out_dir`.

    Calibration: `calib_images` (a folder of word crops from your training domain) or `calib_count` synthetic words.
    """
    if calib_count < 1:
        raise UserError(f"--calib-count must be >= 1, got {calib_count}")
    check_installed(INT8_FEATURE, "onnx", "onnxruntime", extra="export")
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(checkpoint, Path(tmp) / "fp32")
        meta = read_meta(fp32)
        if calib_images is not None:
            calibration = folder_calibration(calib_images, meta, calib_count)
        else:
            calibration = synthetic_calibration(meta, calib_count)
        out = Path(out_dir)
        if out.exists() and out.is_dir():
            for name in (ENCODER_FILE, DECODER_FILE, META_FILE):
                (out / name).unlink(missing_ok=True)
        quantize_exported(fp32, out, calibration)
    return out


def folder_calibration(folder: str | Path, meta: dict, count: int) -> np.ndarray:
    """Up to `count` readable images of `folder` (data.folders' rule: label and document files are not images),
    preprocessed for the model described by `meta` (lines padded to its full width, as the synthetic ones)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"calibration folder {folder} does not exist")
    model_input = ModelInput.from_config(meta["model_config"])
    arrays = []
    for path in list_image_files(folder)[0]:
        try:
            img = load_image(path)
        except ImageError as exc:
            log.warning("calibration: skipping %s (%s)", path, exc)
            continue
        arrays.append(model_input.full_width_tensor(img).numpy())
        if len(arrays) >= count:
            break
    if not arrays:
        raise UserError(f"calibration folder {folder} holds no readable image")
    return np.stack(arrays).astype(np.float32)
