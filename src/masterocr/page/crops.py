"""Cutting a detected line out of the page: boxes straightened by a perspective warp, tall crops of a
horizontal script turned upright, and long lines cut at word gaps into pieces a recognizer reads well."""

from __future__ import annotations

import numpy as np
from PIL import Image

# a box within this angle of the page's axes is cut as an axis-aligned rectangle (no resampling)
STRAIGHT_DEG = 1.0
TALL = 1.5  # a crop this many times taller than wide holds a rotated horizontal line (turned upright)
# a word space is a quarter to a third of an em; letters inside a word sit closer than a quarter of the ink's height
# (ascender to descender, about an em)
WORD_GAP = 0.25
MAX_CROP_PIXELS = 8_000_000  # one line crop of a 40-Mpixel page is never larger than its box; this caps a warp


def order_quad(quad: np.ndarray) -> np.ndarray:
    """The 4 corners as top-left, top-right, bottom-right, bottom-left (by the sums and differences of x, y)."""
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    s, d = q.sum(axis=1), q[:, 1] - q[:, 0]
    tl, br = q[np.argmin(s)], q[np.argmax(s)]
    rest = [i for i in range(4) if not np.array_equal(q[i], tl) and not np.array_equal(q[i], br)]
    if len(rest) != 2:  # degenerate (repeated corners): fall back to the bounds
        lo, hi = q.min(axis=0), q.max(axis=0)
        return np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    tr, bl = sorted(rest, key=lambda i: d[i])
    return np.array([tl, q[tr], br, q[bl]])


def _perspective_coeffs(src: np.ndarray, dst: np.ndarray) -> list[float]:
    """PIL's 8 PERSPECTIVE coefficients mapping output points `dst` to input points `src` (4 pairs)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return np.linalg.solve(np.array(rows), np.array(rhs)).tolist()


def crop_quad(image: Image.Image, quad: np.ndarray, horizontal: bool = True) -> Image.Image | None:
    """The line inside `quad`, straightened; None for a box under 2 px on a side."""
    q = order_quad(quad)
    width = int(round(max(np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[2] - q[3]))))
    height = int(round(max(np.linalg.norm(q[3] - q[0]), np.linalg.norm(q[2] - q[1]))))
    if width < 2 or height < 2:
        return None
    if width * height > MAX_CROP_PIXELS:
        scale = (MAX_CROP_PIXELS / (width * height)) ** 0.5
        width, height = max(2, int(width * scale)), max(2, int(height * scale))
    top = q[1] - q[0]
    if abs(np.degrees(np.arctan2(top[1], top[0]))) <= STRAIGHT_DEG:
        # clamped to the page: a box from a boxes file may reach past it, and PIL would pad with black
        lo = np.clip(np.floor(q.min(axis=0)), 0, image.size).astype(int)
        hi = np.clip(np.ceil(q.max(axis=0)), 0, image.size).astype(int)
        if (hi - lo).min() < 2:
            return None
        crop = image.crop((int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])))
    else:
        dst = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
        crop = image.transform((width, height), Image.PERSPECTIVE, _perspective_coeffs(q, dst), Image.BICUBIC,
                               fillcolor=(255, 255, 255) if image.mode == "RGB" else 255)
    if horizontal and crop.height > TALL * crop.width:
        crop = crop.transpose(Image.Transpose.ROTATE_90)  # text running down the page reads left to right
    return crop


def ink(crop: Image.Image) -> np.ndarray:
    """Per pixel, whether it is ink: darker than the midpoint between the crop's paper and ink (lighter, when
    the text is light on a dark ground); all False for a crop without contrast."""
    a = np.asarray(crop.convert("L"), dtype=np.float32)
    lo, hi = np.percentile(a, 2), np.percentile(a, 98)
    if hi - lo < 24:
        return np.zeros(a.shape, dtype=bool)
    dark = a < (lo + hi) / 2
    return ~dark if dark.mean() > 0.5 else dark


def gaps(crop: Image.Image, min_gap: float) -> list[tuple[int, int]]:
    """Column spans (start, end) without ink, at least `min_gap` x the ink's height wide, between the first and
    last ink."""
    mask = ink(crop)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(cols) == 0:
        return []
    least = min_gap * (rows[-1] - rows[0] + 1)
    inked = mask.any(axis=0)
    out, start = [], None
    for x in range(int(cols[0]), int(cols[-1]) + 1):
        if not inked[x] and start is None:
            start = x
        elif inked[x] and start is not None:
            if x - start >= least:
                out.append((start, x))
            start = None
    return out


def split_line(crop: Image.Image, max_ratio: float | None, word_gap: float = WORD_GAP) -> list[Image.Image]:
    """Cut a line crop at word gaps (blank columns >= word_gap x the ink's height): with `max_ratio` None at every
    gap (one piece per word); otherwise into the fewest pieces no wider than max_ratio x the height, each cut
    at the gap nearest the limit. A piece never splits a word; a single word wider than the limit stays whole."""
    h = crop.height
    if max_ratio is not None and crop.width <= max_ratio * h:
        return [crop]
    cuts = [(a + b) // 2 for a, b in gaps(crop, word_gap)]
    edges = [0] + cuts if max_ratio is None else _fewest_pieces(cuts, crop.width, max_ratio * h)
    edges.append(crop.width)
    pieces = [crop.crop((a, 0, b, h)) for a, b in zip(edges, edges[1:]) if b - a >= 2]
    return pieces or [crop]


def _fewest_pieces(cuts: list[int], width: int, limit: float) -> list[int]:
    """Left edges of the pieces: greedy, each piece ends at the last cut within `limit` of its start."""
    edges, best = [0], None
    for c in cuts:
        if c - edges[-1] > limit and best is not None and best > edges[-1]:
            edges.append(best)
        if c - edges[-1] > limit:  # one word wider than the limit: it becomes a piece of its own
            edges.append(c)
        best = c
    if width - edges[-1] > limit and best is not None and best > edges[-1]:
        edges.append(best)
    return edges
