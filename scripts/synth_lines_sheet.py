"""Make docs/synth_lines.png: synthetic text lines of each kind (Latin, Chinese, mixed) and held-out lines.

    PYTHONPATH=src python scripts/synth_lines_sheet.py [--out docs/synth_lines.png] [--per-kind 4] [--height 32]

Each line is shown at its rendered size with its label and face below it; the charset is the GB2312 + Latin
rule of bench/synth_lines.py.
"""

from __future__ import annotations

import argparse
import random
import string
from pathlib import Path

from PIL import Image, ImageDraw

from masterocr.charset import Charset
from masterocr.data.synth.cjkfonts import coverage, find_cjk_fonts
from masterocr.data.synth.fonts import load_font
from masterocr.data.synth.linesynth import LineSynthesizer
from masterocr.data.synth.linetext import gb2312_hanzi

CJK_PUNCT = "，。、；：？！“”‘’《》（）【】「」…—·"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/synth_lines.png")
    ap.add_argument("--per-kind", type=int, default=4)
    ap.add_argument("--height", type=int, default=32)
    args = ap.parse_args()
    latin = string.printable[:95] + "".join(chr(c) for c in range(0xA1, 0x180) if chr(c).isprintable())
    cs = Charset(latin + gb2312_hanzi() + CJK_PUNCT)
    rows: list[tuple[str, Image.Image, str]] = []
    for split, kinds in (("train", ("latin", "zh", "mixed")), ("heldout", ("zh", "mixed"))):
        for kind in kinds:
            synth = LineSynthesizer(cs, height=args.height, split=split, kinds={kind: 1.0})
            for i in range(args.per_kind):
                img, label, face, _ = synth.sample(random.Random(f"sheet:{split}:{kind}:{i}"))
                rows.append((f"{split} {kind} | {Path(face).name} | {len(label)} chars", img, label))
    label_faces = [f for design in ("noto sans cjk", "wenquanyi zen hei") for f in find_cjk_fonts().get(design, [])]
    label_faces += [f for f in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",) if Path(f).is_file()]
    width = max(img.width for _, img, _ in rows) + 16
    row_h = args.height + 40
    sheet = Image.new("RGB", (width, row_h * len(rows) + 8), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, (title, img, label) in enumerate(rows):
        y = 8 + k * row_h
        sheet.paste(img, (8, y))
        # the first face that draws the whole label (the CJK faces lack some Latin Extended-A letters)
        face = next((f for f in label_faces if not coverage(f).missing(label)), label_faces[0])
        draw.text((8, y + args.height + 3), label, fill=(170, 0, 0), font=load_font(face, 13))
        draw.text((8, y + args.height + 20), title, fill=(90, 90, 90), font=load_font(label_faces[0], 13))
    sheet.quantize(256).save(args.out, optimize=True)  # a palette keeps the sheet small in the repository
    print(f"wrote {args.out}: {len(rows)} lines, {sheet.width}x{sheet.height}")


if __name__ == "__main__":
    main()
