"""The text masks of a synthetic word: fill, outline (fill + stroke) and a neighbouring word's fragment.

Each mask is an "L" image of one canvas, the union of all ink (and of the line box in line mode) plus 2 px;
an underline is drawn into the fill and outline masks.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image

from masterocr.data.synth.choices import Sizing, Style
from masterocr.data.synth.fonts import load_font
from masterocr.data.synth.glyphs import Placement, layout

__all__ = ["Masks", "draw_masks"]

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1)


@dataclass
class Masks:
    """The masks (fill, [outline], [neighbour]) and where the text sits in them."""

    layers: list[Image.Image]
    text_w: float  # advance width of the text
    x0: int  # pen start on the canvas (before the warp)
    base_y: int  # baseline on the canvas (before the warp)
    width: int  # size of the layers
    height: int


def draw_masks(text: str, font_path: str, sizing: Sizing, style: Style, rng: random.Random) -> Masks:
    """Lay out the glyphs of the text (and of the fragment), then draw them into one mask per layer."""
    size = sizing.size
    # glyph placements (bitmap, x, y) with the pen starting at (0, 0) on the baseline
    fill, text_w = layout(font_path, size, text, style.spacing, 0.0, 0)
    layouts = [fill]
    if style.outline:
        layouts.append(layout(font_path, size, text, style.spacing, 0.0, style.stroke)[0])
    if style.neighbour:
        frag_w = layout(font_path, size, style.frag, 0.0, 0.0, 0)[1]
        nx = text_w + style.gap if style.side > 0 else -style.gap - frag_w
        layouts.append(layout(font_path, size, style.frag, 0.0, nx, 0)[0])
    under = None
    if style.underline:
        desc = load_font(font_path, size).getmetrics()[1]
        uy = max(1, int(desc * rng.uniform(0.2, 0.6)))
        under = (0, uy, int(math.ceil(text_w)), uy + 1 + size // 16)
    ox, oy, cw, ch = _canvas(layouts, under, sizing)
    layers = []
    for k, lay in enumerate(layouts):
        canvas = np.zeros((ch, cw), dtype=np.uint8)
        for arr, x, y in lay:
            region = canvas[y - oy : y - oy + arr.shape[0], x - ox : x - ox + arr.shape[1]]
            np.maximum(region, arr, out=region)
        if under and k < (2 if style.outline else 1):
            grow = style.stroke if k else 0
            ux0, uy0 = max(0, under[0] - ox - grow), max(0, under[1] - oy - grow)
            canvas[uy0 : under[3] - oy + grow, ux0 : under[2] - ox + grow] = 255
        layers.append(Image.fromarray(canvas, "L"))
    return Masks(layers, text_w, -ox, -oy, cw, ch)


def _canvas(layouts: list[list[Placement]], under: Box | None, sizing: Sizing) -> tuple[int, int, int, int]:
    """(x origin, y origin, width, height) of the canvas around all ink and the line box, plus 2 px."""
    s64 = sizing.size / 64.0
    xs0, ys0 = [0], [int(math.floor(sizing.top * s64))]
    xs1, ys1 = [1], [int(math.ceil(sizing.bot * s64))]
    for lay in layouts:
        for arr, x, y in lay:
            xs0.append(x)
            ys0.append(y)
            xs1.append(x + arr.shape[1])
            ys1.append(y + arr.shape[0])
    if under:
        xs0.append(under[0])
        ys0.append(under[1])
        xs1.append(under[2])
        ys1.append(under[3])
    ox, oy = min(xs0) - 2, min(ys0) - 2
    return ox, oy, max(xs1) + 2 - ox, max(ys1) + 2 - oy
