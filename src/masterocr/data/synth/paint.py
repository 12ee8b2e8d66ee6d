"""Paint a synthetic word's masks: colours with enough contrast, a background, shadow, outline and fill."""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageFilter

from masterocr.data.synth.background import background
from masterocr.data.synth.choices import Sizing, Style
from masterocr.data.synth.colour import Colour, int_colour, luminance, pick_luminances, random_colour
from masterocr.data.synth.masks import Masks

__all__ = ["paint"]

_BILINEAR = Image.Resampling.BILINEAR


def paint(masks: Masks, sizing: Sizing, style: Style, rng: random.Random) -> tuple[Image.Image, float]:
    """The RGB crop, and the strength (0.5..1) the degradations may have on it."""
    layers = masks.layers
    ww, hh = layers[0].size
    # thin strokes in pixels (hairline/light/script faces, small sizes) lose contrast when anti-aliased:
    # no low contrast for them, and gentler blur and noise
    thin = sizing.metrics.weight * sizing.size < 12.0
    lb, lt, contrast = pick_luminances(rng, thin)
    gray_look = rng.random() < 0.45
    bg_col = random_colour(rng, lb, 0.0 if gray_look else rng.uniform(0.1, 0.9))
    fg_col = random_colour(rng, lt, 0.0 if gray_look and rng.random() < 0.7 else rng.uniform(0.0, 1.0))
    amp = contrast * rng.uniform(0.12, 0.45)
    img = background(rng, ww, hh, bg_col, amp)
    if style.shadow:
        _paint_shadow(img, layers[1 if style.outline else 0], lb, lt, rng)
    if style.outline:
        o_col = random_colour(rng, lb + (lb - lt) * rng.uniform(-0.3, 0.2), rng.uniform(0, 1))
        if abs(luminance(o_col) - lt) < 60:
            o_col = random_colour(rng, 255.0 - lt, rng.uniform(0, 1))
        img.paste(int_colour(o_col), (0, 0), layers[1])
    if rng.random() < 0.08:  # colour gradient across the text
        img.paste(_gradient(rng, fg_col, lt, ww, hh), (0, 0), layers[0])
    else:
        img.paste(int_colour(fg_col), (0, 0), layers[0])
    if style.neighbour:
        img.paste(int_colour(fg_col), (0, 0), layers[-1])
    return img, 0.6 if thin else 1.0 if contrast >= 90 else 0.5


def _paint_shadow(img: Image.Image, mask: Image.Image, lb: float, lt: float, rng: random.Random) -> None:
    """A drop shadow of `mask`, offset by a pixel or two, sometimes blurred, darker than both colours."""
    ww, hh = img.size
    dx, dy = rng.randint(-2, 2) or 1, rng.randint(0, 2) or 1
    sh = mask.transform((ww, hh), Image.Transform.AFFINE, (1, 0, -dx, 0, 1, -dy), _BILINEAR)
    if rng.random() < 0.6:
        sh = sh.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
    opacity = rng.uniform(0.4, 0.8)
    sh = sh.point([int(v * opacity) for v in range(256)])
    s_col = random_colour(rng, min(lt, lb) * 0.4, 0.0) if lt < lb or rng.random() < 0.5 else random_colour(rng, 20, 0)
    img.paste(int_colour(s_col), (0, 0), sh)


def _gradient(rng: random.Random, fg_col: Colour, lt: float, ww: int, hh: int) -> Image.Image:
    """A left-to-right blend from the text colour to a second one of the same luminance."""
    fg2 = random_colour(rng, lt, rng.uniform(0, 1))
    t = np.linspace(0.0, 1.0, ww, dtype=np.float32)[None, :, None]
    grad = np.array(fg_col, dtype=np.float32) * (1 - t) + np.array(fg2, dtype=np.float32) * t
    return Image.fromarray(np.broadcast_to(grad, (hh, ww, 3)).astype(np.uint8), "RGB")
