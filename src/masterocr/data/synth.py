"""Synthetic word images: render labelled word crops that look like real scene or document text.

Pieces:
- `render_word(text, font_path, rng, height, width)`: one RGB word crop. Text is drawn at its final pixel
  size (no supersampling; words are composed from cached glyph bitmaps) with a random font size, character
  spacing, outline/shadow, underline; warped by one affine or projective transform (rotation, shear,
  perspective) and sometimes a sine/arc curve; cut out with tight or loose margins (sometimes a pixel into
  the glyphs, sometimes with a sliver of a neighbouring word at the edge); put on a procedural background
  (flat, gradient, noise, paper, fabric, stripes, blurred shapes, colour blobs) with enough contrast; then
  degraded (illumination, occluding strokes, low resolution, blur, noise, JPEG). All randomness comes from
  `rng`, so a seed gives the same bytes.
- `Synthesizer`: text sampling (`TextSampler`, see synth_text.py) + font choice (family first, then a face;
  only fonts that draw every character of the label) + `render_word`.
- `SynthDataset`: on-the-fly training data, deterministic per (seed, epoch, index).
- `generate(...)`: write a clovaai LMDB or an image folder, in parallel, deterministic for a seed whatever the
  number of workers. `render_grid(...)`: a contact sheet of samples and labels (docs/synth_samples.png).
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import logging
import math
import multiprocessing
import multiprocessing.context
import random
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from masterocr.charset import Charset
from masterocr.data.fonts import (
    DEFAULT_FONT,
    font_name,
    group_by_family,
    load_font,
    select_fonts,
    supported_chars,
)
from masterocr.data.synth_text import DEFAULT_LANGUAGES, TextSampler
from masterocr.errors import UserError

__all__ = [
    "Synthesizer",
    "SynthDataset",
    "TextSampler",
    "encode_image",
    "generate",
    "render_grid",
    "render_word",
]

log = logging.getLogger(__name__)
RENDER_ERROR = "synthetic render error"
_BILINEAR = Image.Resampling.BILINEAR
# letters wide enough that a sliver of them never reads as a whole character (for neighbour fragments)
_WIDE = "mwnuhbdpqoaeMWNHUDOQBRAG"
_ROUND = "oceOCGQS"


# ----------------------------------------------------------------------------------------------------------
# colours (plain tuples of floats: numpy is slower than Python for 3 numbers)
# ----------------------------------------------------------------------------------------------------------
Colour = tuple[float, float, float]


def _lum(c: Sequence[float]) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _clip255(v: float) -> float:
    return 0.0 if v < 0.0 else 255.0 if v > 255.0 else v


def _colour(rng: random.Random, lum: float, sat: float) -> Colour:
    """A random RGB colour (0..255 floats) of about luminance `lum` and saturation `sat` in [0, 1]."""
    r, g, b = rng.random(), rng.random(), rng.random()
    m = _lum((r, g, b))
    c = (lum + sat * 160.0 * (r - m), lum + sat * 160.0 * (g - m), lum + sat * 160.0 * (b - m))
    for _ in range(3):  # clip, then move back towards the wanted luminance
        c = (_clip255(c[0]), _clip255(c[1]), _clip255(c[2]))
        d = lum - _lum(c)
        if abs(d) < 1.0:
            break
        c = (c[0] + d, c[1] + d, c[2] + d)
    return (_clip255(c[0]), _clip255(c[1]), _clip255(c[2]))


def _int_colour(c: Sequence[float]) -> tuple[int, int, int]:
    return (int(c[0] + 0.5), int(c[1] + 0.5), int(c[2] + 0.5))


def _pick_luminances(rng: random.Random, thin: bool = False) -> tuple[float, float, float]:
    """(background, text, contrast) luminances; text is mostly dark on light, sometimes light on dark.

    `thin` (hairline/thin fonts, whose anti-aliased strokes lose contrast) rules out low contrast.
    """
    if rng.random() < 0.1 and not thin:  # low contrast, kept on light backgrounds where it stays legible
        contrast = rng.uniform(60.0, 90.0)
        bg = rng.uniform(max(contrast, 120.0), 255.0)
        return bg, bg - contrast, contrast
    contrast = rng.uniform(130.0 if thin else 90.0, 220.0)
    if rng.random() < 0.7:
        bg = rng.uniform(contrast, 255.0)
        return bg, bg - contrast, contrast
    bg = rng.uniform(max(0.0, 130.0 - contrast), 255.0 - contrast)  # light text at least mid-grey
    return bg, bg + contrast, contrast


# ----------------------------------------------------------------------------------------------------------
# backgrounds: procedural texture tiles (made once per process, deterministically), cropped and coloured
# ----------------------------------------------------------------------------------------------------------
class _LazyGenerator:
    """A NumPy Generator created on first use (most samples need no NumPy randomness)."""

    __slots__ = ("seed", "gen")

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.gen = None

    def __getattr__(self, name: str):
        if self.gen is None:
            self.gen = np.random.default_rng(self.seed)
        return getattr(self.gen, name)


_TILE_W, _TILE_H, _TILES_PER_KIND = 384, 64, 32
_TILE_SCALE = 100.0  # a tile pixel v stands for the offset (v - 128) / _TILE_SCALE, in units of `amp`


def _lowfreq(nrng: np.random.Generator, h: int, w: int, cell: float, channels: int = 1) -> np.ndarray:
    """Smooth noise in [-1, 1], shape (h, w, channels): random values on a coarse grid, bicubic upsampled."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    grid = nrng.integers(0, 256, size=(gh, gw, channels), dtype=np.uint8)
    img = Image.fromarray(grid[:, :, 0] if channels == 1 else grid, "L" if channels == 1 else "RGB")
    arr = np.asarray(img.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    return arr.reshape(h, w, channels) * (1.0 / 127.5) - 1.0


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]


# Texture generators: (rng, nrng, h, w) -> offsets in units of the texture amplitude, (h, w) grey or
# (h, w, 3) coloured.
def _tex_noise(rng, nrng, h, w):
    n = nrng.standard_normal((h, w), dtype=np.float32) * 0.35
    if rng.random() < 0.5:
        n += _lowfreq(nrng, h, w, rng.uniform(2, 6))[:, :, 0] * 0.5
    return n


