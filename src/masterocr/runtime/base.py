"""The recognizer interface: preprocessing, batching and post-processing, for every backend (files and folders:
runtime.files).

A backend implements only `decode_batch` (greedy decoding of a preprocessed batch); the rest lives here, so
the PyTorch and onnxruntime recognizers read images, batch them, report unreadable ones and turn tokens into
text the same way.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from masterocr.charset import EOS, NUM_SPECIAL, UNK, Charset
from masterocr.data.images import ImageError, load_image
from masterocr.data.transforms import ModelInput
from masterocr.errors import UserError
from masterocr.limits import MAX_BATCH, check_count
from masterocr.model import MasterConfig
from masterocr.model.backbone import Backbone


def line_attention(attention: torch.Tensor, widths: torch.Tensor, rows: int) -> list[torch.Tensor]:
    """A padded batch of lines' attention (B, T, rows * cols of the batch, row-major as MASTER.decode returns
    it) as each line's own maps (T, rows * its cols): the padding's columns go, so a page draws rows x cols."""
    batch_cols = attention.size(-1) // rows
    cols = Backbone.output_widths(torch.as_tensor(widths, dtype=torch.long)).clamp(max=batch_cols)
    grid = attention.reshape(attention.size(0), attention.size(1), rows, batch_cols)
    return [grid[i, :, :, :n].reshape(attention.size(1), rows * n) for i, n in enumerate(cols.tolist())]


@dataclass
class Prediction:
    """One image's reading: `text` and `score` (None when the image could not be read, and `error` says why),
    `char_scores` (one per character, empty when unknown). The same four keys come back from the CLI's JSON,
    the HTTP service and `to_dict`."""

    text: str | None
    score: float | None
    char_scores: list[float] = field(default_factory=list)
    error: str | None = None
    attention: list[list[float]] | None = None  # per character, weights over the (H/8)x(W/4) memory

    def to_dict(self) -> dict:
        """The result shape shared by the CLI's JSON, the HTTP service and Python: text, score, char_scores
        (a list, empty when unknown), error (None when read)."""
        return {"text": self.text, "score": self.score, "char_scores": list(self.char_scores), "error": self.error}

    def to_json(self, filename: str) -> dict:
        """A predict_result.json entry: the filename, the result shape, and the original's `result` and
        `pred_score` keys beside it for the original's tools."""
        return {"filename": filename, **self.to_dict(), "result": self.text, "pred_score": self.score}


@dataclass
class Decoded:
    """What a backend's greedy decoding returns for a batch of B images."""

    tokens: list[list[int]]  # per image, without SOS, PAD after EOS
    probs: list[list[float]]  # per image, the top probability at each step, 0 after EOS
    attention: torch.Tensor | None = None  # (B, T, S) float32 on the CPU, when asked and the backend has it


def tokens_to_prediction(charset: Charset, tokens: list[int], probs: list[float]) -> Prediction:
    """Text and scores of one decoded row. Score: mean top probability up to and including EOS, UNK steps
    skipped (the original's definition); char_scores: one per emitted character."""
    text, char_scores, kept = [], [], []
    for tok, p in zip(tokens, probs):
        if tok == UNK:
            continue
        kept.append(p)
        if tok == EOS:
            break
        if tok >= NUM_SPECIAL:
            symbol = charset.symbol(tok)  # NFKC-folded, as the labels were
            text.append(symbol)
            char_scores.extend([round(float(p), 6)] * len(symbol))
    score = float(sum(kept) / len(kept)) if kept else 0.0
    return Prediction("".join(text), round(score, 6), char_scores)


