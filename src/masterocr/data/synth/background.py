"""Backgrounds of synthetic words: flat, gradient, or a crop of a procedural texture tile, coloured.

Texture tiles (noise, paper, fabric, stripes, blurred shapes, colour blobs) are made once per process and
kind, seeded by (kind, index), so every process draws from the same tiles; a sample only picks a tile, a crop
and a colour with its own rng.
"""

from __future__ import annotations

import functools
import itertools
import math
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from masterocr.data.synth.colour import Colour, int_colour

__all__ = ["background"]

_BILINEAR = Image.Resampling.BILINEAR
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
def _tex_noise(rng: random.Random, nrng: np.random.Generator, h: int, w: int) -> np.ndarray:
    n = nrng.standard_normal((h, w), dtype=np.float32) * 0.35
    if rng.random() < 0.5:
        n += _lowfreq(nrng, h, w, rng.uniform(2, 6))[:, :, 0] * 0.5
    return n


def _tex_paper(rng: random.Random, nrng: np.random.Generator, h: int, w: int) -> np.ndarray:
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


def _tex_fabric(rng: random.Random, nrng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = _grid(h, w)
    p1, p2 = rng.uniform(2.0, 6.0), rng.uniform(2.0, 6.0)
    a = rng.uniform(-0.3, 0.3)
    u, v = xx * math.cos(a) - yy * math.sin(a), xx * math.sin(a) + yy * math.cos(a)
    weave = np.sin(u * (2 * math.pi / p1)) * np.sin(v * (2 * math.pi / p2))
    weave += 0.5 * np.sin((u + v) * (2 * math.pi / (p1 * 3)))
    tint = np.array([rng.uniform(0.6, 1.0) for _ in range(3)], dtype=np.float32) * 0.4
    out = weave[:, :, None] * tint
    return out + nrng.standard_normal((h, w, 1), dtype=np.float32) * 0.1


def _tex_stripes(rng: random.Random, nrng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = _grid(h, w)
    a = rng.choice((0.0, math.pi / 2, rng.uniform(0, math.pi)))
    t = xx * math.cos(a) + yy * math.sin(a)
    wave = np.sin(t * (2 * math.pi / rng.uniform(3.0, 16.0)) + rng.uniform(0, 6.3))
    if rng.random() < 0.5:
        wave = np.sign(wave)
    tint = np.array([0.3 + rng.uniform(-0.25, 0.25) for _ in range(3)], dtype=np.float32)
    return wave[:, :, None] * tint


def _tex_shapes(rng: random.Random, nrng: np.random.Generator, h: int, w: int) -> np.ndarray:
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


def _tex_blobs(rng: random.Random, nrng: np.random.Generator, h: int, w: int) -> np.ndarray:
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


def background(rng: random.Random, w: int, h: int, base: Colour, amp: float) -> Image.Image:
    """An RGB background of about colour `base` with texture amplitude `amp` (grey levels)."""
    kind = rng.choices(_BG_KINDS, cum_weights=_BG_CUM)[0]
    if kind == "flat":
        return Image.new("RGB", (w, h), int_colour(base))
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

