"""Which backend reads with which model: `resolve_backend` and `load_recognizer`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from masterocr.assets import DEFAULT_MODEL, shipped_files, shipped_name, shipped_onnx
from masterocr.devices import parse_device
from masterocr.errors import UserError
from masterocr.formats.onnx_layout import default_onnx_path
from masterocr.limits import threads as cpu_threads
from masterocr.runtime.base import BaseRecognizer
from masterocr.runtime.onnx import OnnxRecognizer
from masterocr.runtime.torch import Recognizer


def resolve_backend(
    backend: str, checkpoint: str | Path | None, device: str | torch.device, int8: bool, dtype: str
) -> str:
    """ "auto" becomes "onnx" where the shipped int8 ONNX graphs are the model asked for and can run: no checkpoint,
    no MASTEROCR_WEIGHTS, a CPU, fp32 and no --int8 (torch-only options), onnxruntime installed, the graphs present.
    Anything else is "torch". Other backends pass through.

    The graphs read the shipped model 2-3 times faster at batch 1 on a CPU, with the same exact-match accuracy on
    the benchmarks (weights/MODEL_CARD.md); they return no attention maps."""
    if backend != "auto":
        return backend
    if checkpoint is not None or not _onnx_can_run(device, int8, dtype):
        return "torch"
    try:
        default_onnx_path()  # refuses under MASTEROCR_WEIGHTS (another model) and when the graphs are missing
    except UserError:
        return "torch"
    return "onnx"


def _onnx_can_run(device: str | torch.device, int8: bool, dtype: str) -> bool:
    """Whether int8 ONNX graphs can stand in for the torch model: a CPU, fp32, no --int8 (torch-only options)
    and onnxruntime installed."""
    if torch.device(device).type != "cpu" or dtype != "fp32" or int8:
        return False
    return importlib.util.find_spec("onnxruntime") is not None


def load_recognizer(
    checkpoint: str | Path | None = None,
    device: str | torch.device = "cpu",
    backend: str = "torch",
    int8: bool = False,
    dtype: str = "fp32",
    threads: int | None = None,
    model: str | None = None,
    decode: str | None = None,
    window: int | None = None,
) -> BaseRecognizer:
    """A Recognizer (backend "torch") or an OnnxRecognizer (backend "onnx": `checkpoint` is an exported folder,
    None the shipped int8 graphs); backend "auto" picks one as `resolve_backend` says.

    `threads`: CPU threads for inference (onnxruntime's intra-op threads; for the torch backend
    `torch.set_num_threads`, which is process-wide): the CPUs available by default, a larger count lowered to
    them with one logged line (masterocr.limits.threads). The onnx
    backend runs the decoder steps of batches under 32 images on one thread whatever `threads` says: they are
    too small to share (bench/onnx_threads.py); for the torch backend one thread was not faster at batch 1.

    `model`: a shipped model by name ("word", the default, "small" or "line"; assets.SHIPPED_MODELS); a
    `checkpoint` that is such a name and no file here means the same.
    `decode`: "attention", "ctc" or "joint" (default: the model's config); `window`: read lines wider than
    that in overlapping windows (runtime/windows.py; default off). As `Recognizer`'s.
    """
    device = parse_device(device)  # malformed or absent: one line with what is available
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise UserError(f"threads must be at least 1, got {threads!r}")
    threads = cpu_threads(threads)
    if model is None and checkpoint is not None and shipped_name(checkpoint):
        checkpoint, model = None, shipped_name(checkpoint)
    if model is not None and model != DEFAULT_MODEL:
        if checkpoint is not None:
            raise UserError(f"--model {model} and --checkpoint both name a model; pass one")
        onnx = backend == "onnx" or (backend == "auto" and _onnx_can_run(device, int8, dtype)
                                     and shipped_onnx(model).is_dir())
        backend = "onnx" if onnx else ("torch" if backend == "auto" else backend)
        checkpoint = shipped_files(model, onnx=onnx)
    backend = resolve_backend(backend, checkpoint, device, int8, dtype)
    if backend == "onnx":
        if int8 or dtype != "fp32":
            raise UserError(
                "--int8/--dtype apply to the torch backend; the ONNX graphs run as exported "
                "(`masterocr export --int8` makes int8 graphs)"
            )
        return OnnxRecognizer.from_path(checkpoint, threads, decode, window)
    if backend != "torch":
        raise UserError(f"backend {backend!r} is not auto, torch or onnx")
    torch.set_num_threads(threads)
    return Recognizer.from_checkpoint(checkpoint, device=device, int8=int8, dtype=dtype, decode=decode, window=window)
