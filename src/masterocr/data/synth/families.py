"""Font families for synthetic text: the design family of a font file, and the train/held-out split by family.

`split_fonts()` divides font files into train and held-out sets by hashing the font FAMILY, so all weights and
styles of a family stay on one side and a held-out evaluation measures generalisation to unseen type designs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from masterocr.data.synth.fonts import DEFAULT_FONT, find_fonts, font_name
from masterocr.errors import UserError

__all__ = ["font_family", "group_by_family", "select_fonts", "split_fonts"]

# Families whose names differ but whose letter shapes are the same design (a caption, text, small-caps or
# monospaced cut; metric clones built from the same outlines). They must land on one side of the held-out
# split, so each maps to the family it shares its design with.
_SAME_DESIGN = {
    "arimo": "liberation sans",  # Liberation 2 is built from the Croscore outlines
    "tinos": "liberation serif",
    "cousine": "liberation mono",
    "b612 mono": "b612",
    "go mono": "go",
    "go smallcaps": "go",
    "pt sans caption": "pt sans",
    "pt serif caption": "pt serif",
    "betecknagscondensed": "betecknags",
    "accanthis adf std no2": "accanthis adf std",
    "accanthis adf std no3": "accanthis adf std",
    "fanwood text": "fanwood",
}
# words stripped from family names to find the design family: weights, widths, slopes, optical sizes
_STYLE_WORDS = {
    "thin", "hairline", "extralight", "ultralight", "light", "book", "regular", "normal", "medium",
    "semibold", "demibold", "demi", "bold", "extrabold", "ultrabold", "black", "heavy", "extrablack",
    "ultrablack", "fat",
    "condensed", "semicondensed", "extracondensed", "ultracondensed", "narrow", "compressed", "expanded",
    "semiexpanded", "extraexpanded", "wide", "italic", "oblique", "slanted", "inclined", "upright",
    "extra", "ultra", "semi", "unhinted", "hinted",
}  # fmt: skip


def font_family(path: str) -> str:
    """The design family of a font file: its family name without weight/width/slope words, lower case.

    "Lato Black", "Lato Hairline" and "Lato" all give "lato"; "DejaVu Sans Condensed" gives "dejavu sans";
    "Noto Sans Display" stays apart from "Noto Sans" (a different design). Cuts of one design under other
    names ("PT Sans Caption", "Go Mono", Croscore's "Cousine" for "Liberation Mono") give their design's name.
    """
    family = font_name(path)[0]
    words = family.replace("-", " ").replace("_", " ").split()
    kept = [w for w in words if w.lower() not in _STYLE_WORDS]
    name = " ".join(kept or words).lower()
    return _SAME_DESIGN.get(name, name)


def _family_hash(family: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}\0{family}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_fonts(
    fonts: Sequence[str | Path], holdout_fraction: float = 0.15, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Split font files into (train, heldout) by family: every face of a family lands on the same side.

    A family is held out when a hash of (seed, family) falls below `holdout_fraction`, so the split is
    deterministic, independent of file order, and stable when fonts of other families are added. With at least
    two families and 0 < holdout_fraction < 1, each side gets at least one family (the family with the lowest
    or highest hash is moved over when hashing leaves a side empty).
    """
    if not 0.0 <= holdout_fraction <= 1.0:
        raise UserError(f"holdout_fraction must be within [0, 1], got {holdout_fraction}")
    paths = sorted({str(f) for f in fonts})
    fam = {p: font_family(p) for p in paths}
    families = sorted(set(fam.values()), key=lambda f: (_family_hash(f, seed), f))
    held = {f for f in families if _family_hash(f, seed) < holdout_fraction}
    if len(families) >= 2 and 0.0 < holdout_fraction < 1.0:
        if not held:
            held = {families[0]}
        elif len(held) == len(families):
            held.discard(families[-1])
    train = [p for p in paths if fam[p] not in held]
    heldout = [p for p in paths if fam[p] in held]
    return train, heldout


def select_fonts(
    dirs: Sequence[str | Path] | str | Path | None = None,
    split: str = "train",
    holdout_fraction: float = 0.15,
    seed: int = 0,
    charset_keys: str | None = None,
) -> list[str]:
    """`find_fonts` then one side of `split_fonts`: split is "train", "heldout" or "all"."""
    if split not in ("train", "heldout", "all"):
        raise UserError(f"font split must be 'train', 'heldout' or 'all', got {split!r}")
    fonts = find_fonts(dirs, charset_keys)
    if split == "all" or fonts == [DEFAULT_FONT]:
        return fonts
    train, heldout = split_fonts(fonts, holdout_fraction, seed)
    chosen = train if split == "train" else heldout
    if not chosen:
        n_fam = len({font_family(f) for f in fonts})
        raise UserError(
            f"the {split!r} font split is empty ({len(fonts)} fonts in {n_fam} families, "
            f"holdout_fraction={holdout_fraction}); add fonts of more families or use --font-split all"
        )
    return chosen


def group_by_family(fonts: Iterable[str]) -> dict[str, list[str]]:
    """Font files grouped by design family, families and files in sorted order."""
    groups: dict[str, list[str]] = {}
    for f in sorted(fonts):
        groups.setdefault(font_family(f), []).append(f)
    return dict(sorted(groups.items()))
