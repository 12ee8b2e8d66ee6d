"""Whole pages: find the text lines, cut them out, read them, put them in reading order."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from masterocr.data.images import load_image
from masterocr.errors import UserError
from masterocr.page.boxes import load_boxes, tesseract_lines
from masterocr.page.crops import TALL, crop_quad, split_line
from masterocr.page.detector import DEFAULT_DETECTOR, MAX_SIDE, DBDetector
from masterocr.page.order import reading_order
from masterocr.page.pdf import DPI, is_pdf, parse_pages, render_pages

log = logging.getLogger(__name__)

# The shipped recognizer that reads a page's lines, chosen on synthetic pages (docs/pages.md): the word model,
# word by word, read them with 0.18 % CER where the line model, in pieces, had 2.95 % (bench/synth_pages.py)
DEFAULT_MODEL = "word"
MAX_LINES = 1000  # lines read on one page; a page of noise past this keeps its highest-scoring boxes
# The line model reads up to about 50 characters well and breaks down past that (weights/MODEL_CARD.md,
# "master_line"); a long line is read in pieces cut at word gaps, each at most this many times its height
# (~35 characters of running text).
PIECE_RATIO = 16.0


@dataclass
class PageLine:
    polygon: list[list[float]]
    text: str
    score: float
    char_scores: list[float] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"polygon": self.polygon, "text": self.text, "score": self.score, "char_scores": self.char_scores}


@dataclass
class PageResult:
    """One page read: its lines in reading order, in the page image's pixel coordinates."""

    name: str  # the output stem: PAGE for an image, DOC.p0001 for a PDF's first page
    width: int
    height: int
    lines: list[PageLine]
    seconds: float = 0.0
    image: Image.Image | None = field(default=None, repr=False)  # the page as read (for overlays)

    @property
    def text(self) -> str:
        """The page's text, one line per line, in reading order."""
        return "\n".join(line.text for line in self.lines)

    def to_json(self) -> dict:
        return {"width": self.width, "height": self.height, "lines": [line.to_json() for line in self.lines]}


def _join(preds: list) -> tuple[str, float, list[float]]:
    """The pieces of one line read in order, joined by spaces (a space scores as its weaker neighbour)."""
    text, scores, weighted, weight = "", [], 0.0, 0
    for p in preds:
        if p.text is None or p.text == "":
            continue
        if text:
            text += " "
            scores.append(min(scores[-1], p.char_scores[0]) if scores and p.char_scores else 0.0)
        text += p.text
        scores += p.char_scores
        weighted += p.score * (len(p.text) + 1)
        weight += len(p.text) + 1
    return text, round(weighted / weight, 6) if weight else 0.0, scores


def _upright(bounds: list[list[float]], width: int) -> list[list[float]]:
    """Line bounds in the frame of the text: when most lines are tall (a page turned a quarter clockwise, its
    crops turned back by crops.crop_quad), the page's x runs down the text and its first line is on the right."""
    tall = sum(1 for x0, y0, x1, y1 in bounds if (y1 - y0) > TALL * (x1 - x0))
    if not bounds or 2 * tall <= len(bounds):
        return bounds
    return [[y0, width - x1, y1, width - x0] for x0, y0, x1, y1 in bounds]


class PageReader:
    """Reads whole pages: `read(path)` for an image or PDF file, `read_image(image)` for one page.

    detector: "ppocrv4" (default), "ppocrv6" or "tesseract". model: the shipped recognizer ("word", default,
    or "line"); `recognizer` passes one already loaded instead. The word model reads one word at a time, cut
    at word gaps; the line model reads long lines in pieces cut there."""

    def __init__(self, detector: str = DEFAULT_DETECTOR, model: str = DEFAULT_MODEL, recognizer=None,
                 threads: int | None = None, max_side: int = MAX_SIDE, batch_size: int = 16,
                 tesseract_lang: str = "eng", piece_ratio: float = PIECE_RATIO) -> None:
        if detector != "tesseract":
            self.detector = DBDetector(detector, threads=threads, max_side=max_side)
        self.detector_name = detector
        self.tesseract_lang = tesseract_lang
        if recognizer is None:
            from masterocr.runtime.select import load_recognizer

            recognizer = load_recognizer(model=model, backend="auto", threads=threads)
        self.recognizer = recognizer
        # a fixed-width word model reads one word at a time; a line model pieces of at most piece_ratio x height
        self.piece_ratio = None if not recognizer.cfg.variable_width else piece_ratio
        self.batch_size = batch_size

    def detect(self, image: Image.Image) -> list[np.ndarray]:
        """Line polygons on the page, at most MAX_LINES (the detector's most confident)."""
        if self.detector_name == "tesseract":
            return tesseract_lines(image, self.tesseract_lang)[:MAX_LINES]
        found = self.detector.detect(image)
        if len(found) > MAX_LINES:
            log.warning("%d text boxes found on one page; reading the %d most confident", len(found), MAX_LINES)
            found = sorted(found, key=lambda f: -f[1])[:MAX_LINES]
        return [quad for quad, _ in found]

    def read_image(self, image, name: str = "page", boxes: list[np.ndarray] | None = None) -> PageResult:
        """Read one page (path, bytes, PIL image or array); `boxes`: line polygons to read instead of detecting."""
        start = time.perf_counter()
        page = load_image(image, name=name)
        quads = self.detect(page) if boxes is None else boxes
        crops, owners = [], []
        for i, quad in enumerate(quads):
            crop = crop_quad(page, quad)
            if crop is None:
                continue
            pieces = split_line(crop, self.piece_ratio)
            crops += pieces
            owners += [i] * len(pieces)
        preds = self.recognizer.predict(crops, batch_size=self.batch_size) if crops else []
        per_line: dict[int, list] = {}
        for i, p in zip(owners, preds):
            per_line.setdefault(i, []).append(p)
        lines, bounds = [], []
        for i, ps in per_line.items():
            text, score, char_scores = _join(ps)
            if not text:
                continue
            q = np.asarray(quads[i], dtype=np.float64)
            lines.append(PageLine([[round(float(x), 1), round(float(y), 1)] for x, y in q], text, score, char_scores))
            bounds.append([q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max()])
        ordered = [lines[k] for k in reading_order(_upright(bounds, page.width))]
        return PageResult(name, page.width, page.height, ordered, time.perf_counter() - start, page)

    def read(self, path: str | Path, pages: str | None = None, boxes: str | Path | None = None,
             dpi: int = DPI) -> list[PageResult]:
        """Read an image file (one page) or a PDF (each page picked by `pages`, e.g. "1-3")."""
        path = Path(path)
        given = load_boxes(boxes) if boxes is not None else None
        if not is_pdf(path):
            if pages is not None:
                raise UserError(f"{path}: --pages applies to PDFs; this is an image")
            return [self.read_image(load_image(path), path.stem, given)]
        out = []
        for number, image in render_pages(path, parse_pages(pages), dpi):
            if given is not None and out:
                raise UserError(f"{path}: --boxes gives one page's boxes; pick one page with --pages")
            out.append(self.read_image(image, f"{path.stem}.p{number:04d}", given))
        return out


def read_page(path: str | Path, pages: str | None = None, **kwargs) -> list[PageResult]:
    """Read the pages of an image or PDF file with a new PageReader(**kwargs); see PageReader.read."""
    return PageReader(**kwargs).read(path, pages=pages)
