"""The random choices that shape one synthetic word before anything is drawn: font size and style."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from masterocr.data.synth.fonts import supported_chars
from masterocr.data.synth.glyphs import FontMetrics, font_metrics

__all__ = ["Sizing", "Style", "choose_size", "choose_style", "margin"]

# letters wide enough that a sliver of them never reads as a whole character (for neighbour fragments)
_WIDE = "mwnuhbdpqoaeMWNHUDOQBRAG"
_ROUND = "oceOCGQS"


@dataclass
class Sizing:
    """The font size and the vertical extent (at the 64 px reference size) the crop is fitted to."""

    metrics: FontMetrics
    size: int
    line_mode: bool  # crop to the line box (cap height + descenders) rather than to the ink
    top: int
    bot: int
    m_top: float  # wanted margins above and below, as fractions of the text height
    m_bot: float


@dataclass
class Style:
    """How the text is drawn: letter spacing, outline, shadow, underline and a neighbouring word fragment."""

    spacing: float
    outline: bool
    shadow: bool
    underline: bool
    stroke: int  # outline width in pixels (0 without outline)
    neighbour: bool
    side: int  # which side the neighbour is on: -1 left, 1 right
    gap: float
    frag: str


def margin(rng: random.Random) -> float:
    """A crop margin as a fraction of the text height: mostly tight, sometimes loose (up to 0.3)."""
    return 0.3 * rng.random() ** 1.7


def _quantize_size(size: float) -> int:
    """Font sizes in ~8% steps (the crop margins absorb the difference): few (font, size) pairs keep the
    font and glyph caches warm."""
    if size <= 12:
        return max(5, int(round(size)))
    return int(round(12 * 1.08 ** round(math.log(size / 12) / math.log(1.08))))


def choose_size(text: str, font_path: str, rng: random.Random, height: int) -> Sizing:
    """Pick the vertical extent to crop, then the font size that makes it about `height` pixels."""
    m_top, m_bot = margin(rng), margin(rng)
    met = font_metrics(font_path)
    ink_top, ink_bot = met.vertical(text)
    # crop to the line (cap height + descenders) rather than the ink sometimes, and always for text without
    # ascenders ("us", "...", "-"): cropped to the x-height, "us" would look like "US"
    line_mode = rng.random() < 0.3 or (ink_bot - ink_top) < 0.85 * (met.cap_bot - met.cap_top)
    top, bot = (min(ink_top, met.cap_top), max(ink_bot, 0)) if line_mode else (ink_top, ink_bot)
    extent = max(1, bot - top)
    size = 64 * height / (extent * (1 + m_top + m_bot)) * rng.uniform(0.9, 1.0)
    size = _quantize_size(min(max(size, 5), 4 * height))
    return Sizing(met, size, line_mode, top, bot, m_top, m_bot)


def choose_style(rng: random.Random, font_path: str, size: int) -> Style:
    """Spacing, outline, shadow, underline and the neighbouring fragment (drawn even when unused)."""
    spacing = 0.0
    r = rng.random()
    if r < 0.15:
        spacing = rng.uniform(0.05, 0.45) * size
    elif r < 0.25:
        spacing = -rng.uniform(0.0, 0.06) * size
    outline = size >= 12 and rng.random() < 0.07
    shadow = rng.random() < 0.06
    underline = rng.random() < 0.04
    stroke = max(1, round(size * rng.uniform(0.04, 0.09))) if outline else 0
    neighbour = rng.random() < 0.05
    side = rng.choice((-1, 1))
    gap = rng.uniform(0.25, 0.6) * size
    frag = "".join(rng.choice(_WIDE) for _ in range(rng.randint(1, 3)))
    # the letter next to the gap is round: a sliver of a stem would read as "l" or "I"
    frag = rng.choice(_ROUND) + frag if side > 0 else frag + rng.choice(_ROUND)
    if neighbour and not set(frag) <= supported_chars(font_path, _WIDE + _ROUND):
        neighbour = False
    return Style(spacing, outline, shadow, underline, stroke, neighbour, side, gap, frag)
