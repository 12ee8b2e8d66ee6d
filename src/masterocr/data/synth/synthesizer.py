"""Labels + fonts + renderer: one labelled synthetic word from an rng."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from masterocr.charset import Charset
from masterocr.data.synth.families import group_by_family, select_fonts
from masterocr.data.synth.fonts import supported_chars
from masterocr.data.synth.render import render_word
from masterocr.data.synth.text import DEFAULT_LANGUAGES, TextSampler
from masterocr.errors import UserError

__all__ = ["Synthesizer", "as_charset"]


def as_charset(charset: Charset | str | Path | None) -> Charset:
    """A Charset as given, read from a keys file, or the default one for None."""
    if charset is None:
        return Charset.default()
    if isinstance(charset, Charset):
        return charset
    return Charset.from_file(charset)


class Synthesizer:
    """Labels + fonts + renderer: `sample(rng) -> (PIL image, label)`.

    Fonts are drawn family first, then a face of that family, so large families (many weights) do not crowd
    out the others; a label is only rendered with a font that draws all its characters (up to 8 fonts are
    tried; then the characters no font drew are dropped from the label).
    """

    def __init__(
        self,
        charset: Charset | None = None,
        fonts: Sequence[str] | None = None,
        *,
        height: int = 32,
        width: int | None = None,
        max_len: int = 25,
        seed: int = 0,
        languages: Sequence[str] = DEFAULT_LANGUAGES,
    ) -> None:
        self.charset = charset or Charset.default()
        self.fonts = list(fonts) if fonts else select_fonts(None, "all", charset_keys=self.charset.keys)
        self.families = list(group_by_family(self.fonts).values())
        self.height = height
        self.width = width
        self.sampler = TextSampler(self.charset, seed=seed, max_len=max_len, languages=languages)
        self.keys = self.charset.keys

    def pick_font(self, rng: random.Random) -> str:
        return rng.choice(rng.choice(self.families))

    def sample(self, rng: random.Random) -> tuple[Image.Image, str]:
        img, text, _ = self.sample_with_font(rng)
        return img, text

    def sample_with_font(self, rng: random.Random) -> tuple[Image.Image, str, str]:
        """`sample`, plus the path of the font that drew it (for per-font error analysis)."""
        for _ in range(10):
            text = self.sampler.sample(rng)
            font = self.pick_font(rng)
            for _ in range(8):
                if set(text) <= supported_chars(font, self.keys):
                    break
                font = self.pick_font(rng)
            else:
                drawn = supported_chars(font, self.keys)
                text = " ".join("".join(c for c in text if c in drawn).split())
            if text:
                return render_word(text, font, rng, self.height, self.width), text, font
        raise UserError("could not render any label: the fonts draw none of the charset's characters")

