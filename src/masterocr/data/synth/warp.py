"""Geometry of a synthetic word image: one random rotation, shear and perspective warp, and a sine or arc bend.

The warp is applied to the text masks (not to the finished crop) so that the crop and the background stay
axis-aligned; `Warp.forward` maps mask points to warped points for the line-box computation.
"""

from __future__ import annotations

import math
import random

import numpy as np
from PIL import Image

from masterocr.data.geometry import homography

__all__ = ["Warp", "bend"]


class Warp:
    """A random rotation + shear (+ sometimes perspective) of a w x h canvas, expanded to fit.

    `forward(x, y)` maps canvas points to output points; `method`/`coeffs` are what `Image.transform` needs
    (the output -> input map); `size` is the output size. Affine warps (70%) avoid NumPy entirely. `line`
    bounds the rotation of long text lines (the same random draws, a smaller angle).
    """

    def __init__(self, rng: random.Random, w: int, h: int, line: bool = False) -> None:
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
        if line:  # a text line drifts at most 0.15 of its height from end to end, as on a scanned page
            limit = math.degrees(math.atan(0.15 * h / w))
            deg = max(-limit, min(limit, deg))
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
            self.fwd = np.append(homography(corners, np.array(pts, dtype=np.float64)), 1.0).reshape(3, 3)
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


def bend(arr: np.ndarray, rng: random.Random, size: float) -> np.ndarray:
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


