"""Text boxes from a Differentiable Binarization probability map, as the DB paper (Liao et al., AAAI 2020)
defines the inference step: binarize the probability map at a fixed threshold, take each connected region
(a shrunk text kernel), keep it when its mean probability is high enough, and grow its polygon back by the
offset D' = A' * r / L' (A' area, L' perimeter, r the unclip ratio) with the Vatti clipping algorithm
(pyclipper). The grown polygon's minimum-area rectangle is the box.

Written for this package from the paper; connected regions come from runs of set pixels joined row to row,
the rectangle from the convex hull's edges (one edge of a minimum-area rectangle lies on the hull).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# the paper's inference settings: binarization threshold 0.3, unclip ratio r = 1.5; a region whose mean
# probability is under 0.6 is dropped (the authors' released configuration)
THRESH = 0.3
BOX_THRESH = 0.6
UNCLIP_RATIO = 1.5
MIN_SIDE = 3  # a kernel narrower than this many map pixels is noise, not a glyph
MAX_REGIONS = 5000  # a page of confetti is cut off here, so time stays bounded


@dataclass
class Region:
    """A connected region of the binary map: its runs (row, x0, x1 inclusive) and mean probability."""

    runs: np.ndarray  # (n, 3) int
    score: float


def _row_runs(mask: np.ndarray) -> np.ndarray:
    """Every horizontal run of True pixels as (row, x0, x1), row-major."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    diff = np.diff(padded, axis=1)
    ys, starts = np.nonzero(diff == 1)
    _, ends = np.nonzero(diff == -1)
    return np.stack([ys, starts, ends - 1], axis=1) if len(ys) else np.zeros((0, 3), dtype=np.int64)


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def connected_regions(mask: np.ndarray, prob: np.ndarray) -> list[Region]:
    """8-connected regions of `mask`, each with the mean of `prob` over its pixels."""
    runs = _row_runs(mask)
    parent = list(range(len(runs)))
    row_start = np.searchsorted(runs[:, 0], np.arange(mask.shape[0] + 1)) if len(runs) else None
    for i, (y, x0, x1) in enumerate(runs):
        if y == 0:
            continue
        lo, hi = row_start[y - 1], row_start[y]
        for j in range(lo, hi):  # runs of the row above touching this one (8-connectivity: one column of slack)
            _, a0, a1 = runs[j]
            if a0 <= x1 + 1 and a1 >= x0 - 1:
                ri, rj = _find(parent, i), _find(parent, j)
                if ri != rj:
                    parent[ri] = rj
    groups: dict[int, list[int]] = {}
    for i in range(len(runs)):
        groups.setdefault(_find(parent, i), []).append(i)
    regions = []
    for members in groups.values():
        r = runs[members]
        total = sum(float(prob[y, a : b + 1].sum()) for y, a, b in r)
        count = int((r[:, 2] - r[:, 1] + 1).sum())
        regions.append(Region(r, total / count))
    return regions


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z of the cross product of 2-D vectors (rows)."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Convex hull of (n, 2) points, counter-clockwise (Andrew's monotone chain)."""
    pts = np.unique(points.astype(np.float64), axis=0)
    if len(pts) <= 2:
        return pts

    def half(seq: np.ndarray) -> list:
        out: list = []
        for p in seq:
            while len(out) >= 2 and _cross(out[-1] - out[-2], p - out[-2]) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def min_area_rect(points: np.ndarray) -> np.ndarray:
    """The minimum-area rectangle around (n, 2) points as 4 corners (4, 2)."""
    hull = convex_hull(points)
    if len(hull) < 3:
        lo, hi = points.min(axis=0), points.max(axis=0)
        return np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]], dtype=np.float64)
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
    best = None
    for a in angles:
        rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # into the edge's frame
        p = hull @ rot.T
        lo, hi = p.min(axis=0), p.max(axis=0)
        area = float(np.prod(hi - lo))
        if best is None or area < best[0]:
            corners = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
            best = (area, corners @ rot)  # back to image coordinates (rot is orthonormal)
    return best[1]


def unclip(quad: np.ndarray, ratio: float = UNCLIP_RATIO) -> np.ndarray | None:
    """Grow a polygon by A * ratio / L (the paper's D'); None when it vanishes."""
    import pyclipper

    area = abs(float(_cross(quad, np.roll(quad, -1, axis=0)).sum())) / 2
    length = float(np.linalg.norm(quad - np.roll(quad, -1, axis=0), axis=1).sum())
    if length == 0:
        return None
    offset = pyclipper.PyclipperOffset()
    offset.AddPath([tuple(p) for p in np.round(quad * 16).astype(np.int64).tolist()],
                   pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    grown = offset.Execute(area * ratio / length * 16)  # x16: clipper works on integers, keep sub-pixel detail
    if not grown:
        return None
    return np.array(max(grown, key=len), dtype=np.float64) / 16


def boxes_from_map(
    prob: np.ndarray, thresh: float = THRESH, box_thresh: float = BOX_THRESH, unclip_ratio: float = UNCLIP_RATIO
) -> list[tuple[np.ndarray, float]]:
    """(quad (4, 2) in map pixels, score) for every text region of a probability map (H, W) in [0, 1]."""
    regions = connected_regions(prob > thresh, prob)
    regions.sort(key=lambda r: -len(r.runs))
    out = []
    for region in regions[:MAX_REGIONS]:
        if region.score < box_thresh:
            continue
        y, x0, x1 = region.runs[:, 0], region.runs[:, 1], region.runs[:, 2] + 1
        corners = np.concatenate([np.stack([x0, y], 1), np.stack([x1, y], 1),
                                  np.stack([x0, y + 1], 1), np.stack([x1, y + 1], 1)])
        rect = min_area_rect(corners)
        sides = np.linalg.norm(rect - np.roll(rect, -1, axis=0), axis=1)
        if sides.min() < MIN_SIDE:
            continue
        grown = unclip(rect, unclip_ratio)
        if grown is None:
            continue
        out.append((min_area_rect(grown), region.score))
    return out
