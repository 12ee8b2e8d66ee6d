"""The PyTorch backend: `Recognizer` decodes with the MASTER module (attention maps included)."""

from __future__ import annotations

from pathlib import Path

import torch

from masterocr.assets import shipped_files
from masterocr.charset import Charset
from masterocr.errors import UserError
from masterocr.formats.load import load_model
from masterocr.model import MASTER
from masterocr.runtime.base import BaseRecognizer, Decoded
from masterocr.runtime.fast import optimize

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class Recognizer(BaseRecognizer):
    """Reads text from word crops with PyTorch. `predict` takes paths, bytes, PIL images or arrays."""

    backend = "torch"
    supports_attention = True

    def __init__(
        self,
        model: MASTER | str | None = None,
        charset: Charset | None = None,
        device: str | torch.device = "cpu",
        dtype: str = "fp32",
        decode: str | None = None,
        window: int | None = None,
    ) -> None:
        """`Recognizer()` loads the default weights, `Recognizer("line")` a shipped model by name (assets
        .SHIPPED_MODELS); or give a model and its charset.

        `dtype`: "fp32", "bf16" (GPUs; on a CPU without AMX it is slower than fp32) or "fp16" (GPUs only).
        `decode`: "attention", "ctc" or "joint" (model/decoding.py; default: the model config's `decode`).
        `window`: lines wider than this many input pixels are read in overlapping windows and the texts
        merged (runtime/windows.py); None (the default) refuses lines wider than the model's img_w.
        """
        weights_path = None
        if model is None or isinstance(model, str):
            model, charset, weights_path = load_model(None if model is None else shipped_files(model))
        device = torch.device(device)
        if dtype not in DTYPES:
            raise UserError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
        if dtype == "fp16" and device.type == "cpu":
            raise UserError("fp16 inference needs a GPU; use bf16 or fp32 on the CPU")
        super().__init__(model.cfg, charset or Charset.default(), device, weights_path, dtype, decode, window)
        self.dtype = DTYPES[dtype]
        self.model = model.to(self.device, self.dtype).eval()
        self.num_parameters = sum(p.numel() for p in self.model.parameters())

    @classmethod
    def from_checkpoint(
        cls, path: str | Path | None = None, device: str | torch.device = "cpu", int8: bool = False,
        dtype: str = "fp32", decode: str | None = None, window: int | None = None,
    ) -> Recognizer:
        """Load a training checkpoint (.pth, weights_only) or shipped weights (.safetensors); None = shipped.

        `int8=True` (CPU only) folds conv+BN and quantizes the decoder's Linear layers to dynamic int8;
        `bench/accuracy.py` measures what that costs in accuracy. `decode`, `window`: as `Recognizer`.
        """
        if int8 and dtype != "fp32":
            raise UserError("int8 replaces the float dtype: pass int8 or a dtype, not both")
        if int8 and torch.device(device).type != "cpu":
            raise UserError("int8 inference runs on the CPU only; drop --int8 or use --device cpu")
        model, charset, weights_path = load_model(path)
        if int8:
            model = optimize(model, fold_bn=True, int8=True)
        rec = cls(model, charset, device, dtype, decode, window)
        rec.weights_path = weights_path
        rec.variant = "int8" if int8 else dtype
        return rec

    def decode_batch(
        self, images: torch.Tensor, return_attention: bool = False, widths: torch.Tensor | None = None
    ) -> Decoded:
        """Decoding in this recognizer's mode; attention (B, T, S) when asked (not in ctc mode)."""
        images = images.to(self.device, self.dtype)
        out = self.model.decode(images, return_attention=return_attention, widths=widths, mode=self.decode)
        attention = out.attention.float().cpu() if return_attention and out.attention is not None else None
        spans = None if out.spans is None else out.spans.tolist()
        return Decoded(out.tokens.tolist(), out.probs.tolist(), attention, spans)
