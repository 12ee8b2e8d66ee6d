"""The one homography solver: it maps each source corner onto its destination."""

from __future__ import annotations

import numpy as np
import pytest

from masterocr.data.geometry import homography


def _apply(coeffs: np.ndarray, x: float, y: float) -> tuple[float, float]:
    a, b, c, d, e, f, g, h = coeffs
    den = g * x + h * y + 1.0
    return (a * x + b * y + c) / den, (d * x + e * y + f) / den


def test_homography_maps_the_four_points():
    src = np.array([[0, 0], [100, 0], [100, 32], [0, 32]], dtype=np.float64)
    dst = np.array([[3, -2], [97, 4], [104, 30], [-5, 35]], dtype=np.float64)
    coeffs = homography(src, dst)
    assert coeffs.shape == (8,)
    for (x, y), (u, v) in zip(src, dst, strict=True):
        assert _apply(coeffs, x, y) == pytest.approx((u, v), abs=1e-9)


def test_homography_of_degenerate_points_raises():
    line = np.array([[0, 0], [1, 1], [2, 2], [3, 3]], dtype=np.float64)
    with pytest.raises(np.linalg.LinAlgError):
        homography(line, line)
