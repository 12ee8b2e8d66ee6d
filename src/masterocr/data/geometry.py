"""Projective geometry shared by the renderer's warp and the training augmentation."""

from __future__ import annotations

import numpy as np


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 8 coefficients (a..h, with i = 1) of the projective map sending the 4 `src` points onto `dst`.

    Pillow's `Image.transform(..., PERSPECTIVE, coeffs)` wants the output -> input map: pass the output's
    points as `src`. Raises `numpy.linalg.LinAlgError` for degenerate points (three of them on one line).
    """
    a = np.zeros((8, 8), dtype=np.float64)
    b = np.empty(8, dtype=np.float64)
    for i in range(4):
        (x, y), (u, v) = src[i], dst[i]
        a[2 * i] = (x, y, 1, 0, 0, 0, -u * x, -u * y)
        a[2 * i + 1] = (0, 0, 0, x, y, 1, -v * x, -v * y)
        b[2 * i], b[2 * i + 1] = u, v
    return np.linalg.solve(a, b)
