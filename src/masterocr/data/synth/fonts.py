"""Font discovery for synthetic text: find TTF/OTF files and keep those that really draw the charset.

`find_fonts()` lists font files under the given folders (or the system font folders), drops fonts that
cannot draw the charset (missing glyphs render as empty masks or as the font's "tofu" box; symbol, pi and
caps-only fonts are caught the same way) and returns sorted absolute paths. `families` splits them by design
family into train and held-out sets.

Pillow's built-in scalable font (`ImageFont.load_default(size=...)`) stands in, as `DEFAULT_FONT`, where no
font file is found in the system folders.
"""

from __future__ import annotations

import functools
import os
import string
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from masterocr.errors import UserError

SYSTEM_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
FONT_SUFFIXES = (".ttf", ".otf")
# pseudo path for Pillow's embedded scalable font, used when a system has no font files at all
DEFAULT_FONT = "<pillow-default>"

# Characters that tell a text font from a symbol/pi font: they must all render, differently from each other
# and differently from the missing-glyph box.
_PROBE = "AaBbEeGgQqRr0123456789&?"
# code points no Latin font maps: they render the font's .notdef glyph ("tofu") or nothing
_MISSING = ("\U0010fffd", "\U000e01ef")
# lowercase letters without, with ascenders and with descenders: small capitals have neither
_X_HEIGHT, _ASCENDERS, _DESCENDERS = "xaemnu", "bdhkl", "gpqy"

# family-name words of fonts that map letters to pictures, keycaps or Greek
_DENY_WORDS = ("symbol", "dingbat", "keyboard", "icon", "awesome", "emoji", "wingding", "webding", "ornament")
# Faces seen drawing wrong glyphs with FreeType (checked on a contact sheet of every font the install script
# brings): these InterDisplay italics draw "K" with a hollow junction, Noto Serif Display draws "%" as a
# small circle and hairlines that vanish at word-crop sizes.
_BROKEN_FILES = frozenset(
    {
        "InterDisplay-BoldItalic",
        "InterDisplay-ExtraBoldItalic",
        "InterDisplay-MediumItalic",
        "InterDisplay-SemiBoldItalic",
    }
)
_BROKEN_FAMILIES = ("noto serif display",)


# Each face maps its font file and holds ~0.2 MB of FreeType's own memory, and a line set draws hundreds of
# (font, size) pairs: the cap bounds a loader worker's memory. Faces are only opened on a glyph-cache miss, and
# nothing else keeps one alive (holders ask this cache again), so an evicted face is really freed.
@functools.lru_cache(maxsize=256)
def load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    """An `ImageFont` for (path, pixel size), cached: opening a font costs far more than drawing a word."""
    size = max(1, int(size))
    if path == DEFAULT_FONT:
        return ImageFont.load_default(size=size)
    file, index, weight = split_face(path)
    font = ImageFont.truetype(file, size, index=index, layout_engine=ImageFont.Layout.BASIC)
    if weight is not None:
        axes = font.get_variation_axes()
        font.set_variation_by_axes([weight if _axis_name(a) == "weight" else a["default"] for a in axes])
    return font


def _axis_name(axis: dict) -> str:
    name = axis["name"]
    return (name.decode() if isinstance(name, bytes) else str(name)).lower()


def split_face(path: str) -> tuple[str, int, int | None]:
    """(file, face index, weight) of a font path.

    "fonts.ttc#2" names the third face of a collection; "fonts.ttc#2@700" that face of a variable font at
    weight 700 (its other axes at their defaults); without "@" a variable font draws its default instance.
    """
    weight = None
    head, sep, tail = path.rpartition("@")
    if sep and tail.isdigit():
        path, weight = head, int(tail)
    file, sep, index = path.rpartition("#")
    if sep and index.isdigit():
        return file, int(index), weight
    return path, 0, weight


def weight_axis(font: ImageFont.FreeTypeFont) -> tuple[int, int] | None:
    """(min, max) of a variable font's weight axis, or None for a static font."""
    try:
        axes = font.get_variation_axes()
    except (OSError, NotImplementedError):  # a static font; a FreeType built without variation support
        return None
    for axis in axes:
        if _axis_name(axis) == "weight":
            return int(axis["minimum"]), int(axis["maximum"])
    return None