def _tex_paper(rng, nrng, h, w):
    n = _lowfreq(nrng, h, w, rng.uniform(6, 20))[:, :, 0] * 0.5
    n += nrng.standard_normal((h, w), dtype=np.float32) * 0.15
    if rng.random() < 0.6:  # fibres and folds
        img = Image.new("L", (w, h), 128)
        d = ImageDraw.Draw(img)
        for _ in range(rng.randint(2, 10)):
            x0, y0 = rng.uniform(-w * 0.2, w), rng.uniform(-h * 0.2, h)
            ang, ln = rng.uniform(0, math.pi), rng.uniform(0.05, 0.5) * w
            d.line([(x0, y0), (x0 + ln * math.cos(ang), y0 + ln * math.sin(ang))], fill=rng.choice((96, 160)))
        n += (np.asarray(img, dtype=np.float32) - 128.0) * (0.3 / 32.0)
    return n


def _tex_fabric(rng, nrng, h, w):
    yy, xx = _grid(h, w)
    p1, p2 = rng.uniform(2.0, 6.0), rng.uniform(2.0, 6.0)
    a = rng.uniform(-0.3, 0.3)
    u, v = xx * math.cos(a) - yy * math.sin(a), xx * math.sin(a) + yy * math.cos(a)
    weave = np.sin(u * (2 * math.pi / p1)) * np.sin(v * (2 * math.pi / p2))
    weave += 0.5 * np.sin((u + v) * (2 * math.pi / (p1 * 3)))
    tint = np.array([rng.uniform(0.6, 1.0) for _ in range(3)], dtype=np.float32) * 0.4
    out = weave[:, :, None] * tint
    return out + nrng.standard_normal((h, w, 1), dtype=np.float32) * 0.1


def _tex_stripes(rng, nrng, h, w):
    yy, xx = _grid(h, w)
    a = rng.choice((0.0, math.pi / 2, rng.uniform(0, math.pi)))
    t = xx * math.cos(a) + yy * math.sin(a)
    wave = np.sin(t * (2 * math.pi / rng.uniform(3.0, 16.0)) + rng.uniform(0, 6.3))
    if rng.random() < 0.5:
        wave = np.sign(wave)
    tint = np.array([0.3 + rng.uniform(-0.25, 0.25) for _ in range(3)], dtype=np.float32)
    return wave[:, :, None] * tint


def _tex_shapes(rng, nrng, h, w):
    """A blurred 'natural' scene: random ellipses, polygons and bars in colours around the base."""
    sw, sh = max(4, w // 3), max(4, h // 3)
    img = Image.new("RGB", (sw, sh), (128, 128, 128))
    d = ImageDraw.Draw(img)
    for _ in range(rng.randint(8, 24)):
        col = tuple(int(128 + _TILE_SCALE * rng.uniform(-1, 1)) for _ in range(3))
        x0, y0 = rng.uniform(-sw * 0.1, sw), rng.uniform(-sh * 0.3, sh)
        x1, y1 = x0 + rng.uniform(2, sw * 0.3), y0 + rng.uniform(2, sh * 1.2)
        kind = rng.random()
        if kind < 0.45:
            d.ellipse([x0, y0, x1, y1], fill=col)
        elif kind < 0.8:
            d.polygon([(rng.uniform(x0, x1), rng.uniform(y0, y1)) for _ in range(rng.randint(3, 6))], fill=col)
        else:
            d.rectangle([x0, y0, x1, y1], fill=col)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2))).resize((w, h), _BILINEAR)
    return (np.asarray(img, dtype=np.float32) - 128.0) / _TILE_SCALE


def _tex_blobs(rng, nrng, h, w):
    return _lowfreq(nrng, h, w, rng.uniform(4, 16), channels=3) * 0.6


_TEXTURES = {
    "noise": _tex_noise,
    "paper": _tex_paper,
    "fabric": _tex_fabric,
    "stripes": _tex_stripes,
    "shapes": _tex_shapes,
    "blobs": _tex_blobs,
}
_BACKGROUNDS = (
    ("flat", 24),
    ("gradient", 14),
    ("noise", 10),
    ("paper", 16),
    ("fabric", 7),
    ("stripes", 6),
    ("shapes", 17),
    ("blobs", 6),
)
_BG_KINDS = tuple(k for k, _ in _BACKGROUNDS)
_BG_CUM = tuple(itertools.accumulate(w for _, w in _BACKGROUNDS))


@functools.cache
def _tiles(kind: str) -> tuple[np.ndarray, ...]:
    """The texture tiles (uint8, offset 128) of one kind: the same in every process (seeded by kind, index)."""
    out = []
    for k in range(_TILES_PER_KIND):
        rng = random.Random(f"masterocr-texture:{kind}:{k}")
        nrng = np.random.default_rng(rng.getrandbits(64))
        arr = _TEXTURES[kind](rng, nrng, _TILE_H, _TILE_W)
        out.append(np.clip(arr * _TILE_SCALE + 128.5, 0, 255).astype(np.uint8))
    return tuple(out)


_RAMP = np.arange(256, dtype=np.float32) - 128.0
_BAND_OFFSETS = np.array([0, 256, 512], dtype=np.intp)