class BaseRecognizer(abc.ABC):
    """Reads text from word crops. `predict` takes paths, bytes, PIL images or arrays.

    Every recognizer carries its model's config and charset, the file or folder its weights came from
    (`weights_path`, None for an in-memory model) and its variant: "fp32", "bf16", "fp16", "int8" (torch) or
    "onnx", "onnx-int8" (onnxruntime).
    """

    backend: str  # the library that runs the model: "torch" or "onnxruntime"
    supports_attention: bool

    def __init__(
        self, cfg: MasterConfig, charset: Charset, device: torch.device, weights_path: Path | None, variant: str
    ) -> None:
        self.cfg = cfg
        self.model_input = ModelInput.from_config(cfg)
        self.charset = charset
        self.device = device
        self.weights_path = weights_path
        self.variant = variant
        self.num_parameters: int | None = None

    @abc.abstractmethod
    def decode_batch(
        self, images: torch.Tensor, return_attention: bool = False, widths: torch.Tensor | None = None
    ) -> Decoded:
        """Greedy decoding of a preprocessed batch (B, C, H, W); `widths` (B,): the valid pixel widths of a
        right-padded batch of lines (variable-width models)."""

    def __call__(self, images, **kwargs) -> list[Prediction]:
        return self.predict(images, **kwargs)

    def preprocess(self, image) -> torch.Tensor:
        """One image (path, bytes, PIL image or array) -> the model's input (C, H, W); for a variable-width
        model (C, H, w), its own width, w <= img_w (wider lines are refused)."""
        name = str(image) if isinstance(image, (str, os.PathLike)) else "image"
        return self.model_input.tensor(load_image(image), name)

    @torch.inference_mode()
    def predict_tensors(
        self, batch: torch.Tensor, return_attention: bool = False, widths: torch.Tensor | None = None
    ) -> list[Prediction]:
        """Decode a preprocessed batch (B, C, H, W); `attention` stays None where the backend has none.
        `widths`: valid widths of a right-padded batch of lines (see data.transforms.ModelInput.batch)."""
        out = self.decode_batch(batch, return_attention and self.supports_attention, widths)
        preds = [tokens_to_prediction(self.charset, t, p) for t, p in zip(out.tokens, out.probs)]
        if out.attention is not None:
            maps = out.attention if widths is None else line_attention(out.attention, widths, self.cfg.img_h // 8)
            for i, pred in enumerate(preds):
                pred.attention = maps[i][: len(pred.text)].tolist()
        return preds

    def predict(
        self, images: Iterable | object, batch_size: int = 32, return_attention: bool = False
    ) -> list[Prediction]:
        """Recognize each image, in input order; an unreadable one (a bad path, a NUL in a name, a value that is
        no image) gets a Prediction with `error` set and the rest go on. A bad `batch_size` or
        `return_attention` is a UserError saying what to pass."""
        check_count("batch_size", batch_size, 1, MAX_BATCH, fix="pass the number of images per forward pass")
        if not isinstance(return_attention, bool):
            raise UserError(f"return_attention = {return_attention!r}: pass True or False")
        if return_attention and not self.supports_attention:
            raise UserError(f"the {self.backend} backend does not return attention maps; use the torch backend")
        single = not isinstance(images, Sequence) or isinstance(images, (str, bytes, os.PathLike))
        items = [images] if single else list(images)
        results: list[Prediction | None] = [None] * len(items)
        tensors, index = [], []
        for i, item in enumerate(items):
            try:
                tensors.append(self.preprocess(item))
                index.append(i)
            except (ImageError, UserError) as exc:
                results[i] = Prediction(None, None, error=str(exc))
            except (ValueError, TypeError, OSError) as exc:  # e.g. a NUL in a path: this item's error alone
                results[i] = Prediction(None, None, error=f"{str(item)[:200]!r}: cannot be read ({exc})")
        if self.model_input.variable_width:  # lines of like widths batched together: less padding, same texts
            order = sorted(range(len(tensors)), key=lambda k: tensors[k].size(-1))
            tensors, index = [tensors[k] for k in order], [index[k] for k in order]
        for start in range(0, len(tensors), batch_size):
            batch, widths = self.model_input.batch(tensors[start : start + batch_size])
            preds = self.predict_tensors(batch, return_attention, widths)
            for j, pred in zip(index[start : start + batch_size], preds):
                results[j] = pred
        return results[:1] if single else results  # type: ignore[return-value]
