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
from masterocr.data.transforms import ModelInput, line_width
from masterocr.errors import UserError
from masterocr.limits import MAX_BATCH, check_count
from masterocr.model import MasterConfig
from masterocr.model.backbone import Backbone
from masterocr.model.config import DECODE_MODES
from masterocr.runtime.locations import attention_ranges, frame_ranges, place
from masterocr.runtime.windows import Piece, check_window, merge_pieces, split_line, window_starts


def decoding_mode(cfg: MasterConfig, mode: str | None, source: object = None) -> str:
    """The decoding mode a recognizer runs: `mode`, or the model config's `decode` when None; a UserError
    for a mode that does not exist or that the model cannot run (ctc and joint need the CTC branch)."""
    mode = cfg.decode if mode is None else mode
    if mode not in DECODE_MODES:
        raise UserError(f"decoding mode {mode!r} is not one of {', '.join(DECODE_MODES)}")
    if mode != "attention" and not cfg.ctc_weight:
        name = "the in-memory model" if source is None else str(source)
        raise UserError(f"--decode {mode} needs a CTC branch, which {name} lacks (ctc_weight 0); "
                        "use --decode attention")
    return mode


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
    # per character, the x-range [x0, x1) where it was read (runtime/locations.py): in the model's input from
    # predict_tensors, in the original image's pixels from predict(..., return_locations=True)
    char_ranges: list[list[float]] | None = None

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
    spans: list[list[list[int]]] | None = None  # per image and step, the first and last CTC frame (ctc mode)


def tokens_to_prediction(
    charset: Charset, tokens: list[int], probs: list[float], ranges: list[tuple[int, int]] | None = None
) -> Prediction:
    """Text and scores of one decoded row. Score: mean top probability up to and including EOS, UNK steps
    skipped (the original's definition); char_scores: one per emitted character; char_ranges: `ranges` (one
    per step, where each was read) kept for the emitted characters."""
    text, char_scores, kept, where = [], [], [], []
    for i, (tok, p) in enumerate(zip(tokens, probs)):
        if tok == UNK:
            continue
        kept.append(p)
        if tok == EOS:
            break
        if tok >= NUM_SPECIAL:
            symbol = charset.symbol(tok)  # NFKC-folded, as the labels were
            text.append(symbol)
            char_scores.extend([round(float(p), 6)] * len(symbol))
            if ranges is not None and i < len(ranges):
                where.extend([list(ranges[i])] * len(symbol))
    score = float(sum(kept) / len(kept)) if kept else 0.0
    located = where if ranges is not None else None
    return Prediction("".join(text), round(score, 6), char_scores, char_ranges=located)


