"""Write src/masterocr/charsets/zh_latin.txt, the Simplified Chinese + Latin charset (one line of keys).

Order (each character once, first place kept): the 95 printable ASCII characters in keys.txt's order (so a
word model's output rows map onto the first 95 classes), the Latin-1 Supplement's printable characters and
Latin Extended-A, the general punctuation Chinese and European text use (dashes, quotes, bullets, the euro
sign, ...), CJK Symbols and Punctuation (U+3000-U+303F), the symbols of GB2312's row 1, the characters the
full-width forms and half-width CJK punctuation (U+FF01-U+FF65, U+FFE0-U+FFEE) fold to, then every hanzi of
GB2312 in its order (level 1 by pronunciation, then level 2 by radical): each 2-byte GB2312 code decoded with
Python's gb2312 codec.

Only characters that NFKC leaves unchanged are kept: labels are NFKC-folded before encoding
(masterocr.charset.normalize_text), so a key NFKC changes (U+3000, "ﬁ", "…", the full-width forms) could never
be seen in training. Run it again after editing and commit the output:

    python scripts/make_charset_zh.py [--check]
"""

from __future__ import annotations

import argparse
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "masterocr" / "charsets" / "zh_latin.txt"
GENERAL_PUNCTUATION = (
    "\u2010\u2013\u2014\u2015\u2016\u2018\u2019\u201c\u201d\u2020\u2021\u2022\u2030\u2032\u2033\u203b\u20ac"
)


def gb2312_codes() -> list[str]:
    """Every character a 2-byte GB2312 code (rows and columns 0xA1-0xFE) decodes to, in code order."""
    chars = []
    for hi in range(0xA1, 0xFF):
        for lo in range(0xA1, 0xFF):
            try:
                chars.append(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return chars


def is_hanzi(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith("CJK UNIFIED IDEOGRAPH")


def printable(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LNPS" or ch == " "


def build() -> tuple[str, int]:
    """(the keys, the number of GB2312 hanzi among them)."""
    ascii_keys = (ROOT / "src" / "masterocr" / "keys.txt").read_text(encoding="utf-8").rstrip("\r\n")
    gb = gb2312_codes()
    hanzi = [ch for ch in gb if is_hanzi(ch)]
    row1 = [bytes([0xA1, lo]).decode("gb2312") for lo in range(0xA1, 0xFF)]
    # full-width ASCII and punctuation, half-width CJK punctuation, full-width signs (the half-width kana and
    # hangul of U+FF66-U+FFDC are left out: neither script is in this charset)
    codes = [*range(0xFF01, 0xFF66), *range(0xFFE0, 0xFFEF)]
    forms = [unicodedata.normalize("NFKC", chr(c)) for c in codes]
    parts = [
        ascii_keys,
        "".join(chr(c) for c in range(0xA1, 0x180)),  # Latin-1 Supplement (printable half), Latin Extended-A
        GENERAL_PUNCTUATION,
        "".join(chr(c) for c in range(0x3000, 0x3040)),
        "".join(row1),
        "".join(f for f in forms if len(f) == 1),
        "".join(hanzi),
    ]
    seen: dict[str, None] = {}
    for ch in "".join(parts):
        if printable(ch) and unicodedata.normalize("NFKC", ch) == ch:
            seen.setdefault(ch, None)
    return "".join(seen), len(hanzi)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the committed file differs from a fresh build")
    args = ap.parse_args(argv)
    keys, n_hanzi = build()
    if n_hanzi != 6763:
        print(f"expected GB2312's 6,763 hanzi, the codec gave {n_hanzi}", file=sys.stderr)
        return 1
    text = keys + "\n"
    if args.check:
        same = OUT.exists() and OUT.read_text(encoding="utf-8") == text
        print(f"{OUT.relative_to(ROOT)}: {'up to date' if same else 'stale: run scripts/make_charset_zh.py'}")
        return 0 if same else 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(OUT)
    print(f"{OUT.relative_to(ROOT)}: {len(keys)} symbols ({n_hanzi} GB2312 hanzi)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
