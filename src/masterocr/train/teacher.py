"""A CTC teacher for the line model's CTC branch: frame posteriors of a CTC recognizer, as soft targets.

The teacher is an ONNX CTC recognizer in PaddleOCR's layout (input (B, 3, 48, W) in [-1, 1], output (B, W/8,
classes) probabilities, class 0 the blank, its characters in the graph's "character" metadata, a space class
last): by default PP-OCRv6 small, which the rapidocr wheel (Apache-2.0) ships. It is used only while training
(`trainer.distill`), never by predicting. For each training batch it reads the lines (upscaled to its height),
keeps the top-k classes of each of its frames that map onto our classes (a character or its NFKC form in our
charset; the blank onto ours), renormalised, and resamples its frames onto ours (nearest frame centre): our
frame f covers input columns [2f, 2f + 2), theirs 8 px at 48 px high. A line is taught only when the teacher's
greedy reading matches its label within `max_cer` (whitespace and NFKC width ignored): a teacher that misreads a
line would teach its misreading.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from importlib import util as import_util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rapidfuzz.distance import Levenshtein

from masterocr.charset import UNK, Charset
from masterocr.errors import UserError
from masterocr.metrics import normalize_line
from masterocr.model.backbone import STRIDE
from masterocr.model.ctc import BLANK, FRAMES_PER_COLUMN

__all__ = ["CtcTeacher", "SoftTargets", "build_teacher", "distill_loss", "teacher_path"]

TEACHER_HEIGHT = 48
TEACHER_STRIDE = 8  # input columns per teacher frame
PX_PER_FRAME = STRIDE / FRAMES_PER_COLUMN  # input columns per frame of our CTC branch
NAMED = {"ppocrv6": ("rapidocr", "models/PP-OCRv6_rec_small.onnx")}  # the wheel's file, no download


def teacher_path(name_or_path: str) -> Path:
    """The ONNX file of a named teacher (from its installed wheel) or a path; a clear error when missing."""
    if name_or_path in NAMED:
        package, rel = NAMED[name_or_path]
        spec = import_util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise UserError(f"trainer.distill.teacher = {name_or_path}: the {package} package is not installed; "
                            "pip install 'masterocr[distill]' brings it")
        path = Path(next(iter(spec.submodule_search_locations))) / rel
    else:
        path = Path(name_or_path)
    if not path.is_file():
        raise UserError(f"trainer.distill.teacher = {name_or_path}: {path} is not a file; give an ONNX CTC "
                        "recognizer or a named one: " + ", ".join(NAMED))
    return path


def build_teacher(section, charset: Charset, cfg) -> CtcTeacher | None:
    """The teacher `trainer.distill` asks for (None when it is null); the model needs its CTC branch."""
    if section is None:
        return None
    if cfg.ctc_weight <= 0:
        raise UserError("trainer.distill teaches the CTC branch: set model_arch.args.ctc_weight above 0, or "
                        "remove trainer.distill")
    return CtcTeacher(teacher_path(section.teacher), charset, top_k=section.top_k, max_cer=section.max_cer,
                      threads=section.threads)


def class_map(teacher_chars: list[str], charset: Charset) -> np.ndarray:
    """Teacher class -> our class (-1: none). Teacher class 0 is the blank (ours: BLANK); a character maps onto
    its NFKC form when that is one character of ours, else onto itself when ours."""
    index = charset._index  # noqa: SLF001 (the charset's own lookup; encode() would count misses as unknown)
    out = np.full(len(teacher_chars), -1, dtype=np.int64)
    out[0] = BLANK
    for i, ch in enumerate(teacher_chars[1:], start=1):
        folded = unicodedata.normalize("NFKC", ch)
        idx = index.get(folded) if len(folded) == 1 else None
        idx = idx if idx is not None else index.get(ch)
        if idx is not None and idx > UNK:
            out[i] = idx
    return out


@dataclass
class SoftTargets:
    """Per line and frame of ours: the teacher's top classes (B, F, K) in our ids and their probabilities
    (zero for a class of theirs we lack); `taught` (B,) the lines whose teacher reading matched the label."""

    classes: torch.Tensor
    probs: torch.Tensor
    taught: torch.Tensor


class CtcTeacher:
    """Reads batches of our model's input with an ONNX CTC recognizer; `targets` gives the soft targets."""

    def __init__(self, path: str | Path, charset: Charset, *, top_k: int = 4, max_cer: float = 0.05,
                 threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise UserError("trainer.distill needs onnxruntime: pip install 'masterocr[distill]'") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        # every batch has its own width: onnxruntime's arena keeps what each shape took (1.5 GB after 60 random
        # widths and growing, against 0.66 GB flat without it)
        options.enable_cpu_mem_arena = False
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        if "character" not in meta:
            raise UserError(f"{path}: no 'character' metadata; the teacher must be a PaddleOCR-layout recognizer")
        self.chars = ["", *meta["character"].split("\n"), " "]
        self.map = class_map(self.chars, charset)
        self.top_k, self.max_cer = top_k, max_cer

    def read(self, images: torch.Tensor) -> np.ndarray:
        """Teacher probabilities (B, T, classes) of our padded batch (B, C, H, W) in [-1, 1]."""
        scale = TEACHER_HEIGHT / images.shape[-2]
        x = F.interpolate(images.float(), scale_factor=scale, mode="bilinear", align_corners=False)
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        return self.session.run(None, {self.session.get_inputs()[0].name: x.contiguous().numpy()})[0]

    def targets(self, images: torch.Tensor, widths: torch.Tensor, labels: list[str], frames: int) -> SoftTargets:
        """Soft targets for our `frames` frames of each line of the batch; `widths` (B,) the lines' columns."""
        probs = self.read(images)
        b, t, _ = probs.shape
        scale = TEACHER_HEIGHT / images.shape[-2]
        centre = (np.arange(frames) + 0.5) * PX_PER_FRAME * scale
        theirs = np.minimum((centre // TEACHER_STRIDE).astype(np.int64), t - 1)  # our frame -> their frame
        k = min(self.top_k, probs.shape[-1])
        top = np.argpartition(probs, -k, axis=-1)[..., -k:]  # (B, T, K), unordered
        top_p = np.take_along_axis(probs, top, -1)
        ours = self.map[top]
        top_p = np.where(ours >= 0, top_p, 0.0)
        top_p = top_p / np.maximum(top_p.sum(-1, keepdims=True), 1e-8)
        taught = np.zeros(b, dtype=bool)
        best = probs.argmax(-1)
        for i, (label, width) in enumerate(zip(labels, widths.tolist())):
            seen = int(np.ceil(width * scale / TEACHER_STRIDE))
            reading = normalize_line(self._greedy(best[i, :seen]), spaces=False)
            gold = normalize_line(label, spaces=False)
            taught[i] = Levenshtein.distance(reading, gold) <= self.max_cer * max(1, len(gold))
        return SoftTargets(torch.from_numpy(np.maximum(ours[:, theirs], 0)),
                           torch.from_numpy(top_p[:, theirs].astype(np.float32)), torch.from_numpy(taught))

    def _greedy(self, best: np.ndarray) -> str:
        keep = np.ones(len(best), dtype=bool)
        keep[1:] = best[1:] != best[:-1]
        return "".join(self.chars[c] for c in best[keep] if c != 0)


def distill_loss(log_q: torch.Tensor, soft: SoftTargets, frames: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of our CTC frames (log-probabilities (B, F, V), `ctc.frame_log_probs`) against the
    teacher's soft targets, the mean over the taught lines' valid frames (zero when no line is taught)."""
    n = log_q.shape[1]
    classes, probs = soft.classes[:, :n].to(log_q.device), soft.probs[:, :n].to(log_q.device)
    per_frame = -(probs * log_q.gather(-1, classes)).sum(-1)  # (B, F)
    valid = torch.arange(n, device=log_q.device)[None] < frames.to(log_q.device)[:, None]
    valid &= soft.taught.to(log_q.device)[:, None]
    return (per_frame * valid).sum() / valid.sum().clamp_min(1)
