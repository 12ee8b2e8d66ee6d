"""CJK fonts for synthetic lines: find the Simplified Chinese faces, group them by design, hold one design out.

Two font packages of the package registry (the `synth` extra) bring Noto Sans CJK (a variable font) and
WenQuanYi Micro Hei, so that lines render after a plain pip install. Debian packages about five designs more
for variety, found in the system font folders when installed (fonts-noto-cjk: Source Han Sans and Serif;
fonts-wqy-zenhei; fonts-wqy-microhei, built from Droid Sans Fallback; fonts-arphic-uming/ukai;
fonts-lxgw-wenkai). Most ship as font collections (.ttc) whose faces differ by locale: only the Simplified
Chinese faces are kept (the JP/KR/TC/HK/TW faces draw some hanzi in other regional forms) and a face is named
"file.ttc#index", or "file.ttc#index@weight" for a variable font drawn at one weight (`fonts.load_font` opens
it). LXGW WenKai (all its weights and its Mono cut) is the held-out design: no training line is drawn in it,
and `line_evaluation_set` draws only in it.

A face is used for a line only when it draws every character of the line: `FaceCoverage` compares each
glyph with the face's missing-glyph box (cached per character), so a line never shows tofu.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
from collections.abc import Sequence
from pathlib import Path

from PIL import ImageFont

from masterocr.data.synth.fonts import _MISSING, SYSTEM_FONT_DIRS, _GlyphProbe, weight_axis
from masterocr.errors import UserError

__all__ = [
    "HELDOUT_CJK_DESIGN",
    "REGISTRY_FONTS",
    "FaceCoverage",
    "cjk_design",
    "coverage",
    "find_cjk_fonts",
    "registry_fonts",
    "select_cjk_fonts",
]

HELDOUT_CJK_DESIGN = "lxgw wenkai"
_SUFFIXES = (".ttc", ".otf", ".ttf")
_OTHER_LOCALES = ("jp", "kr", "tc", "hk", "tw", "mbe")
_DROP_WORDS = {"sc", "cn", "mono", "sharp", "light", "bold", "regular"}
# designs whose family names differ: Micro Hei is built from Droid Sans Fallback's outlines
_SAME_DESIGN = {"wenquanyi micro hei": "droid sans fallback", "noto sans mono cjk": "noto sans cjk"}
_PROBE = "中国的是人"
# CJK font packages of the registry that the `synth` extra installs: (module, font file inside it). Both are
# designs the Debian set trains on too, so both train (docs/fonts.md).
REGISTRY_FONTS = (
    ("manimgx_fonts_cjk", "NotoSansCJK-VF.otf.ttc"),  # Noto Sans CJK, variable weight, OFL-1.1
    ("paperang_p2_fonts_cjk", "fonts/wqy-microhei.ttc"),  # WenQuanYi Micro Hei, Apache-2.0 or GPL-3+
)
# the weights a variable face is drawn at: its Light to Black instances (Thin's hairlines vanish at 32 px)
VARIABLE_WEIGHTS = (300, 400, 500, 700, 900)


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
        face = f"{file}#{index}" if file.lower().endswith(".ttc") else file
        weights = weight_axis(font)
        if weights is None:
            out.append((face, family))
        else:
            out += [(f"{face}@{w}", family) for w in VARIABLE_WEIGHTS if weights[0] <= w <= weights[1]]
        if not file.lower().endswith(".ttc"):
            break
    return out


def registry_fonts() -> dict[str, str]:
    """{package module: font file} of the installed CJK font packages (`REGISTRY_FONTS`); {} when none is."""
    out = {}
    for module, name in REGISTRY_FONTS:
        try:
            file = importlib.resources.files(module).joinpath(name)
        except ModuleNotFoundError:
            continue
        if file.is_file():
            out[module] = os.fspath(file)
    return out


def _draws_hanzi(face: str) -> bool:
    try:
        probe = _GlyphProbe(face, 40)
    except (OSError, ValueError):
        return False
    return all(probe.has(ch) for ch in _PROBE)


@functools.lru_cache(maxsize=16)
def _find_cached(dirs: tuple[str, ...], strict: bool) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    seen: set[str | tuple[str, int]] = set()
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
            if not os.path.isfile(real):
                continue
            # a file seen under another path, or the same file twice (a package's copy of a Debian font)
            copy = (os.path.basename(real), os.path.getsize(real))
            if real in seen or copy in seen:
                continue
            seen.update((real, copy))
            for face, family in _faces(real):
                last = family.split(",")[0].split()[-1].lower()
                if last not in _OTHER_LOCALES and "sharp" not in family.lower() and _draws_hanzi(face):
                    found.append((face, cjk_design(family)))
    return tuple(sorted(found))


def find_cjk_fonts(dirs: Sequence[str | Path] | None = None) -> dict[str, list[str]]:
    """Simplified Chinese faces under `dirs`, grouped by design family.

    Without `dirs`: the system font folders, then the registry's font packages (a Debian copy of a font wins).
    """
    key = tuple(str(d) for d in dirs) if dirs else (*SYSTEM_FONT_DIRS, *registry_fonts().values())
    groups: dict[str, list[str]] = {}
    for face, design in _find_cached(key, bool(dirs)):
        groups.setdefault(design, []).append(face)
    return dict(sorted(groups.items()))


def select_cjk_fonts(dirs: Sequence[str | Path] | None = None, split: str = "train") -> dict[str, list[str]]:
    """The CJK designs of one split: "train" (all but LXGW WenKai), "heldout" (LXGW WenKai) or "all".

    Raises UserError when the split has no face: the training split's fonts come with the `synth` extra, the
    held-out design from Debian's fonts-lxgw-wenkai (scripts/install_fonts.sh) or a --fonts folder.
    """
    if split not in ("train", "heldout", "all"):
        raise UserError(f"font split must be 'train', 'heldout' or 'all', got {split!r}")
    groups = find_cjk_fonts(dirs)
    if split == "train":
        groups = {k: v for k, v in groups.items() if k != HELDOUT_CJK_DESIGN}
    elif split == "heldout":
        groups = {k: v for k, v in groups.items() if k == HELDOUT_CJK_DESIGN}
    if not groups:
        fix = (
            "install Debian's fonts-lxgw-wenkai (`sudo bash scripts/install_fonts.sh`) or pass --fonts folders with it"
            if split == "heldout"
            else "install the synth extra (pip install 'masterocr[synth]') or pass --fonts folders with CJK fonts"
        )
        raise UserError(f"no CJK font for the {split!r} split (held out: {HELDOUT_CJK_DESIGN}); {fix}")
    return groups


class FaceCoverage:
    """Which characters a face draws, compared glyph by glyph with its missing-glyph box, cached."""

    def __init__(self, face: str) -> None:
        self.face = face
        self.probe = _GlyphProbe(face, 24)
        self.tofu_boxes = {self.font.getbbox(ch) for ch in _MISSING}
        self.known: dict[str, bool] = {}

    @property
    def font(self) -> ImageFont.FreeTypeFont:
        return self.probe.font

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
