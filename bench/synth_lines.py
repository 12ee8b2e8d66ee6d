"""Synthetic line rendering speed: lines/s in one process, per kind (latin, zh, mixed) and height.

    python bench/synth_lines.py                      # height 32, 300 warm-up + 400 timed lines per kind
    python bench/synth_lines.py --heights 32 48 --warmup 2000 --count 1000 --charset keys.txt

One process, one thread (what a DataLoader worker gets). "cold" is the first `--warmup` lines (glyph and
face-coverage caches filling), "warm" the next `--count` lines; the machine's load average is printed with
the table, since the figure scales with the free CPU. Default charset: GB2312 hanzi + printable ASCII +
Latin-1 Supplement + Latin Extended-A + CJK punctuation, built by rule.
"""

from __future__ import annotations

import argparse
import os
import random
import string
import time

from masterocr.charset import Charset
from masterocr.data.synth.linesynth import LineSynthesizer
from masterocr.data.synth.linetext import KINDS, gb2312_hanzi

CJK_PUNCT = "，。、；：？！“”‘’《》（）【】「」…—·"


def default_charset() -> Charset:
    latin = string.printable[:95] + "".join(chr(c) for c in range(0xA1, 0x180) if chr(c).isprintable())
    return Charset(latin + gb2312_hanzi() + CJK_PUNCT)


def measure(cs: Charset, kind: str, height: int, warmup: int, count: int) -> dict:
    synth = LineSynthesizer(cs, height=height, kinds={kind: 1.0})
    t0 = time.perf_counter()
    for i in range(warmup):
        synth.sample(random.Random(f"bench-warm:{i}"))
    t1 = time.perf_counter()
    chars = width = 0
    for i in range(count):
        img, label, _, _ = synth.sample(random.Random(f"bench:{i}"))
        chars += len(label)
        width += img.width
    t2 = time.perf_counter()
    return {
        "kind": kind,
        "height": height,
        "cold_lines_s": warmup / max(t1 - t0, 1e-9),
        "warm_lines_s": count / max(t2 - t1, 1e-9),
        "mean_chars": chars / count,
        "mean_width": width / count,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heights", type=int, nargs="+", default=[32])
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--count", type=int, default=400)
    ap.add_argument("--charset", help="keys file (default: the GB2312 + Latin rule)")
    args = ap.parse_args()
    cs = Charset.from_file(args.charset) if args.charset else default_charset()
    rows = [measure(cs, k, h, args.warmup, args.count) for h in args.heights for k in args.kinds]
    load = os.getloadavg()
    print(f"charset {len(cs.keys)} symbols; {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f}")
    print(f"| kind | height | lines/s cold (first {args.warmup}) | lines/s warm | mean chars | mean width px |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['kind']} | {r['height']} | {r['cold_lines_s']:.0f} | {r['warm_lines_s']:.0f} | "
            f"{r['mean_chars']:.1f} | {r['mean_width']:.0f} |"
        )


if __name__ == "__main__":
    main()
