"""CJK fonts for synthetic lines: find the Simplified Chinese faces, group them by design, hold one design out.

Debian packages about five CJK designs (fonts-noto-cjk: Source Han Sans and Serif; fonts-wqy-zenhei;
fonts-wqy-microhei, built from Droid Sans Fallback; fonts-arphic-uming/ukai; fonts-lxgw-wenkai). Most ship
as font collections (.ttc) whose faces differ by locale: only the Simplified Chinese faces are kept (the
JP/KR/TC/HK/TW faces draw some hanzi in other regional forms) and a face is named "file.ttc#index"
(`fonts.load_font` opens it). LXGW WenKai (all its weights and its Mono cut) is the held-out design: no
training line is drawn in it, and `line_evaluation_set` draws only in it.

A face is used for a line only when it draws every character of the line: `FaceCoverage` compares each
glyph with the face's missing-glyph box (cached per character), so a line never shows tofu.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

from PIL import ImageFont

from masterocr.data.synth.fonts import _MISSING, SYSTEM_FONT_DIRS, _GlyphProbe, load_font
from masterocr.errors import UserError

__all__ = ["HELDOUT_CJK_DESIGN", "FaceCoverage", "cjk_design", "coverage", "find_cjk_fonts", "select_cjk_fonts"]

HELDOUT_CJK_DESIGN = "lxgw wenkai"
_SUFFIXES = (".ttc", ".otf", ".ttf")
_OTHER_LOCALES = ("jp", "kr", "tc", "hk", "tw", "mbe")
_DROP_WORDS = {"sc", "cn", "mono", "sharp", "light", "bold", "regular"}
# designs whose family names differ: Micro Hei is built from Droid Sans Fallback's outlines
_SAME_DESIGN = {"wenquanyi micro hei": "droid sans fallback", "noto sans mono cjk": "noto sans cjk"}
_PROBE = "中国的是人"


def cjk_design(family: str) -> str:
    """The design family of a CJK face's family name: "Noto Sans Mono CJK SC" gives "noto sans cjk"."""
    words = [w for w in family.split(",")[0].lower().split() if w not in _DROP_WORDS]
    name = " ".join(words)
    return _SAME_DESIGN.get(name, name)


def _faces(file: str) -> list[tuple[str, str]]:
    """(face path, family) of every face of a font file (collections have several)."""
    out = []
    for index in range(32):
        try:
            font = ImageFont.truetype(file, 40, index=index)
        except OSError:
            break
        family = font.getname()[0] or Path(file).stem
        out.append((f"{file}#{index}" if file.lower().endswith(".ttc") else file, family))
        if not file.lower().endswith(".ttc"):
            break
    return out


def _draws_hanzi(face: str) -> bool:
    try:
        probe = _GlyphProbe(load_font(face, 40))
    except (OSError, ValueError):
        return False
    return all(probe.has(ch) for ch in _PROBE)


@functools.lru_cache(maxsize=16)
def _find_cached(dirs: tuple[str, ...], strict: bool) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for d in dirs:
        p = Path(os.path.expanduser(d))
        if p.is_file():
            files = [str(p)]
        elif p.is_dir():
            files = sorted(
                str(Path(root) / n) for root, _, names in os.walk(p) for n in names if n.lower().endswith(_SUFFIXES)
            )
        elif strict:
            raise UserError(f"font folder {p} does not exist; pass a folder with CJK .ttc/.otf/.ttf files")
        else:
            continue
        for f in files:
            real = os.path.realpath(f)
            if real in seen:
                continue
            seen.add(real)
            for face, family in _faces(real):
                last = family.split(",")[0].split()[-1].lower()
                if last not in _OTHER_LOCALES and "sharp" not in family.lower() and _draws_hanzi(face):
                    found.append((face, cjk_design(family)))
    return tuple(sorted(found))


def find_cjk_fonts(dirs: Sequence[str | Path] | None = None) -> dict[str, list[str]]:
    """Simplified Chinese faces under `dirs` (default: the system font folders), grouped by design family."""
    key = tuple(str(d) for d in dirs) if dirs else tuple(SYSTEM_FONT_DIRS)
    groups: dict[str, list[str]] = {}
    for face, design in _find_cached(key, bool(dirs)):
        groups.setdefault(design, []).append(face)
    return dict(sorted(groups.items()))


def select_cjk_fonts(dirs: Sequence[str | Path] | None = None, split: str = "train") -> dict[str, list[str]]:
    """The CJK designs of one split: "train" (all but LXGW WenKai), "heldout" (LXGW WenKai) or "all".

    Raises UserError when the split has no face (install the fonts with scripts/install_fonts.sh).
    """
    if split not in ("train", "heldout", "all"):
        raise UserError(f"font split must be 'train', 'heldout' or 'all', got {split!r}")
    groups = find_cjk_fonts(dirs)
    if split == "train":
        groups = {k: v for k, v in groups.items() if k != HELDOUT_CJK_DESIGN}
    elif split == "heldout":
        groups = {k: v for k, v in groups.items() if k == HELDOUT_CJK_DESIGN}
    if not groups:
        raise UserError(
            f"no CJK font for the {split!r} split (held out: {HELDOUT_CJK_DESIGN}); install CJK fonts with "
            "`sudo bash scripts/install_fonts.sh` or pass --fonts folders with them"
        )
    return groups


class FaceCoverage:
    """Which characters a face draws, compared glyph by glyph with its missing-glyph box, cached."""

    def __init__(self, face: str) -> None:
        self.face = face
        self.font = load_font(face, 24)
        self.probe = _GlyphProbe(self.font)
        self.tofu_boxes = {self.font.getbbox(ch) for ch in _MISSING}
        self.known: dict[str, bool] = {}

    def _has(self, ch: str) -> bool:
        # a glyph box unlike the missing-glyph box's is a real glyph (a box is ~5x cheaper than a drawing)
        box = self.font.getbbox(ch)
        if box[2] > box[0] and box[3] > box[1] and box not in self.tofu_boxes:
            return True
        return self.probe.has(ch)

    def missing(self, text: str) -> set[str]:
        """The characters of `text` the face cannot draw (spaces are always drawn)."""
        out = set()
        known = self.known
        for ch in set(text):
            ok = known.get(ch)
            if ok is None:
                ok = known[ch] = self._has(ch)
            if not ok:
                out.add(ch)
        return out


@functools.lru_cache(maxsize=256)
def coverage(face: str) -> FaceCoverage:
    """The per-process coverage cache of a face."""
    return FaceCoverage(face)
