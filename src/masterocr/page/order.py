"""Reading order of a page's lines: columns first, then top to bottom (a recursive XY-cut).

A region is cut down a blank vertical gutter when it has one at least a line's height wide (its columns read
left to right); otherwise across its widest blank horizontal gap (top part first). A heading that spans the
columns blocks every gutter, so it is cut off above them first; a footnote below them likewise. Regions with
neither gap (overlapping boxes) read in rows by their centres, top to bottom, each row left to right.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

GUTTER = 1.0  # a column gutter is at least this many median line heights wide


def _widest_gap(lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
    """The widest uncovered stretch between intervals [lo, hi] (gap width, its middle); (0, 0) if none."""
    order = np.argsort(lo)
    reach, best = hi[order[0]], (0.0, 0.0)
    for i in order[1:]:
        if lo[i] > reach and lo[i] - reach > best[0]:
            best = (float(lo[i] - reach), float((lo[i] + reach) / 2))
        reach = max(reach, hi[i])
    return best


def reading_order(boxes: Sequence[Sequence[float]]) -> list[int]:
    """Indices of `boxes` (x0, y0, x1, y1) in reading order."""
    if len(boxes) == 0:
        return []
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    heights = b[:, 3] - b[:, 1]
    # each line's core (the middle half of its height): detected boxes carry margins that make neighbouring
    # lines overlap, which would hide the blank gaps between them
    b[:, 1], b[:, 3] = b[:, 1] + heights / 4, b[:, 3] - heights / 4
    gutter = GUTTER * float(np.median(heights[heights > 0])) if (heights > 0).any() else 1.0
    out: list[int] = []
    stack = [np.arange(len(b))]  # regions still to order; the next one to read on top
    while stack:
        idx = stack.pop()
        if len(idx) == 1:
            out.append(int(idx[0]))
            continue
        r = b[idx]
        vgap, vmid = _widest_gap(r[:, 0], r[:, 2])
        if vgap >= gutter:
            left = r[:, 2] <= vmid
            stack += [idx[~left], idx[left]]
            continue
        hgap, hmid = _widest_gap(r[:, 1], r[:, 3])
        if hgap > 0:
            top = r[:, 3] <= hmid
            stack += [idx[~top], idx[top]]
            continue
        if vgap > 0:  # side by side on one band, closer than a gutter: left to right
            left = r[:, 2] <= vmid
            stack += [idx[~left], idx[left]]
            continue
        out.extend(int(idx[k]) for k in _rows(r))
    return out


def _rows(r: np.ndarray) -> list[int]:
    """Overlapping boxes: rows by centre (a box within half a line height of a row's first box joins it),
    rows top to bottom, each left to right."""
    cy = (r[:, 1] + r[:, 3]) / 2
    tol = 0.5 * float(np.median(r[:, 3] - r[:, 1]))
    rows: list[list[int]] = []
    for k in np.argsort(cy, kind="stable"):
        if rows and abs(cy[k] - cy[rows[-1][0]]) <= tol:
            rows[-1].append(int(k))
        else:
            rows.append([int(k)])
    return [k for row in rows for k in sorted(row, key=lambda k: r[k, 0])]
