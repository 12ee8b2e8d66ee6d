"""A contact sheet of synthetic samples with their labels (docs/synth_samples.png)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from masterocr.charset import Charset
from masterocr.data.synth.families import select_fonts
from masterocr.data.synth.fonts import DEFAULT_FONT, load_font
from masterocr.data.synth.synthesizer import Synthesizer, as_charset

__all__ = ["render_grid"]


def render_grid(
    out_png: str | Path,
    n: int = 48,
    seed: int = 0,
    *,
    fonts: Sequence[str | Path] | None = None,
    charset: Charset | str | Path | None = None,
    height: int = 32,
    cols: int = 4,
    scale: float = 2.0,
    font_split: str = "all",
) -> Path:
    """Save a grid of `n` synthetic samples (shown `scale`x, labels and font names below) as a PNG."""
    cs = as_charset(charset)
    synth = Synthesizer(cs, select_fonts(fonts, font_split, charset_keys=cs.keys), height=height, seed=seed)
    items = []
    for i in range(n):
        rng = random.Random(f"synth-gen:{seed}:{i}")
        img, label = synth.sample(rng)
        items.append((img, label))
    cell_w = int(height * scale * 6)
    cell_h = int(height * scale) + 34
    sheet = Image.new("RGB", (cols * cell_w, math.ceil(n / cols) * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    label_font = load_font(_label_font(), 14)
    for k, (img, label) in enumerate(items):
        x, y = (k % cols) * cell_w, (k // cols) * cell_h
        f = min(scale, (cell_w - 8) / img.width)  # wide crops are shown smaller, never cut
        shown = img.resize((max(1, int(img.width * f)), max(1, int(height * f))), Image.Resampling.NEAREST)
        sheet.paste(shown, (x + 4, y + 4))
        draw.text((x + 4, y + int(height * scale) + 8), repr(label)[1:-1], fill=(180, 0, 0), font=label_font)
    sheet.save(out_png)
    return Path(out_png)


def _label_font() -> str:
    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",):
        if Path(path).is_file():
            return path
    return DEFAULT_FONT
