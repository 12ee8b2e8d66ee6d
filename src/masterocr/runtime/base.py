"""The recognizer interface: preprocessing, batching, folder prediction and post-processing, for every backend.

A backend implements only `decode_batch` (greedy decoding of a preprocessed batch); the rest lives here, so
the PyTorch and onnxruntime recognizers read images, batch them, report unreadable ones and turn tokens into
text the same way.
"""

from __future__ import annotations

import abc
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from masterocr.charset import EOS, NUM_SPECIAL, UNK, Charset
from masterocr.data.folders import (
    FolderScan,
    check_predict_folders,
    escape_name,
    remove_stale,
    scan_folder,
    terminal_safe,
    write_json_atomic,
)
from masterocr.data.images import ImageError, load_image
from masterocr.data.transforms import line_width, pad_batch, preprocess, preprocess_line
from masterocr.errors import UserError
from masterocr.model import MasterConfig
from masterocr.model.backbone import Backbone
from masterocr.model.config import DECODE_MODES
from masterocr.runtime.locations import attention_ranges, frame_ranges, place
from masterocr.runtime.windows import Piece, check_window, merge_pieces, split_line, window_starts

log = logging.getLogger(__name__)


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
    text: str | None
    score: float | None
    char_scores: list[float] = field(default_factory=list)
    error: str | None = None
    attention: list[list[float]] | None = None  # per character, weights over the (H/8)x(W/4) memory
    # per character, the x-range [x0, x1) where it was read (runtime/locations.py): in the model's input from
    # predict_tensors, in the original image's pixels from predict(..., return_locations=True)
    char_ranges: list[list[float]] | None = None

    def to_json(self, filename: str) -> dict:
        """The original's predict_result.json entry, plus an error when the image could not be read."""
        entry = {"filename": filename, "result": self.text, "pred_score": self.score}
        if self.error is not None:
            entry["error"] = self.error
        return entry


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
        c = self.cfg
        if self.window is None or line_width(img, c.img_h) <= self.window:
            return [(0, self._input(img, source))]
        window_starts(line_width(img, c.img_h), self.window)  # refuses a line of too many windows, unread
        return split_line(preprocess(img, c.img_h, line_width(img, c.img_h), c.in_channels), self.window)

    def _input(self, img, source) -> torch.Tensor:
        """A loaded image -> the model's input; `source` names it in errors."""
        c = self.cfg
        if c.variable_width:
            name = str(source) if isinstance(source, (str, os.PathLike)) else "image"
            return preprocess_line(img, c.img_h, c.img_w, c.in_channels, name)
        return preprocess(img, c.img_h, c.img_w, c.in_channels, c.keep_ratio)

    @torch.inference_mode()
    def predict_tensors(
        self, batch: torch.Tensor, return_attention: bool = False, widths: torch.Tensor | None = None
    ) -> list[Prediction]:
        """Decode a preprocessed batch (B, C, H, W); `attention` stays None where the backend has none.
        `widths`: valid widths of a right-padded batch of lines (see data.transforms.pad_batch). Each
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
        """Recognize each image, in input order; an unreadable one gets a Prediction with `error` set and the
        rest go on. `return_locations`: each prediction's `char_ranges` in the original image's pixels (CTC
        frames in ctc mode, attention maps otherwise: the torch backend only)."""
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
        if self.cfg.variable_width:  # lines of like widths batched together: less padding, same texts
            order = sorted(range(len(tensors)), key=lambda k: tensors[k].size(-1))
            tensors, index = [tensors[k] for k in order], [index[k] for k in order]
        parts: dict[int, list[tuple[int, Prediction]]] = {}
        for start in range(0, len(tensors), batch_size):
            chunk = tensors[start : start + batch_size]
            batch, widths = pad_batch(chunk) if self.cfg.variable_width else (torch.stack(chunk), None)
            if widths is None:  # the fixed-width call, as subclasses overriding predict_tensors know it
                preds = self.predict_tensors(batch, want_maps)
            else:
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

    def predict_folder(
        self, folder: str | Path, output_folder: str | Path, batch_size: int = 32, progress: bool = True
    ) -> tuple[Path, list[dict]]:
        """Recognize every image in `folder` and write output_folder/predict_result.json (the original's format).

        An older predict_result.json there is removed before inference starts, so a run that fails leaves none.
        The result is written atomically. Label and document files kept beside the images (data.folders.
        NOT_IMAGES), hidden files and subfolders are skipped with a warning; links to nothing, link loops and
        FIFOs get an entry with the reason, never opened; every other file gets an entry, with the reason when
        it cannot be read. A name that is not valid UTF-8 is written escaped (data.folders.escape_name) with
        "name_escaped": true."""
        if batch_size < 1:
            raise UserError(f"batch size must be at least 1, got {batch_size}")
        check_predict_folders(folder, output_folder)
        folder, out = Path(folder), Path(output_folder)
        scan = scan_folder(folder)
        _warn_passed_over(folder, scan)
        if not scan.images and not scan.refused:
            raise UserError(f"image folder {terminal_safe(str(folder))} holds no image files")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create output folder {out} ({exc.strerror})") from exc
        result = out / "predict_result.json"
        remove_stale(result)
        by_path = {path: Prediction(None, None, error=f"{path}: {why}; not read") for path, why in scan.refused}
        for start in tqdm(range(0, len(scan.images), batch_size), desc="predict", disable=not progress, leave=False):
            chunk = scan.images[start : start + batch_size]
            by_path.update(zip(chunk, self.predict(chunk, batch_size=batch_size)))
        entries = [_entry(path.name, by_path[path]) for path in sorted(by_path)]
        write_json_atomic(result, entries)
        return result, entries


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


def _entry(name: str, pred: Prediction) -> dict:
    """The JSON entry of one file, its name and error escaped when not valid UTF-8."""
    shown, escaped = escape_name(name)
    entry = pred.to_json(shown)
    if "error" in entry:
        entry["error"] = escape_name(entry["error"])[0]
    if escaped:
        entry["name_escaped"] = True
    return entry


def _warn_passed_over(folder: Path, scan: FolderScan) -> None:
    """One warning per kind of entry that gets no row: label/document files, hidden files, subfolders."""
    for what, paths in (("label/document files", scan.skipped), ("hidden files", scan.hidden),
                        ("subfolders", scan.folders)):
        if paths:
            names = ", ".join(terminal_safe(p.name) for p in paths[:5]) + (", ..." if len(paths) > 5 else "")
            log.warning("skipped %d %s in %s: %s", len(paths), what, terminal_safe(str(folder)), names)
    for path, why in scan.refused:
        log.warning("not reading %s: %s", terminal_safe(str(path)), why)