def _background(rng: random.Random, w: int, h: int, base: Colour, amp: float) -> Image.Image:
    """An RGB background of about colour `base` with texture amplitude `amp` (grey levels)."""
    kind = rng.choices(_BG_KINDS, cum_weights=_BG_CUM)[0]
    if kind == "flat":
        return Image.new("RGB", (w, h), _int_colour(base))
    if kind == "gradient":  # a linear ramp: 2x2 corner colours, bilinearly enlarged
        a = rng.uniform(0, 2 * math.pi)
        ca, sa = math.cos(a), math.sin(a)
        ts = [x * w * ca + y * h * sa for y in (0, 1) for x in (0, 1)]
        lo, span = min(ts), max(1e-6, max(ts) - min(ts))
        sign = rng.choice((-1, 1))
        delta = [sign * amp + rng.uniform(-0.6, 0.6) * amp for _ in range(3)]
        corners = np.array(
            [[base[k] + ((t - lo) / span - 0.5) * delta[k] for k in range(3)] for t in ts], dtype=np.float32
        )
        corners = np.clip(corners + 0.5, 0, 255).astype(np.uint8).reshape(2, 2, 3)
        return Image.fromarray(corners, "RGB").resize((w, h), _BILINEAR)
    tiles = _tiles(kind)
    tile = tiles[rng.randrange(len(tiles))]
    cw, ch = min(w, _TILE_W), min(h, _TILE_H)
    x, y = rng.randrange(_TILE_W - cw + 1), rng.randrange(_TILE_H - ch + 1)
    crop = tile[y : y + ch, x : x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if (cw, ch) != (w, h):  # larger than a tile: stretch the crop
        img = Image.fromarray(np.ascontiguousarray(crop), "L" if crop.ndim == 2 else "RGB")
        crop = np.asarray(img.resize((w, h), _BILINEAR))
    # one lookup table per band: tile value v -> base + (v - 128) * amp / _TILE_SCALE
    table = np.array(base, dtype=np.float32)[:, None] + _RAMP * (amp / _TILE_SCALE)
    table = np.clip(table + 0.5, 0, 255).astype(np.uint8)
    if crop.ndim == 2:
        out = table.T[crop]
    else:
        out = table.reshape(-1)[crop.astype(np.intp) + _BAND_OFFSETS]
    return Image.fromarray(out, "RGB")


# ----------------------------------------------------------------------------------------------------------
# geometry
# ----------------------------------------------------------------------------------------------------------
def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 matrix of the projective map sending the 4 `src` points onto the 4 `dst` points."""
    a = np.zeros((8, 8), dtype=np.float64)
    b = np.empty(8, dtype=np.float64)
    for i in range(4):
        (x, y), (u, v) = src[i], dst[i]
        a[2 * i] = (x, y, 1, 0, 0, 0, -u * x, -u * y)
        a[2 * i + 1] = (0, 0, 0, x, y, 1, -v * x, -v * y)
        b[2 * i], b[2 * i + 1] = u, v
    return np.append(np.linalg.solve(a, b), 1.0).reshape(3, 3)


class _Warp:
    """A random rotation + shear (+ sometimes perspective) of a w x h canvas, expanded to fit.

    `forward(x, y)` maps canvas points to output points; `method`/`coeffs` are what `Image.transform` needs
    (the output -> input map); `size` is the output size. Affine warps (70%) avoid NumPy entirely.
    """

    def __init__(self, rng: random.Random, w: int, h: int) -> None:
        r = rng.random()
        if r < 0.25:  # straight (documents, signs photographed head-on)
            deg = 0.0
        elif r < 0.6:
            deg = rng.gauss(0, 1.5)
        elif r < 0.9:
            deg = rng.uniform(-5, 5)
        else:
            deg = rng.uniform(-12, 12)
        deg *= min(1.0, 5.0 * h / w) ** 0.5  # long words tilt less: their crops would become mostly background
        k = rng.uniform(-0.35, 0.35) if rng.random() < 0.25 else 0.0  # italic-like shear
        ca, sa = math.cos(math.radians(deg)), math.sin(math.radians(deg))
        # M = R @ [[1, -k], [0, 1]]
        m00, m01, m10, m11 = ca, -ca * k - sa, sa, -sa * k + ca
        cx, cy = w / 2, h / 2
        pts = [(m00 * (x - cx) + m01 * (y - cy), m10 * (x - cx) + m11 * (y - cy)) for x, y in _corners(w, h)]
        self.perspective = rng.random() < 0.3
        if self.perspective:
            jit = 0.06 * min(w, 4 * h)
            pts = [(x + rng.uniform(-jit, jit), y + rng.uniform(-0.12, 0.12) * h) for x, y in pts]
        mx, my = min(p[0] for p in pts), min(p[1] for p in pts)
        pts = [(x - mx, y - my) for x, y in pts]
        self.size = (int(math.ceil(max(p[0] for p in pts))) + 1, int(math.ceil(max(p[1] for p in pts))) + 1)
        self.identity = not self.perspective and abs(deg) < 0.3 and k == 0.0
        if self.perspective:
            corners = np.array(_corners(w, h), dtype=np.float64)
            self.fwd = _homography(corners, np.array(pts, dtype=np.float64))
            inv = np.linalg.inv(self.fwd)
            self.method = Image.Transform.PERSPECTIVE
            self.coeffs = tuple((inv / inv[2, 2]).reshape(-1)[:8].tolist())
        else:
            self.aff = (m00, m01, m10, m11, cx, cy, mx, my)
            det = m00 * m11 - m01 * m10
            i00, i01, i10, i11 = m11 / det, -m01 / det, -m10 / det, m00 / det
            self.method = Image.Transform.AFFINE
            self.coeffs = (i00, i01, i00 * mx + i01 * my + cx, i10, i11, i10 * mx + i11 * my + cy)

    def forward(self, x: float, y: float) -> tuple[float, float]:
        if self.perspective:
            f = self.fwd
            d = f[2, 0] * x + f[2, 1] * y + f[2, 2]
            return (f[0, 0] * x + f[0, 1] * y + f[0, 2]) / d, (f[1, 0] * x + f[1, 1] * y + f[1, 2]) / d
        m00, m01, m10, m11, cx, cy, mx, my = self.aff
        return m00 * (x - cx) + m01 * (y - cy) - mx, m10 * (x - cx) + m11 * (y - cy) - my


def _corners(w: int, h: int) -> list[tuple[float, float]]:
    return [(0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))]


def _curve(arr: np.ndarray, rng: random.Random, size: float) -> np.ndarray:
    """Bend a text mask (H, W uint8) vertically: a sine wave or an arc, with linear interpolation."""
    h, w = arr.shape
    amp = rng.uniform(0.06, 0.22) * size
    pad = int(math.ceil(amp)) + 1
    x = np.arange(w, dtype=np.float32)
    if rng.random() < 0.5:
        period = rng.uniform(1.5, 5.0) * size
        dy = amp * np.sin(2 * math.pi * x / period + rng.uniform(0, 2 * math.pi))
    else:
        t = (x - w / 2) / max(1.0, w / 2)
        dy = rng.choice((-1, 1)) * amp * (t * t - 0.5) * 2
    src = np.zeros((h + 2 * pad, w), dtype=np.float32)
    src[pad : pad + h] = arr
    yy = np.arange(h + 2 * pad, dtype=np.float32)[:, None] - dy[None, :]
    y0 = np.clip(np.floor(yy).astype(np.int64), 0, h + 2 * pad - 1)
    y1 = np.clip(y0 + 1, 0, h + 2 * pad - 1)
    fy = yy - np.floor(yy)
    cols = np.arange(w)[None, :]
    out = src[y0, cols] * (1 - fy) + src[y1, cols] * fy
    return np.clip(out, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------------------
# rendering
# ----------------------------------------------------------------------------------------------------------
def _margin(rng: random.Random) -> float:
    """A crop margin as a fraction of the text height: mostly tight, sometimes loose (up to 0.3)."""
    return 0.3 * rng.random() ** 1.7


def _quantize_size(size: float) -> int:
    """Font sizes in ~8% steps (the crop margins absorb the difference): few (font, size) pairs keep the
    font and glyph caches warm."""
    if size <= 12:
        return max(5, int(round(size)))
    return int(round(12 * 1.08 ** round(math.log(size / 12) / math.log(1.08))))


class _Metrics:
    """Per-font metrics at a 64 px reference size: ink top/bottom of each character (filled lazily) and the
    stroke weight (ink coverage of "Hnoe" in their boxes: ~0.07 hairline, ~0.15 thin, ~0.44 regular)."""

    def __init__(self, path: str) -> None:
        self.ref = load_font(path, 64)
        self.vert: dict[str, tuple[int, int]] = {}
        self.cap_top, self.cap_bot = self.vertical("H")
        ink = area = 0.0
        for ch in "Hnoe":
            left, top, right, bottom = self.ref.getbbox(ch, anchor="ls")
            if right > left and bottom > top:
                img = Image.new("L", (right - left, bottom - top), 0)
                ImageDraw.Draw(img).text((-left, -top), ch, fill=255, font=self.ref, anchor="ls")
                box = img.getbbox()
                if box:
                    ink += float(np.asarray(img, dtype=np.float32).sum()) / 255.0
                    area += (box[2] - box[0]) * (box[3] - box[1])
        self.weight = ink / area if area else 0.4

    def vertical(self, text: str) -> tuple[int, int]:
        """(top, bottom) of the ink of `text` relative to the baseline (y down), at 64 px."""
        top, bot = 10**6, -(10**6)
        vert = self.vert
        for ch in text:
            v = vert.get(ch)
            if v is None:
                b = self.ref.getbbox(ch, anchor="ls")
                v = vert[ch] = (b[1], b[3]) if b[3] > b[1] else (10**6, -(10**6))
            top, bot = min(top, v[0]), max(bot, v[1])
        return (top, bot) if bot > top else (0, 1)


@functools.lru_cache(maxsize=1024)
def _metrics(path: str) -> _Metrics:
    return _Metrics(path)


class _GlyphCache:
    """LRU cache of rendered glyph bitmaps keyed by (font path, size, stroke, char), bounded in bytes.

    FreeType's TrueType hinting makes some fonts 10x slower to draw than others (~60 us a glyph); words are
    composed from cached glyphs instead (integer pen positions, as Pillow's basic layout; no kerning).
    """

    def __init__(self, max_bytes: int = 96 << 20) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.items: OrderedDict[tuple, tuple[np.ndarray | None, int, int, float]] = OrderedDict()

    def get(self, key: tuple[str, int, int, str]):
        """(bitmap or None, left, top, advance) of the glyph `key` = (font path, size, stroke, char)."""
        g = self.items.get(key)
        if g is not None:
            self.items.move_to_end(key)
            return g
        path, size, stroke, ch = key
        font = load_font(path, size)  # only on a miss: the font objects' cache may then stay small
        adv = font.getlength(ch)
        arr, left, top = None, 0, 0
        if not ch.isspace():
            left, top, right, bottom = font.getbbox(ch, anchor="ls", stroke_width=stroke)
            if right > left and bottom > top:
                img = Image.new("L", (right - left, bottom - top), 0)
                ImageDraw.Draw(img).text(
                    (-left, -top), ch, fill=255, font=font, anchor="ls", stroke_width=stroke, stroke_fill=255
                )
                arr = np.asarray(img)
        g = (arr, left, top, adv)
        self.items[key] = g
        self.bytes += 64 + (arr.nbytes if arr is not None else 0)
        while self.bytes > self.max_bytes and self.items:
            _, old = self.items.popitem(last=False)
            self.bytes -= 64 + (old[0].nbytes if old[0] is not None else 0)
        return g


_GLYPHS = _GlyphCache()


def _layout(
    path: str, size: int, text: str, spacing: float, x: float, stroke: int
) -> tuple[list[tuple[np.ndarray, int, int]], float]:
    """Glyph placements (bitmap, left, top) of `text`, pen starting at (x, 0) on the baseline; and its width."""
    out = []
    start = x
    for ch in text:
        arr, left, top, adv = _GLYPHS.get((path, size, stroke, ch))
        if arr is not None:
            out.append((arr, int(math.floor(x + 0.5)) + left, top))
        x += adv + spacing
    return out, x - spacing - start if text else 0.0


def render_word(
    text: str, font_path: str, rng: random.Random, height: int = 32, width: int | None = None
) -> Image.Image:
    """Render `text` as an RGB word crop `height` pixels tall (natural width, or exactly `width` when given).

    The font must draw every character of `text` (see `fonts.supported_chars`); `font_path` may be
    `fonts.DEFAULT_FONT`. Deterministic for a given `rng` state.
    """
    if not text or not text.strip():
        raise UserError("cannot render an empty label")
    if height < 4:
        raise UserError(f"synthetic image height must be >= 4 pixels, got {height}")
    nrng = _LazyGenerator(rng.getrandbits(64))

    # --- size: pick the vertical extent to crop, then the font size that makes it about `height` pixels -----
    m_top, m_bot = _margin(rng), _margin(rng)
    met = _metrics(font_path)
    ink_top, ink_bot = met.vertical(text)
    # crop to the line (cap height + descenders) rather than the ink sometimes, and always for text without
    # ascenders ("us", "...", "-"): cropped to the x-height, "us" would look like "US"
    line_mode = rng.random() < 0.3 or (ink_bot - ink_top) < 0.85 * (met.cap_bot - met.cap_top)
    top, bot = (min(ink_top, met.cap_top), max(ink_bot, 0)) if line_mode else (ink_top, ink_bot)
    extent = max(1, bot - top)
    size = 64 * height / (extent * (1 + m_top + m_bot)) * rng.uniform(0.9, 1.0)
    size = _quantize_size(min(max(size, 5), 4 * height))

    # --- text masks: fill, outline (fill + stroke), neighbouring word fragment -----------------------------
    spacing = 0.0
    r = rng.random()
    if r < 0.15:
        spacing = rng.uniform(0.05, 0.45) * size
    elif r < 0.25:
        spacing = -rng.uniform(0.0, 0.06) * size
    outline = size >= 12 and rng.random() < 0.07
    shadow = rng.random() < 0.06
    underline = rng.random() < 0.04
    stroke = max(1, round(size * rng.uniform(0.04, 0.09))) if outline else 0
    neighbour = rng.random() < 0.05
    side = rng.choice((-1, 1))
    gap = rng.uniform(0.25, 0.6) * size
    frag = "".join(rng.choice(_WIDE) for _ in range(rng.randint(1, 3)))
    # the letter next to the gap is round: a sliver of a stem would read as "l" or "I"
    frag = rng.choice(_ROUND) + frag if side > 0 else frag + rng.choice(_ROUND)
    if neighbour and not set(frag) <= supported_chars(font_path, _WIDE + _ROUND):
        neighbour = False
    # glyph placements (bitmap, x, y) with the pen starting at (0, 0) on the baseline
    fill, text_w = _layout(font_path, size, text, spacing, 0.0, 0)
    layouts = [fill]
    if outline:
        layouts.append(_layout(font_path, size, text, spacing, 0.0, stroke)[0])
    if neighbour:
        frag_w = _layout(font_path, size, frag, 0.0, 0.0, 0)[1]
        nx = text_w + gap if side > 0 else -gap - frag_w
        layouts.append(_layout(font_path, size, frag, 0.0, nx, 0)[0])
    under = None
    if underline:
        desc = load_font(font_path, size).getmetrics()[1]
        uy = max(1, int(desc * rng.uniform(0.2, 0.6)))
        under = (0, uy, int(math.ceil(text_w)), uy + 1 + size // 16)
    # canvas: the union of all ink (and of the line box in line mode) plus 2 px
    s64 = size / 64.0
    xs0, ys0 = [0], [int(math.floor(top * s64))]
    xs1, ys1 = [1], [int(math.ceil(bot * s64))]
    for lay in layouts:
        for arr, x, y in lay:
            xs0.append(x)
            ys0.append(y)
            xs1.append(x + arr.shape[1])
            ys1.append(y + arr.shape[0])
    if under:
        xs0.append(under[0])
        ys0.append(under[1])
        xs1.append(under[2])
        ys1.append(under[3])
    ox, oy = min(xs0) - 2, min(ys0) - 2
    cw, ch = max(xs1) + 2 - ox, max(ys1) + 2 - oy
    layers = []
    for k, lay in enumerate(layouts):
        canvas = np.zeros((ch, cw), dtype=np.uint8)
        for arr, x, y in lay:
            region = canvas[y - oy : y - oy + arr.shape[0], x - ox : x - ox + arr.shape[1]]
            np.maximum(region, arr, out=region)
        if under and k < (2 if outline else 1):
            grow = stroke if k else 0
            ux0, uy0 = max(0, under[0] - ox - grow), max(0, under[1] - oy - grow)
            canvas[uy0 : under[3] - oy + grow, ux0 : under[2] - ox + grow] = 255
        layers.append(Image.fromarray(canvas, "L"))
    x0, base_y = -ox, -oy

    # --- curve + projective warp ----------------------------------------------------------------------------
    if rng.random() < 0.12 and len(text) >= 3:
        bend = rng.getrandbits(32)  # the same bend for every layer
        layers = [Image.fromarray(_curve(np.asarray(m), random.Random(bend), size)) for m in layers]
        base_y += (layers[0].size[1] - ch) // 2
        ch = layers[0].size[1]
    warp = _Warp(rng, cw, ch)
    if warp.identity:
        forward = lambda x, y: (x, y)  # noqa: E731
    else:
        layers = [m.transform(warp.size, warp.method, warp.coeffs, _BILINEAR) for m in layers]
        forward = warp.forward
    box = layers[1 if outline else 0].getbbox() or (0, 0, layers[0].width, layers[0].height)
    bx0, by0, bx1, by1 = box
    if line_mode:
        cx = x0 + text_w / 2
        ya, yb = forward(cx, base_y + top * s64)[1], forward(cx, base_y + bot * s64)[1]
        by0 = min(by0, int(math.floor(min(ya, yb))))
        by1 = max(by1, int(math.ceil(max(ya, yb))))

    # --- crop with margins: exactly `height` rows when the text fits, so no resampling is needed -----------
    eh = max(1, by1 - by0)
    ml, mr = _margin(rng) * eh, _margin(rng) * eh
    spare = height - eh
    if spare >= 0:
        share = m_top / (m_top + m_bot) if m_top + m_bot > 0 else rng.random()
        mt = int(round(spare * share))
        mb = spare - mt
    else:
        mt, mb = int(round(m_top * eh)), int(round(m_bot * eh))
    if neighbour:  # show a sliver of the neighbouring word beyond the gap
        sliver = gap + rng.uniform(0.05, 0.2) * size
        if side > 0:
            mr = sliver
        else:
            ml = sliver
    if eh >= 14 and rng.random() < 0.08:  # cut one pixel into the glyphs on one side
        which = rng.randrange(4)
        if which == 0 and text[0].isalnum():
            ml = -1
        elif which == 1 and text[-1].isalnum():
            mr = -1
        elif which == 2 and mt >= 0:
            mt, mb = -1, mb + mt + 1
        elif which == 3 and mb >= 0:
            mt, mb = mt + mb + 1, -1
    crop = (int(round(bx0 - ml)), by0 - mt, int(round(bx1 + mr)), by1 + mb)
    crop = (crop[0], crop[1], max(crop[2], crop[0] + 1), max(crop[3], crop[1] + 1))
    layers = [m.crop(crop) for m in layers]
    ww, hh = layers[0].size

    # --- colours, background, compositing -------------------------------------------------------------------
    # thin strokes in pixels (hairline/light/script faces, small sizes) lose contrast when anti-aliased:
    # no low contrast for them, and gentler blur and noise
    thin = met.weight * size < 12.0
    lb, lt, contrast = _pick_luminances(rng, thin)
    gray_look = rng.random() < 0.45
    bg_col = _colour(rng, lb, 0.0 if gray_look else rng.uniform(0.1, 0.9))
    fg_col = _colour(rng, lt, 0.0 if gray_look and rng.random() < 0.7 else rng.uniform(0.0, 1.0))
    amp = contrast * rng.uniform(0.12, 0.45)
    img = _background(rng, ww, hh, bg_col, amp)
    if shadow:
        sa = layers[1 if outline else 0]
        dx, dy = rng.randint(-2, 2) or 1, rng.randint(0, 2) or 1
        sh = sa.transform((ww, hh), Image.Transform.AFFINE, (1, 0, -dx, 0, 1, -dy), _BILINEAR)
        if rng.random() < 0.6:
            sh = sh.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
        opacity = rng.uniform(0.4, 0.8)
        sh = sh.point([int(v * opacity) for v in range(256)])
        s_col = _colour(rng, min(lt, lb) * 0.4, 0.0) if lt < lb or rng.random() < 0.5 else _colour(rng, 20, 0)
        img.paste(_int_colour(s_col), (0, 0), sh)
    if outline:
        o_col = _colour(rng, lb + (lb - lt) * rng.uniform(-0.3, 0.2), rng.uniform(0, 1))
        if abs(_lum(o_col) - lt) < 60:
            o_col = _colour(rng, 255.0 - lt, rng.uniform(0, 1))
        img.paste(_int_colour(o_col), (0, 0), layers[1])
    if rng.random() < 0.08:  # colour gradient across the text
        fg2 = _colour(rng, lt, rng.uniform(0, 1))
        t = np.linspace(0.0, 1.0, ww, dtype=np.float32)[None, :, None]
        grad = np.array(fg_col, dtype=np.float32) * (1 - t) + np.array(fg2, dtype=np.float32) * t
        fill = Image.fromarray(np.broadcast_to(grad, (hh, ww, 3)).astype(np.uint8), "RGB")
        img.paste(fill, (0, 0), layers[0])
    else:
        img.paste(_int_colour(fg_col), (0, 0), layers[0])
    if neighbour:
        img.paste(_int_colour(fg_col), (0, 0), layers[-1])

    # --- output size ----------------------------------------------------------------------------------------
    out_w = width if width else max(1, int(round(ww * height / hh)))
    if (out_w, height) != img.size:
        img = img.resize((out_w, height), _BILINEAR)
    return _degrade(img, rng, nrng, height, 0.6 if thin else 1.0 if contrast >= 90 else 0.5)


def _degrade(
    img: Image.Image, rng: random.Random, nrng: np.random.Generator, height: int, strength: float = 1.0
) -> Image.Image:
    """Camera and scanner effects on the final crop: light, occlusion, resolution, blur, noise, JPEG.

    At most two of the strong effects (low resolution, blur, heavy noise, low-quality JPEG) hit one crop,
    so that it stays legible; `strength` < 1 (low-contrast text) makes them rarer and weaker.
    """
    w, h = img.size
    strong = 0
    if rng.random() < 0.15:  # uneven illumination
        a = rng.uniform(0, 2 * math.pi)
        t = np.linspace(-1, 1, w, dtype=np.float32)[None, :] * math.cos(a)
        t = t + np.linspace(-1, 1, h, dtype=np.float32)[:, None] * math.sin(a)
        arr = np.asarray(img, dtype=np.float32) * (1.0 + rng.uniform(0.1, 0.35) * t)[:, :, None]
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.05:  # an occluding stroke (wire, scratch, pen line)
        col = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        y0, y1 = rng.uniform(0, h), rng.uniform(0, h)
        ImageDraw.Draw(img).line([(rng.uniform(-5, w * 0.3), y0), (rng.uniform(w * 0.7, w + 5), y1)], fill=col)
    if rng.random() < 0.12:
        img = img.convert("L").convert("RGB")
    if rng.random() < 0.1 * strength:  # low resolution, upscaled
        f = rng.uniform(0.45, 0.75)
        small = img.resize((max(1, int(w * f)), max(1, int(h * f))), _BILINEAR)
        img = small.resize((w, h), rng.choice((_BILINEAR, Image.Resampling.NEAREST, _BILINEAR)))
        strong += 1
    if rng.random() < 0.3 * strength:  # defocus: one box-blur pass (3x cheaper than GaussianBlur)
        radius = rng.uniform(0.3, 1.0) * strength * height / 32.0
        img = img.filter(ImageFilter.BoxBlur(radius))
        strong += radius > 0.6
    if rng.random() < 0.35:  # sensor noise, grey (luminance) or per channel
        sigma = rng.uniform(2.0, 12.0 if strong < 2 else 6.0) * strength
        strong += sigma > 8.0
        if rng.random() < 0.5:
            n = nrng.standard_normal((h, w), dtype=np.float32) * sigma + 128.5
            grey = Image.fromarray(np.clip(n, 0, 255).astype(np.uint8), "L").convert("RGB")
            img = ImageChops.add(img, grey, 1.0, -128)
        else:
            arr = np.asarray(img, dtype=np.float32) + nrng.standard_normal((h, w, 3), dtype=np.float32) * sigma
            img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.3:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=rng.randint(20 if strong < 2 else 50, 90))
        img = Image.open(buf)
        img.load()
    return img


# ----------------------------------------------------------------------------------------------------------
# sampler + fonts
# ----------------------------------------------------------------------------------------------------------
def _as_charset(charset: Charset | str | Path | None) -> Charset:
    if charset is None:
        return Charset.default()
    if isinstance(charset, Charset):
        return charset
    return Charset.from_file(charset)


class Synthesizer:
    """Labels + fonts + renderer: `sample(rng) -> (PIL image, label)`.

    Fonts are drawn family first, then a face of that family, so large families (many weights) do not crowd
    out the others; a label is only rendered with a font that draws all its characters (up to 8 fonts are
    tried; then the characters no font drew are dropped from the label).
    """

    def __init__(
        self,
        charset: Charset | None = None,
        fonts: Sequence[str] | None = None,
        *,
        height: int = 32,
        width: int | None = None,
        max_len: int = 25,
        seed: int = 0,
        languages: Sequence[str] = DEFAULT_LANGUAGES,
    ) -> None:
        self.charset = charset or Charset.default()
        self.fonts = list(fonts) if fonts else select_fonts(None, "all", charset_keys=self.charset.keys)
        self.families = list(group_by_family(self.fonts).values())
        self.height = height
        self.width = width
        self.sampler = TextSampler(self.charset, seed=seed, max_len=max_len, languages=languages)
        self.keys = self.charset.keys

    def pick_font(self, rng: random.Random) -> str:
        return rng.choice(rng.choice(self.families))

    def sample(self, rng: random.Random) -> tuple[Image.Image, str]:
        img, text, _ = self.sample_with_font(rng)
        return img, text

    def sample_with_font(self, rng: random.Random) -> tuple[Image.Image, str, str]:
        """`sample`, plus the path of the font that drew it (for per-font error analysis)."""
        for _ in range(10):
            text = self.sampler.sample(rng)
            font = self.pick_font(rng)
            for _ in range(8):
                if set(text) <= supported_chars(font, self.keys):
                    break
                font = self.pick_font(rng)
            else:
                drawn = supported_chars(font, self.keys)
                text = " ".join("".join(c for c in text if c in drawn).split())
            if text:
                return render_word(text, font, rng, self.height, self.width), text, font
        raise UserError("could not render any label: the fonts draw none of the charset's characters")


# ----------------------------------------------------------------------------------------------------------
# training dataset
# ----------------------------------------------------------------------------------------------------------
class SynthDataset(torch.utils.data.Dataset):
    """Synthetic word images rendered on the fly: `ds[i] -> (tensor (C, H, W), label)`.

    Sample i of epoch e depends only on (seed, e, i) when `training`; with `training=False` it depends on
    (seed, i) only (a fixed validation set) and `augment` is not applied. `augment` is a callable
    `augment(img, rng) -> img` (e.g. `transforms.Augment()`) applied to the rendered crop before
    `preprocess`. `fonts` picks the font split ("train", "heldout" or "all"; see `fonts.split_fonts`); the
    split itself does not depend on `seed`, so a training set and a validation set with different seeds
    still use disjoint font families. Samples whose rendering raises (e.g. a font file deleted mid-run) are
    replaced by another rendering and counted in `skipped`.
    """

    def __init__(
        self,
        *,
        charset: Charset,
        img_h: int,
        img_w: int,
        in_channels: int = 3,
        keep_ratio: bool = False,
        max_len: int = 100,
        training: bool = True,
        seed: int = 0,
        augment=None,
        length: int = 100000,
        font_dirs: Sequence[str | Path] | None = None,
        fonts: str = "train",
        holdout_fraction: float = 0.15,
    ) -> None:
        if length < 1:
            raise UserError(f"synthetic dataset length must be >= 1, got {length}")
        self.charset = charset
        self.img_h, self.img_w = img_h, img_w
        self.in_channels = in_channels
        self.keep_ratio = keep_ratio
        self.training = training
        self.seed = seed
        self.augment = augment
        self.length = length
        self.epoch = 0
        self.skipped: Counter[str] = Counter()
        font_files = select_fonts(font_dirs, fonts, holdout_fraction, seed=0, charset_keys=charset.keys)
        self.synth = Synthesizer(charset, font_files, height=img_h, max_len=min(25, max_len), seed=seed)
        self.fonts = self.synth.fonts
        log.info(
            "synthetic data: %d font files in %d families (%s fonts), %d samples",
            len(self.fonts),
            len(self.synth.families),
            fonts,
            length,
        )

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def rng_for(self, index: int, attempt: int = 0) -> random.Random:
        retry = f":retry{attempt}" if attempt else ""
        if self.training:
            return random.Random(f"synth-train:{self.seed}:{self.epoch}:{index}{retry}")
        return random.Random(f"synth-val:{self.seed}:{index}{retry}")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        from masterocr.data.transforms import preprocess

        for attempt in range(4):
            rng = self.rng_for(index, attempt)
            try:
                img, label = self.synth.sample(rng)
                break
            except (OSError, ValueError, MemoryError) as exc:  # e.g. a font file removed mid-run
                self.skipped[RENDER_ERROR] += 1
                if attempt == 3:
                    raise UserError(f"synthetic rendering keeps failing ({exc}); check the font files") from exc
                log.warning("synthetic sample %d failed to render (%s); rendering another one", index, exc)
        if self.training and self.augment is not None:
            img = self.augment(img, rng)
        tensor = preprocess(img, self.img_h, self.img_w, self.in_channels, self.keep_ratio)
        return tensor, self.charset.clean(label)


# ----------------------------------------------------------------------------------------------------------
# offline generation
# ----------------------------------------------------------------------------------------------------------
def encode_image(img: Image.Image) -> bytes:
    """PNG bytes of a crop, zlib level 1.

    Why PNG and not JPEG: measured on 2,000 crops at height 32, PNG averages 5.9 KiB and JPEG quality 95
    2.7 KiB (3.1 KiB without chroma subsampling), only 2-2.3x smaller, while JPEG would add its artefacts and
    4:2:0 colour blur to every sample (the renderer already JPEG-compresses ~30% of crops on purpose, at
    quality 20-90) and PNG keeps the rendered pixels exactly. Level 1 is ~1.7x faster than the default
    level 6 and no larger on these noisy images.
    """
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


_WORKER: dict = {}


def _worker_init(config: dict) -> None:
    _WORKER["synth"] = Synthesizer(
        config["charset"],
        config["fonts"],
        height=config["height"],
        width=config["width"],
        seed=config["seed"],
    )
    _WORKER["seed"] = config["seed"]


def _render_chunk(indices: range) -> list[tuple[bytes, str]]:
    synth, seed = _WORKER["synth"], _WORKER["seed"]
    out = []
    for i in indices:
        img, label = synth.sample(random.Random(f"synth-gen:{seed}:{i}"))
        out.append((encode_image(img), label))
    return out


def _pool_context() -> multiprocessing.context.BaseContext:
    """Start method for the render workers: forkserver (or spawn), never a plain fork.

    Why: a fork copies the parent's memory but only its calling thread, so a lock that another thread held at
    that moment (a server's executor, tqdm's monitor, an HTTP client) stays locked in the child forever. CI hung
    in the two-worker test, forked from a test process with a dozen such threads, most likely this way (it did
    not hang here, so the cause is inferred). A forkserver forks from a clean single-threaded server; it
    costs about 2 s of start-up per run (each worker imports torch and loads the word lists).
    """
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _samples(config: dict, count: int, workers: int, chunk: int) -> Iterator[tuple[bytes, str]]:
    chunks = [range(s, min(s + chunk, count)) for s in range(0, count, chunk)]
    if workers <= 1:
        _worker_init(config)
        for c in chunks:
            yield from _render_chunk(c)
        return
    # ProcessPoolExecutor, not multiprocessing.Pool: a Pool whose worker dies (or whose initializer raises)
    # replaces the worker and waits forever for the lost chunk; the executor raises BrokenProcessPool instead.
    pool = ProcessPoolExecutor(workers, mp_context=_pool_context(), initializer=_worker_init, initargs=(config,))
    try:
        pending: deque[Future] = deque()
        next_chunk = iter(chunks)
        for c in itertools.islice(next_chunk, 4 * workers):  # a bounded window keeps memory flat
            pending.append(pool.submit(_render_chunk, c))
        while pending:
            part = pending.popleft().result()
            for c in itertools.islice(next_chunk, 1):
                pending.append(pool.submit(_render_chunk, c))
            yield from part
    except BrokenProcessPool as e:
        raise UserError(
            f"a synthetic-data worker process died ({e}); run with --workers 1 to see its error. From a Python "
            "script, start generate(..., workers>1) under `if __name__ == '__main__':`"
        ) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def generate(
    out_dir: str | Path,
    count: int,
    *,
    fonts: Sequence[str | Path] | str | Path | None = None,
    charset: Charset | str | Path | None = None,
    height: int = 32,
    width: int | None = None,
    seed: int = 0,
    workers: int = 1,
    fmt: str = "lmdb",
    font_split: str = "train",
    holdout_fraction: float = 0.15,
    progress: bool = True,
) -> dict:
    """Render `count` labelled word images into `out_dir`; returns stats.

    `fonts`: font folders/files (default: the system fonts); `charset`: a Charset or a keys file (default: the
    95 printable ASCII characters); `width` None keeps each crop's natural width. Sample i depends only on
    (seed, i), so any `workers` count gives identical output. `fmt="lmdb"` writes a clovaai-layout LMDB
    (`num-samples`, `image-%09d` PNG bytes, `label-%09d`, 1-based); `fmt="folder"` writes
    `images/000000001.png`..., `labels.jsonl` ({"ImageFile", "Label"}) and `gt.txt` (`name,label` lines).
    Stats (also saved as synth.json): count, seconds, images_per_s, num_fonts, font_families, and settings.
    `workers > 1` starts processes through a forkserver (spawn where there is none), which re-imports a script's
    main module: call it under `if __name__ == '__main__':` (the `masterocr synth` command does).
    """
    if count < 1:
        raise UserError(f"--count must be >= 1, got {count}")
    if fmt not in ("lmdb", "folder"):
        raise UserError(f"unknown synth output format {fmt!r}; use 'lmdb' or 'folder'")
    if height < 4 or (width is not None and width < 1):
        raise UserError(f"bad image size height={height} width={width}; height must be >= 4")
    workers = max(1, int(workers))
    cs = _as_charset(charset)
    font_files = select_fonts(fonts, font_split, holdout_fraction, seed=0, charset_keys=cs.keys)
    config = {"charset": cs, "fonts": font_files, "height": height, "width": width, "seed": seed}
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists and is not empty; delete it or choose another output folder")
    chunk = max(1, min(256, count // (workers * 8) or 1))
    start = time.perf_counter()
    samples = _samples(config, count, workers, chunk)
    if fmt == "lmdb":
        from masterocr.data.lmdb_writer import write_lmdb

        written = write_lmdb(samples, out, total=count, progress=progress)
    else:
        written = _write_folder(samples, out, count, progress)
    seconds = time.perf_counter() - start
    stats = {
        "count": written,
        "seconds": round(seconds, 3),
        "images_per_s": round(written / max(seconds, 1e-9), 1),
        "num_fonts": len(font_files),
        "font_families": sorted({font_name(f)[0] for f in font_files}),
        "format": fmt,
        "font_split": font_split,
        "seed": seed,
        "height": height,
        "width": width,
        "workers": workers,
        "charset_size": len(cs.keys),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "synth.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return stats


def _write_folder(samples: Iterator[tuple[bytes, str]], out: Path, count: int, progress: bool) -> int:
    from tqdm import tqdm

    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)  # `out` too
    n = 0
    with (
        open(out / "labels.jsonl", "w", encoding="utf-8") as jl,
        open(out / "gt.txt", "w", encoding="utf-8") as gt,
        tqdm(total=count, disable=not progress, unit="img", desc="synth") as bar,
    ):
        for data, label in samples:
            n += 1
            name = f"images/{n:09d}.png"
            (out / name).write_bytes(data)
            jl.write(json.dumps({"ImageFile": name, "Label": label}, ensure_ascii=False) + "\n")
            gt.write(f"{name},{label}\n")
            bar.update(1)
    return n


# ----------------------------------------------------------------------------------------------------------
# contact sheet
# ----------------------------------------------------------------------------------------------------------
def render_grid(
    out_png: str | Path,
    n: int = 48,
    seed: int = 0,
    *,
    fonts: Sequence[str | Path] | None = None,
    charset: Charset | str | Path | None = None,
    height: int = 32,
    cols: int = 4,
    scale: float = 2.0,
    font_split: str = "all",
) -> Path:
    """Save a grid of `n` synthetic samples (shown `scale`x, labels and font names below) as a PNG."""
    cs = _as_charset(charset)
    synth = Synthesizer(cs, select_fonts(fonts, font_split, charset_keys=cs.keys), height=height, seed=seed)
    items = []
    for i in range(n):
        rng = random.Random(f"synth-gen:{seed}:{i}")
        img, label = synth.sample(rng)
        items.append((img, label))
    cell_w = int(height * scale * 6)
    cell_h = int(height * scale) + 34
    sheet = Image.new("RGB", (cols * cell_w, math.ceil(n / cols) * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    label_font = load_font(_label_font(), 14)
    for k, (img, label) in enumerate(items):
        x, y = (k % cols) * cell_w, (k // cols) * cell_h
        f = min(scale, (cell_w - 8) / img.width)  # wide crops are shown smaller, never cut
        shown = img.resize((max(1, int(img.width * f)), max(1, int(height * f))), Image.Resampling.NEAREST)
        sheet.paste(shown, (x + 4, y + 4))
        draw.text((x + 4, y + int(height * scale) + 8), repr(label)[1:-1], fill=(180, 0, 0), font=label_font)
    sheet.save(out_png)
    return Path(out_png)


def _label_font() -> str:
    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",):
        if Path(path).is_file():
            return path
    return DEFAULT_FONT
