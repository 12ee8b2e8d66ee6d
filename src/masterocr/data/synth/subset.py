"""Font faces cut down to the characters the line renderer can draw for a charset (fontTools' subsetter).

A CJK face holds 30,000-65,000 glyphs (15-27 MB); cut to the ~8,500 characters the line samplers can emit
for the zh_latin charset it keeps 1-5 MB, so several designs travel where a whole face would not (the pack for
a lent GPU, scripts/gpu_pack.py). Kept: the glyphs of the characters, the .notdef outline (the renderer's
missing-glyph check compares glyphs with it), every name record (the family name picks the design and the
held-out split). Dropped: hinting and layout tables (the renderer uses Pillow's basic layout).
`cut_fonts` chooses the faces of this machine that fit a byte budget, designs before weights.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from masterocr.charset import Charset
from masterocr.data.synth.cjkfonts import HELDOUT_CJK_DESIGN, find_cjk_fonts
from masterocr.data.synth.families import group_by_family, select_fonts
from masterocr.data.synth.fonts import font_name, split_face
from masterocr.data.synth.linetext import is_cjk
from masterocr.errors import UserError

__all__ = ["cut_fonts", "drawable_chars", "face_file", "face_rounds", "subset_face"]


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


def face_rounds(charset_keys: str, max_latin: int | None, max_cjk: int | None) -> list[list[tuple[str, str]]]:
    """Rounds of (face, folder) to cut: the held-out CJK design (validation draws in it), one face of each
    Latin family, one face of each training CJK design, then the next face of each design and family; at most
    `max_latin` Latin families and `max_cjk` training CJK designs (None: all), the first by name."""

    def regular_first(faces: list[str]) -> list[str]:
        one = {}
        for face in faces:  # a variable face's weights are one file
            one.setdefault(face_file(face), face)
        return sorted(one.values(), key=lambda f: (font_name(face_file(f)[0])[1].lower() != "regular", f))

    cjk = {d: regular_first(f) for d, f in find_cjk_fonts().items()}
    latin = [regular_first(f) for f in group_by_family(select_fonts(None, "all", charset_keys=charset_keys)).values()]
    if HELDOUT_CJK_DESIGN not in cjk:
        raise UserError(f"no {HELDOUT_CJK_DESIGN} face here (validation draws in it): install Debian's "
                        "fonts-lxgw-wenkai (scripts/install_fonts.sh)")
    train = [faces for d, faces in cjk.items() if d != HELDOUT_CJK_DESIGN][:max_cjk]
    latin = latin[:max_latin]
    rounds = [[(cjk[HELDOUT_CJK_DESIGN][0], "cjk")], [(faces[0], "latin") for faces in latin]]
    for depth in range(max(map(len, [*train, *latin]))):
        rounds.append([(faces[depth], "cjk") for faces in train if depth < len(faces)])
        rounds.append([(faces[depth], "latin") for faces in latin if depth and depth < len(faces)])
    return [r for r in rounds if r]


def cut_fonts(out_dir: str | Path, charset: Charset, budget: int, max_latin: int | None = None,
              max_cjk: int | None = None) -> dict:
    """Cut this machine's faces into out_dir/fonts/{cjk,latin} round by round (`face_rounds`) while they fit
    in `budget` bytes; within a round the smallest cuts go first, so that as many designs as possible fit.
    Returns {"faces": [{face, file, bytes}], "left_out": [face]}."""
    pack = Path(out_dir)
    chars = drawable_chars(charset)
    latin_chars = "".join(c for c in chars if not is_cjk(c))
    used, kept, skipped = 0, [], []
    rounds = face_rounds(charset.keys, max_latin, max_cjk)
    round_one = rounds[0][0][0]
    for round_ in rounds:
        cut = []
        for face, kind in round_:
            folder = pack / "fonts" / kind
            folder.mkdir(parents=True, exist_ok=True)
            cut.append((face, subset_face(face, chars if kind == "cjk" else latin_chars, folder)))
        for face, out in sorted(cut, key=lambda c: c[1].stat().st_size):
            size = out.stat().st_size
            if used + size > budget:
                out.unlink()
                skipped.append(face)
                continue
            used += size
            kept.append({"face": face, "file": str(out.relative_to(pack)), "bytes": size})
    if sum(k["file"].startswith("fonts/cjk/") for k in kept) < 2 or kept[0]["face"] != round_one:  # none: 0 < 2
        raise UserError(f"only {budget / 2**20:.1f} MiB are left for fonts: the held-out CJK face and a training "
                        "one do not both fit; carry less or shrink the checkout")
    return {"faces": kept, "left_out": skipped}
