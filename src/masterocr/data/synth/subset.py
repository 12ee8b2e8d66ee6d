"""Font faces cut down to the characters the line renderer can draw for a charset (fontTools' subsetter).

A CJK face holds 30,000-65,000 glyphs (15-27 MB); cut to the ~8,500 characters the line samplers can emit
for the zh_latin charset it keeps 1-5 MB, so several designs travel where a whole face would not (the pack for
a lent GPU, scripts/gpu_pack.py). Kept: the glyphs of the characters, the .notdef outline (the renderer's
missing-glyph check compares glyphs with it), every name record (the family name picks the design and the
held-out split). Dropped: hinting and layout tables (the renderer uses Pillow's basic layout).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from masterocr.charset import Charset
from masterocr.data.synth.fonts import split_face
from masterocr.errors import UserError

__all__ = ["drawable_chars", "face_file", "subset_face"]


def drawable_chars(charset: Charset) -> str:
    """Every character of the Basic Multilingual Plane a line text can hold for `charset`: the charset's own,
    white space, and those NFKC folds into charset characters (full-width punctuation, ligatures), which
    the samplers keep and the renderer draws as they are."""
    allowed = frozenset(charset.keys)
    out = []
    for cp in range(0x20, 0x10000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        if ch in allowed or ch.isspace():
            out.append(ch)
            continue
        folded = charset.clean(ch)
        if folded and set(folded) <= allowed:
            out.append(ch)
    return "".join(out)


def face_file(face: str) -> tuple[str, int]:
    """(file, index) of a face path: "x.ttc#2" and "x.ttc#2@700" (a variable face at one weight) give
    ("x.ttc", 2); a subset keeps a variable face's axes, so the weight is picked again where it is read."""
    head, sep, weight = face.rpartition("@")
    file, index = split_face(head if sep and weight.isdigit() else face)[:2]
    return file, index


def subset_face(face: str, chars: Iterable[str], out_dir: str | Path) -> Path:
    """Write `face` cut to `chars` into `out_dir` as one font file (.otf for CFF outlines, else .ttf); returns
    its path. The file is named after the source file and face index, so faces of one collection differ."""
    try:
        from fontTools import subset
        from fontTools.ttLib import TTLibError
    except ImportError as exc:
        raise UserError("cutting fonts needs fontTools: pip install 'masterocr[dev]'") from exc
    file, index = face_file(face)
    opts = subset.Options()
    opts.font_number = index
    opts.notdef_outline = True
    opts.name_IDs = ["*"]
    opts.name_languages = ["*"]
    opts.hinting = False
    opts.layout_features = []
    opts.glyph_names = False
    logging.getLogger("fontTools").setLevel(logging.ERROR)  # it warns of every table it drops
    try:
        font = subset.load_font(file, opts, dontLoadGlyphNames=True)
    except (OSError, TTLibError) as exc:
        raise UserError(f"cannot read font {file} (face {index}): {exc}; pass a readable .ttf/.otf/.ttc") from exc
    sub = subset.Subsetter(opts)
    sub.populate(text="".join(chars))
    sub.subset(font)
    suffix = ".otf" if "CFF " in font or "CFF2" in font else ".ttf"
    out = Path(out_dir) / f"{Path(file).stem}-{index}{suffix}"
    tmp = out.with_name(out.name + ".tmp")
    subset.save_font(font, str(tmp), opts)
    os.replace(tmp, out)
    return out
