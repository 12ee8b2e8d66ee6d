"""Projective geometry shared by the renderer's warp and the training augmentation."""

from __future__ import annotations

import numpy as np


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 8 coefficients (a..h, with i = 1) of the projective map sending the 4 `src` points onto `dst`.

    Pillow's `Image.transform(..., PERSPECTIVE, coeffs)` wants the output -> input map: pass the output's
    points as `src`. Raises `numpy.linalg.LinAlgError` for degenerate points (three of them on one line).
    Solved in plain Python floats rather than LAPACK, whose kernels differ by CPU in the last bits: the same
    seed then warps to the same pixels on every machine.
    """
    rows: list[list[float]] = []
    for i in range(4):
        (x, y), (u, v) = (float(c) for c in src[i]), (float(c) for c in dst[i])
        rows.append([x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u])
        rows.append([0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v])
    return np.array(_solve(rows), dtype=np.float64)


def _solve(rows: list[list[float]]) -> list[float]:
    """Gaussian elimination with partial pivoting on an augmented n x (n+1) system."""
    n = len(rows)
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        if abs(rows[pivot][col]) < 1e-12:
            raise np.linalg.LinAlgError("singular system: degenerate points")
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(col + 1, n):
            factor = rows[r][col] / rows[col][col]
            if factor:
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col])]
    out = [0.0] * n
    for r in range(n - 1, -1, -1):
        out[r] = (rows[r][n] - sum(rows[r][c] * out[c] for c in range(r + 1, n))) / rows[r][r]
    return out