def _glyph(font: ImageFont.FreeTypeFont, ch: str) -> bytes | None:
    """Pixels of one glyph drawn alone (with its box), or None when it draws nothing."""
    bbox = font.getbbox(ch)
    w, h = bbox[2] - bbox[0], bbox[3] - bbox[1]
    if w <= 0 or h <= 0:
        return None
    img = Image.new("L", (w, h), 0)
    ImageDraw.Draw(img).text((-bbox[0], -bbox[1]), ch, fill=255, font=font)
    if img.getbbox() is None:
        return None
    return f"{w}x{h}:".encode() + img.tobytes()


class _GlyphProbe:
    """Tells which characters a font really draws, comparing each glyph with the font's missing-glyph box."""

    def __init__(self, path: str, size: int) -> None:
        self.path, self.size = path, size
        self.tofu = {g for g in (_glyph(self.font, ch) for ch in _MISSING) if g is not None}

    @property
    def font(self) -> ImageFont.FreeTypeFont:
        return load_font(self.path, self.size)

    def has(self, ch: str) -> bool:
        if ch.isspace():
            return True
        g = _glyph(self.font, ch)
        return g is not None and g not in self.tofu

    def glyph(self, ch: str) -> bytes | None:
        g = _glyph(self.font, ch)
        return None if g in self.tofu else g


def _probe_chars(charset_keys: str | None) -> str:
    keys = charset_keys if charset_keys is not None else string.printable[:95]
    probe = "".join(ch for ch in _PROBE if ch in keys)
    if len(probe) < 4:  # a charset without ASCII letters/digits: probe its own first characters
        probe = "".join(ch for ch in keys if not ch.isspace())[:12]
    return probe


def _usable_key(charset_keys: str | None) -> tuple[str, bool, bool]:
    """What the usability check depends on: the probe characters, and whether the period test and the
    lowercase test (ascenders/descenders) apply."""
    keys = charset_keys if charset_keys is not None else string.printable[:95]
    has_cases = any(c.isupper() for c in keys) and all(c in keys for c in _X_HEIGHT + _ASCENDERS + _DESCENDERS)
    return _probe_chars(keys), "H" in keys and "." in keys, has_cases


def font_is_usable(path: str, charset_keys: str | None = None) -> bool:
    """True when the font draws a few of the charset's ASCII letters and digits as distinct, real glyphs.

    Fails for unreadable files, symbol/pi fonts, fonts whose glyphs are the .notdef box, and, when the charset
    has both cases, caps-only and small-caps fonts: lowercase drawn as uppercase, or as small capitals (no
    letter rises above the x-height or falls below the baseline).
    """
    return _usable(str(path), *_usable_key(charset_keys))