class BaseRecognizer(abc.ABC):
    """Reads text from word crops. `predict` takes paths, bytes, PIL images or arrays.

    Every recognizer carries its model's config and charset, the file or folder its weights came from
    (`weights_path`, None for an in-memory model) and its variant: "fp32", "bf16", "fp16", "int8" (torch) or
    "onnx", "onnx-int8" (onnxruntime).
    """

    backend: str  # the library that runs the model: "torch" or "onnxruntime"
    supports_attention: bool

    def __init__(
        self, cfg: MasterConfig, charset: Charset, device: torch.device, weights_path: Path | None, variant: str,
        decode: str | None = None, window: int | None = None,
    ) -> None:
        self.decode = decoding_mode(cfg, decode, weights_path)
        self.window = check_window(window, cfg.img_h, cfg.img_w, cfg.variable_width)
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

    @property
    def locates_characters(self) -> bool:
        """Whether this recognizer can say where each character was read: CTC frames, or attention maps."""
        return self.decode == "ctc" or self.supports_attention

    def __call__(self, images, **kwargs) -> list[Prediction]:
        return self.predict(images, **kwargs)

    def preprocess(self, image) -> torch.Tensor:
        """One image (path, bytes, PIL image or array) -> the model's input (C, H, W); for a variable-width
        model (C, H, w), its own width, w <= img_w (wider lines are refused)."""
        return self._input(load_image(image), image)

    def _inputs(self, img, source) -> list[tuple[int, torch.Tensor]]:
        """A loaded image -> the model's inputs with their left edges: the whole image, or with `window` the
        windows of a line wider than that (runtime/windows.py)."""
        width = line_width(img, self.cfg.img_h)
        if self.window is None or width <= self.window:
            return [(0, self._input(img, source))]
        window_starts(width, self.window)  # refuses a line of too many windows, unread
        return split_line(self.model_input.line_tensor(img), self.window)

    def _input(self, img, source) -> torch.Tensor:
        """A loaded image -> the model's input; `source` names it in errors."""
        name = str(source) if isinstance(source, (str, os.PathLike)) else "image"
        return self.model_input.tensor(img, name)

    @torch.inference_mode()
    def predict_tensors(
        self, batch: torch.Tensor, return_attention: bool = False, widths: torch.Tensor | None = None
    ) -> list[Prediction]:
        """Decode a preprocessed batch (B, C, H, W); `attention` stays None where the backend has none.
        `widths`: valid widths of a right-padded batch of lines (see data.transforms.ModelInput.batch). Each
        prediction's `char_ranges` (input pixels) come from the CTC frames (ctc mode) or the attention maps
        (when asked), else stay None."""
        out = self.decode_batch(batch, return_attention and self.supports_attention, widths)
        rows = self.cfg.img_h // 8
        maps = None
        if out.attention is not None:
            maps = out.attention if widths is None else line_attention(out.attention, widths, rows)
        preds = []
        for i, (t, p) in enumerate(zip(out.tokens, out.probs)):
            ranges = None
            if out.spans is not None:
                ranges = frame_ranges(out.spans[i])
            elif maps is not None:
                ranges = attention_ranges(maps[i], rows)
            pred = tokens_to_prediction(self.charset, t, p, ranges)
            if maps is not None:
                pred.attention = maps[i][: len(pred.text)].tolist()
            preds.append(pred)
        return preds

    def predict(
        self, images: Iterable | object, batch_size: int = 32, return_attention: bool = False,
        return_locations: bool = False,
    ) -> list[Prediction]:
        """Recognize each image, in input order; an unreadable one (a bad path, a NUL in a name, a value that is
        no image) gets a Prediction with `error` set and the rest go on. A bad `batch_size` or
        `return_attention` is a UserError saying what to pass. `return_locations`: each prediction's
        `char_ranges` in the original image's pixels (CTC frames in ctc mode, attention maps otherwise: the
        torch backend only)."""
        check_count("batch_size", batch_size, 1, MAX_BATCH, fix="pass the number of images per forward pass")
        for name, flag in (("return_attention", return_attention), ("return_locations", return_locations)):
            if not isinstance(flag, bool):
                raise UserError(f"{name} = {flag!r}: pass True or False")
        if return_attention and not self.supports_attention:
            raise UserError(f"the {self.backend} backend does not return attention maps; use the torch backend")
        if return_locations and not self.locates_characters:
            raise UserError(f"the {self.backend} backend locates characters in ctc decoding only (attention maps "
                            f"are torch's); use --decode ctc or the torch backend")
        want_maps = return_attention or (return_locations and self.decode != "ctc")
        single = not isinstance(images, Sequence) or isinstance(images, (str, bytes, os.PathLike))
        items = [images] if single else list(images)
        results: list[Prediction | None] = [None] * len(items)
        tensors, index, sizes = [], [], {}
        for i, item in enumerate(items):
            try:
                image = load_image(item)
                for offset, x in self._inputs(image, item):
                    tensors.append(x)
                    index.append((i, offset))
                sizes[i] = image.size
            except (ImageError, UserError) as exc:
                results[i] = Prediction(None, None, error=str(exc))
            except (ValueError, TypeError, OSError) as exc:  # e.g. a NUL in a path: this item's error alone
                results[i] = Prediction(None, None, error=f"{str(item)[:200]!r}: cannot be read ({exc})")
        if self.model_input.variable_width:  # lines of like widths batched together: less padding, same texts
            order = sorted(range(len(tensors)), key=lambda k: tensors[k].size(-1))
            tensors, index = [tensors[k] for k in order], [index[k] for k in order]
        parts: dict[int, list[tuple[int, Prediction]]] = {}
        for start in range(0, len(tensors), batch_size):
            chunk = tensors[start : start + batch_size]
            batch, widths = self.model_input.batch(chunk)
            preds = self.predict_tensors(batch, want_maps, widths)
            for (j, offset), pred in zip(index[start : start + batch_size], preds):
                parts.setdefault(j, []).append((offset, pred))
        for j, read in parts.items():
            pred = read[0][1] if len(read) == 1 else merge_windows(read)
            results[j] = self._finish(pred, sizes[j], return_attention, return_locations)
        return results[:1] if single else results  # type: ignore[return-value]

    def _finish(self, pred: Prediction, size: tuple[int, int], attention: bool, locations: bool) -> Prediction:
        """The prediction as asked: character ranges in the original image's pixels, or none; maps if asked."""
        if not attention:
            pred.attention = None
        pred.char_ranges = place(self.cfg, pred.char_ranges, size) if locations else None
        return pred


def merge_windows(read: list[tuple[int, Prediction]]) -> Prediction:
    """The predictions of a line's windows (left edge, prediction), left to right, as one: texts merged by
    alignment, character ranges moved to the line's pixels, the score the windows' mean."""
    pieces = []
    for offset, pred in sorted(read, key=lambda r: r[0]):
        if pred.text is None:  # a window that failed fails the line
            return pred
        ranges = None if pred.char_ranges is None else [[a + offset, b + offset] for a, b in pred.char_ranges]
        pieces.append(Piece(pred.text, pred.char_scores, ranges))
    merged = merge_pieces(pieces)
    score = round(sum(p.score or 0.0 for _, p in read) / len(read), 6)
    return Prediction(merged.text, score, merged.scores, char_ranges=merged.ranges)
