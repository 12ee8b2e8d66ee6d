"""One synthetic word crop, rendered as a sequence of named steps that all draw from one `random.Random`.

`render_word` picks the font size, then a style (spacing, outline, shadow, underline, a neighbouring word's
fragment), draws the text masks, bends and warps them, crops with margins, paints them on a background and
degrades the result. Every step draws from the same rng in a fixed order, so a seed gives the same bytes
(tests/test_synth_golden.py pins them): reordering draws, even within a step, changes every sample.
"""

from __future__ import annotations

import math
import random

import numpy as np
from PIL import Image

from masterocr.data.synth.choices import Sizing, Style, choose_size, choose_style, margin
from masterocr.data.synth.degrade import LazyGenerator, degrade
from masterocr.data.synth.masks import Masks, draw_masks
from masterocr.data.synth.paint import paint
from masterocr.data.synth.warp import Warp, bend
from masterocr.errors import UserError

__all__ = ["render_word"]

_BILINEAR = Image.Resampling.BILINEAR


def render_word(
    text: str,
    font_path: str,
    rng: random.Random,
    height: int = 32,
    width: int | None = None,
    *,
    line: bool = False,
) -> Image.Image:
    """Render `text` as an RGB word crop `height` pixels tall (natural width, or exactly `width` when given).

    The font must draw every character of `text` (see `fonts.supported_chars`); `font_path` may be
    `fonts.DEFAULT_FONT`. Deterministic for a given `rng` state. `line=True` (text lines) bounds the tilt so
    that a long line stays about `height` tall; it leaves every random draw as it is.
    """
    if not text or not text.strip():
        raise UserError("cannot render an empty label")
    if height < 4:
        raise UserError(f"synthetic image height must be >= 4 pixels, got {height}")
    nrng = LazyGenerator(rng.getrandbits(64))
    sizing = choose_size(text, font_path, rng, height)
    style = choose_style(rng, font_path, sizing.size)
    masks = draw_masks(text, font_path, sizing, style, rng)
    box = _bend_and_warp(masks, text, sizing, style, rng, line)
    _crop(masks, box, text, height, sizing, style, rng)
    img, strength = paint(masks, sizing, style, rng)
    out_w = width if width else max(1, int(round(img.width * height / img.height)))
    if (out_w, height) != img.size:
        img = img.resize((out_w, height), _BILINEAR)
    return degrade(img, rng, nrng, height, strength)


def _bend_and_warp(
    masks: Masks, text: str, sizing: Sizing, style: Style, rng: random.Random, line: bool = False
) -> tuple[int, int, int, int]:
    """Sometimes bend, then warp the masks; returns the box (x0, y0, x1, y1) of the text in them."""
    layers = masks.layers
    if rng.random() < 0.12 and len(text) >= 3:
        bend_seed = rng.getrandbits(32)  # the same bend for every layer
        layers = [Image.fromarray(bend(np.asarray(m), random.Random(bend_seed), sizing.size)) for m in layers]
        masks.base_y += (layers[0].size[1] - masks.height) // 2
        masks.height = layers[0].size[1]
    warp = Warp(rng, masks.width, masks.height, line)
    if warp.identity:
        forward = lambda x, y: (x, y)  # noqa: E731
    else:
        layers = [m.transform(warp.size, warp.method, warp.coeffs, _BILINEAR) for m in layers]
        forward = warp.forward
    masks.layers = layers
    masks.width, masks.height = layers[0].size
    bx0, by0, bx1, by1 = layers[1 if style.outline else 0].getbbox() or (0, 0, layers[0].width, layers[0].height)
    if sizing.line_mode:  # the line box, warped, widens the text box
        s64 = sizing.size / 64.0
        cx = masks.x0 + masks.text_w / 2
        ya = forward(cx, masks.base_y + sizing.top * s64)[1]
        yb = forward(cx, masks.base_y + sizing.bot * s64)[1]
        by0 = min(by0, int(math.floor(min(ya, yb))))
        by1 = max(by1, int(math.ceil(max(ya, yb))))
    return bx0, by0, bx1, by1


def _crop(
    masks: Masks,
    box: tuple[int, int, int, int],
    text: str,
    height: int,
    sizing: Sizing,
    style: Style,
    rng: random.Random,
) -> None:
    """Crop the masks with margins: exactly `height` rows when the text fits, so no resampling is needed."""
    bx0, by0, bx1, by1 = box
    eh = max(1, by1 - by0)
    ml, mr = margin(rng) * eh, margin(rng) * eh
    spare = height - eh
    if spare >= 0:
        m_sum = sizing.m_top + sizing.m_bot
        share = sizing.m_top / m_sum if m_sum > 0 else rng.random()
        mt = int(round(spare * share))
        mb = spare - mt
    else:
        mt, mb = int(round(sizing.m_top * eh)), int(round(sizing.m_bot * eh))
    if style.neighbour:  # show a sliver of the neighbouring word beyond the gap
        sliver = style.gap + rng.uniform(0.05, 0.2) * sizing.size
        if style.side > 0:
            mr = sliver
        else:
            ml = sliver
    if eh >= 14 and rng.random() < 0.08:  # cut one pixel into the glyphs on one side
        which = rng.randrange(4)
        if which == 0 and text[0].isalnum():
            ml = -1
        elif which == 1 and text[-1].isalnum():
            mr = -1
        elif which == 2 and mt >= 0:
            mt, mb = -1, mb + mt + 1
        elif which == 3 and mb >= 0:
            mt, mb = mt + mb + 1, -1
    crop = (int(round(bx0 - ml)), by0 - mt, int(round(bx1 + mr)), by1 + mb)
    crop = (crop[0], crop[1], max(crop[2], crop[0] + 1), max(crop[3], crop[1] + 1))
    masks.layers = [m.crop(crop) for m in masks.layers]
    masks.width, masks.height = masks.layers[0].size
