"""Colours of a synthetic word: luminances with enough contrast, then a hue and saturation around them.

Colours are plain tuples of floats in 0..255: NumPy is slower than Python for three numbers.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

Colour = tuple[float, float, float]


def luminance(c: Sequence[float]) -> float:
    """Perceived brightness (ITU-R BT.601 weights) of an RGB colour."""
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _clip255(v: float) -> float:
    return 0.0 if v < 0.0 else 255.0 if v > 255.0 else v


def random_colour(rng: random.Random, lum: float, sat: float) -> Colour:
    """A random RGB colour (0..255 floats) of about luminance `lum` and saturation `sat` in [0, 1]."""
    r, g, b = rng.random(), rng.random(), rng.random()
    m = luminance((r, g, b))
    c = (lum + sat * 160.0 * (r - m), lum + sat * 160.0 * (g - m), lum + sat * 160.0 * (b - m))
    for _ in range(3):  # clip, then move back towards the wanted luminance
        c = (_clip255(c[0]), _clip255(c[1]), _clip255(c[2]))
        d = lum - luminance(c)
        if abs(d) < 1.0:
            break
        c = (c[0] + d, c[1] + d, c[2] + d)
    return (_clip255(c[0]), _clip255(c[1]), _clip255(c[2]))


def int_colour(c: Sequence[float]) -> tuple[int, int, int]:
    """The colour rounded to the 8-bit integers Pillow paints with."""
    return (int(c[0] + 0.5), int(c[1] + 0.5), int(c[2] + 0.5))


def pick_luminances(rng: random.Random, thin: bool = False) -> tuple[float, float, float]:
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