@functools.lru_cache(maxsize=8192)
def _usable(path: str, probe_chars: str, check_period: bool, check_lowercase: bool) -> bool:
    try:
        family = font_name(path)[0].lower()
        if any(w in family for w in _DENY_WORDS) or family in _BROKEN_FAMILIES:
            return False
        if Path(path).stem in _BROKEN_FILES:
            return False
        probe = _GlyphProbe(path, 40)
        font = probe.font
        glyphs = {}
        for ch in probe_chars:
            g = probe.glyph(ch)
            if g is None:
                return False
            glyphs[ch] = g
        if check_period and not _period_ok(font):
            return False
        if check_lowercase and not _has_ascenders_or_descenders(font):
            return False
    except (OSError, ValueError):
        return False
    if len(set(glyphs.values())) < max(2, len(glyphs) * 3 // 4):
        return False  # many characters share one shape: a pi font or a box-for-everything font
    same_case = [
        glyphs[u] == glyphs[lo]
        for u, lo in (("A", "a"), ("B", "b"), ("E", "e"), ("G", "g"), ("R", "r"))
        if u in glyphs and lo in glyphs
    ]
    return not (same_case and all(same_case))


def _has_ascenders_or_descenders(font: ImageFont.FreeTypeFont) -> bool:
    """True when some lowercase letters rise above the x-height or fall below the baseline, as in every text
    font. Small capitals and caps-only faces have neither (measured on the installed set: at most 0.09 of the
    x-height for those, at least 0.30 for the rest), so their lowercase labels would be drawn as capitals."""

    def median_edge(chars: str, edge: int) -> float:
        return sorted(font.getbbox(c, anchor="ls")[edge] for c in chars)[len(chars) // 2]

    x_top, baseline = median_edge(_X_HEIGHT, 1), median_edge(_X_HEIGHT, 3)
    x_height = max(1.0, baseline - x_top)
    rise = (x_top - median_edge(_ASCENDERS, 1)) / x_height
    fall = (median_edge(_DESCENDERS, 3) - baseline) / x_height
    return max(rise, fall) >= 0.15


def _period_ok(font: ImageFont.FreeTypeFont) -> bool:
    """The period must be small next to "H": catches keycap, dingbat and boxed-letter fonts."""

    def size(ch: str) -> tuple[int, int]:
        b = font.getmask(ch).getbbox()  # ink box (getbbox would include the advance width)
        return (b[2] - b[0], b[3] - b[1]) if b else (0, 0)

    hw, hh = size("H")
    pw, ph = size(".")
    return hh > 0 and hw > 0 and ph <= 0.4 * hh and pw <= 0.6 * hw


@functools.lru_cache(maxsize=2048)
def supported_chars(path: str, charset_keys: str) -> frozenset[str]:
    """The characters of `charset_keys` that the font really draws (spaces always count as drawn)."""
    try:
        probe = _GlyphProbe(path, 32)
    except (OSError, ValueError):
        return frozenset()
    return frozenset(ch for ch in charset_keys if probe.has(ch))


def _font_files(dirs: Iterable[str | Path], strict: bool) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for d in dirs:
        p = Path(os.path.expanduser(str(d)))
        if p.is_file():
            files = [p]
        elif p.is_dir():
            files = [
                Path(root) / name
                for root, _dirs, names in os.walk(p, followlinks=True)
                for name in names
                if name.lower().endswith(FONT_SUFFIXES)
            ]
        elif strict:
            raise UserError(f"font folder {p} does not exist; pass a folder with .ttf/.otf files")
        else:
            continue
        for f in files:
            if not str(f).lower().endswith(FONT_SUFFIXES):
                if strict:
                    raise UserError(f"{f} is not a .ttf/.otf font file; pass font files or folders of them")
                continue
            real = os.path.realpath(f)
            if real not in seen and os.path.isfile(real):
                seen.add(real)
                out.append(real)
    return sorted(out)


@functools.lru_cache(maxsize=32)
def _find_fonts_cached(
    dirs: tuple[str, ...], strict: bool, probe_chars: str, check_period: bool, check_lowercase: bool
) -> tuple[str, ...]:
    return tuple(f for f in _font_files(dirs, strict=strict) if _usable(f, probe_chars, check_period, check_lowercase))


def find_fonts(
    dirs: Sequence[str | Path] | str | Path | None = None,
    charset_keys: str | None = None,
    *,
    fallback: bool = True,
) -> list[str]:
    """Usable font files (sorted absolute paths) under `dirs` (folders or files), else the system folders.

    `charset_keys` picks which glyphs the usability check draws (default: printable ASCII). Given `dirs` that
    hold no usable font raise UserError. With no `dirs` and no usable system font, `fallback=True` returns
    `[DEFAULT_FONT]` (Pillow's built-in font); `fallback=False` returns an empty list.
    Results are cached per process (the check draws ~25 glyphs per font file).
    """
    if isinstance(dirs, (str, Path)):
        dirs = [dirs]
    strict = bool(dirs)
    key = tuple(str(d) for d in dirs) if dirs else tuple(SYSTEM_FONT_DIRS)
    fonts = list(_find_fonts_cached(key, strict, *_usable_key(charset_keys)))
    if not fonts:
        if strict:
            raise UserError(
                f"no usable .ttf/.otf font in {', '.join(key)}; pass folders with fonts that draw the charset"
            )
        if fallback:
            return [DEFAULT_FONT]
    return fonts


@functools.lru_cache(maxsize=8192)
def font_name(path: str) -> tuple[str, str]:
    """(family, style) as the font file names them, e.g. ("DejaVu Sans", "Bold")."""
    if path == DEFAULT_FONT:
        return ("Pillow Default", "Regular")
    try:
        family, style = load_font(path, 40).getname()  # the size the usability check opens anyway
    except (OSError, ValueError):
        family, style = None, None
    return (family or Path(path).stem, style or "Regular")
