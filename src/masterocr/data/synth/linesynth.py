"""One labelled synthetic text line: a line text, a face that draws all of it, and the word renderer's steps.

Lines go through `render.render_word` (the same size, style, warp, paint and degradation steps as the word
crops; long lines tilt less there) at a fixed height and their natural width, at most `max_width` pixels:
a text whose estimated width is too large is cut (at a space for Latin text) before rendering, and a render
still wider than `max_width` is cut again and re-rendered when more than 15% too wide, else squeezed.

Faces: Chinese and mixed lines are drawn in a CJK face (design first, then one of its faces), Latin lines in
a Latin font of the word pool (design first) or, one time in four, in a CJK face's Latin glyphs. A face must
draw every character of the line (`cjkfonts.FaceCoverage`); up to 6 faces are tried, then the characters
the last one lacks are dropped from the line and counted in `dropped_glyphs`: no line shows tofu.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from masterocr.charset import Charset
from masterocr.data.synth.cjkfonts import coverage, select_cjk_fonts
from masterocr.data.synth.families import group_by_family, select_fonts
from masterocr.data.synth.linetext import KINDS, LineTextSampler
from masterocr.data.synth.render import render_word
from masterocr.errors import UserError

__all__ = ["DEFAULT_KIND_WEIGHTS", "LineSynthesizer", "default_max_width", "render_line"]

DEFAULT_KIND_WEIGHTS = {"latin": 0.35, "zh": 0.40, "mixed": 0.25}
_CJK_LATIN_SHARE = 0.25


def default_max_width(height: int) -> int:
    """The widest line: 50 times the height (1,600 px at height 32, 2,400 px at 48)."""
    return 50 * height


def _cut(text: str, n: int) -> str:
    """The first `n` characters of `text`, ending at a space when the cut would split a Latin word."""
    if n >= len(text):
        return text
    head = text[: max(1, n)]
    if head[-1].isascii() and head[-1].isalnum() and " " in head[1:]:
        head = head[: head.rindex(" ")]
    return head.rstrip() or text[:1]


def render_line(
    text: str, font: str, rng: random.Random, height: int = 32, max_width: int | None = None
) -> tuple[Image.Image, str]:
    """(RGB line image `height` px tall and at most `max_width` wide, the text it shows)."""
    max_width = max_width or default_max_width(height)
    # em widths: CJK and full-width forms ~1, Latin ~0.55 (measuring the text with the font costs more)
    est = height * 0.95 * sum(1.0 if ord(c) >= 0x2E80 else 0.55 for c in text)
    if est > max_width * 0.95:
        text = _cut(text, int(len(text) * max_width * 0.9 / est))
    for _ in range(3):
        img = render_word(text, font, rng, height, line=True)
        if img.width <= max_width:
            return img, text
        if img.width <= max_width * 1.15 or len(text) < 2:
            break
        text = _cut(text, int(len(text) * max_width * 0.95 / img.width))
    return img.resize((max_width, height), Image.Resampling.BILINEAR), text


class LineSynthesizer:
    """Line texts + faces + renderer: `sample(rng) -> (image, label, face, kind)`, deterministic per rng."""

    def __init__(
        self,
        charset: Charset,
        *,
        height: int = 32,
        max_width: int | None = None,
        max_len: int = 160,
        split: str = "train",
        font_dirs: Sequence[str | Path] | None = None,
        kinds: dict[str, float] | None = None,
    ) -> None:
        kinds = dict(kinds or DEFAULT_KIND_WEIGHTS)
        bad = sorted(set(kinds) - set(KINDS))
        if bad or not kinds or min(kinds.values()) < 0 or sum(kinds.values()) <= 0:
            raise UserError(f"line kinds must be weights >= 0 over {', '.join(KINDS)}, got {kinds}")
        if height < 8:
            raise UserError(f"line height must be >= 8 pixels, got {height}")
        self.charset = charset
        self.height = height
        self.max_width = max_width or default_max_width(height)
        if self.max_width < 2 * height:
            raise UserError(f"max line width must be >= 2 x height ({2 * height}), got {self.max_width}")
        self.kinds = tuple(kinds)
        self.kind_weights = tuple(kinds[k] for k in self.kinds)
        self.text = LineTextSampler(charset, max_len=max_len)
        self.cjk = list(select_cjk_fonts(font_dirs, split).values())
        try:
            latin = select_fonts(font_dirs, split, charset_keys=charset.keys)
        except UserError:
            latin = []  # folders holding only CJK fonts: Latin lines use the CJK faces' Latin glyphs
        self.latin = list(group_by_family(latin).values())
        self.dropped_glyphs: Counter[str] = Counter()

    @property
    def dropped(self) -> Counter[str]:
        """Characters left out of lines: outside the charset, or drawn by no face tried."""
        return self.text.dropped + self.dropped_glyphs

    def pick_face(self, rng: random.Random, kind: str) -> str:
        """A face for a line of `kind`: design family first, then one of its faces."""
        if kind == "latin" and self.latin and rng.random() >= _CJK_LATIN_SHARE:
            return rng.choice(rng.choice(self.latin))
        return rng.choice(rng.choice(self.cjk))

    def sample(self, rng: random.Random, chunk: bool = False) -> tuple[Image.Image, str, str, str]:
        """(image, label, face, kind) of one line (a short chunk of one with `chunk`); the label is the
        charset-clean text the image shows."""
        kind = rng.choices(self.kinds, weights=self.kind_weights)[0]
        text = self.text.sample(rng, kind, chunk)
        face = self.pick_face(rng, kind)
        for _ in range(5):
            if not coverage(face).missing(text):
                break
            face = self.pick_face(rng, kind)
        missing = coverage(face).missing(text)
        if missing:
            self.dropped_glyphs.update(c for c in text if c in missing)
            text = " ".join("".join(c for c in text if c not in missing).split())
        if not text:
            text = next(c for c in self.charset.keys if not c.isspace() and not coverage(face).missing(c))
        img, text = render_line(text, face, rng, self.height, self.max_width)
        return img, " ".join(self.charset.clean(text).split()), face, kind
