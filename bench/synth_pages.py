"""Choose the page reader's settings on synthetic pages rendered here, never on the real pages.

Renders A4 pages at 150 dpi (1240 x 1754 px) of English running text drawn from wordfreq's list with
Pillow and the system's fonts: a heading, one or two columns of justified-free paragraphs, a footnote and a
page number; every line's ink box and text is the ground truth. Then scores settings of `masterocr page`
with masterocr.page.score (the real-pages metrics):

  python bench/synth_pages.py --pages 6 --stage detect     # detector x input size: det P/R/F1, s/page
  python bench/synth_pages.py --pages 6 --stage read       # recognizer and piece width on detected lines

Fonts: DejaVu Serif/Sans and Liberation Serif/Sans where installed (Debian fonts-dejavu, fonts-liberation2).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from masterocr.page import PageReader
from masterocr.page.reader import PIECE_RATIO
from masterocr.page.score import score_page, summarize

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation2",
             "/usr/share/fonts/truetype/liberation")
FONT_NAMES = ("DejaVuSerif.ttf", "DejaVuSans.ttf", "LiberationSerif-Regular.ttf", "LiberationSans-Regular.ttf")
W, H, DPI = 1240, 1754, 150


def fonts() -> list[str]:
    found = [str(Path(d) / n) for n in FONT_NAMES for d in FONT_DIRS if (Path(d) / n).is_file()]
    if not found:
        raise SystemExit("no DejaVu or Liberation fonts found; install fonts-dejavu")
    return found


def words(rng: random.Random, n: int) -> list[str]:
    from wordfreq import top_n_list

    vocab = top_n_list("en", 20000)
    out = []
    for _ in range(n):
        # common words most of the time, the long tail often enough to hold rarer letters; some numbers
        u = rng.random()
        w = rng.choice(vocab[:300]) if u < 0.5 else rng.choice(vocab) if u < 0.93 else str(rng.randint(0, 9999))
        if rng.random() < 0.1:
            w = w.capitalize()
        if rng.random() < 0.08:
            w += rng.choice(",.;:")
        out.append(w)
    return out


def block(draw, rng, font, x0, x1, y, y_max, lines) -> int:
    """Fill a column from y with wrapped lines; returns the y where it stopped."""
    lead = int(font.size * 1.35)
    while y + lead < y_max:
        text, pool = "", words(rng, 40)
        for w in pool:
            trial = (text + " " + w).strip()
            if draw.textlength(trial, font=font) > x1 - x0:
                break
            text = trial
        if rng.random() < 0.12:  # paragraph end: a shorter line and a gap
            text = " ".join(text.split()[: max(1, len(text.split()) // 2)])
        draw.text((x0, y), text, font=font, fill=(20, 20, 20))
        b = draw.textbbox((x0, y), text, font=font)
        lines.append({"text": text, "box": list(b)})
        y += lead * (2 if rng.random() < 0.12 else 1)
    return y


def render(seed: int) -> tuple[Image.Image, dict]:
    rng = random.Random(seed)
    path = rng.choice(fonts())
    pt = rng.choice((9, 10, 11, 12))
    body = ImageFont.truetype(path, round(pt * DPI / 72))
    img = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(img)
    lines: list[dict] = []
    head = ImageFont.truetype(path, round(pt * 1.6 * DPI / 72))
    title = " ".join(words(rng, rng.randint(3, 6))).strip(",.;:").capitalize()
    draw.text((150, 150), title, font=head, fill="black")
    lines.append({"text": title, "box": list(draw.textbbox((150, 150), title, font=head))})
    two = rng.random() < 0.5
    cols = [(150, 600), (640, 1090)] if two else [(150, 1090)]
    for x0, x1 in cols:
        block(draw, rng, body, x0, x1, 260, 1450, lines)
    note = ImageFont.truetype(path, round((pt - 2) * DPI / 72))
    block(draw, rng, note, 150, 1090, 1520, 1600, lines)
    num = str(rng.randint(1, 300))
    draw.text((610, 1650), num, font=body, fill="black")
    lines.append({"text": num, "box": list(draw.textbbox((610, 1650), num, font=body))})
    return img, {"lines": lines, "two_columns": two, "font": Path(path).name, "pt": pt}


def run(reader: PageReader, pages, detect_only: bool) -> dict:
    rows, secs = [], []
    for img, gt in pages:
        t = time.perf_counter()
        if detect_only:
            preds = [{"polygon": q.tolist(), "text": ""} for q in reader.detect(img)]
        else:
            preds = [line.to_json() for line in reader.read_image(img).lines]
        secs.append(time.perf_counter() - t)
        rows.append(score_page(gt, preds))
    out = summarize(rows)
    out["s_per_page"] = sum(secs) / len(secs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--stage", choices=("detect", "read"), required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--detector", default="ppocrv4", help="the detector for --stage read")
    args = ap.parse_args()
    pages = [render(args.seed + i) for i in range(args.pages)]
    results = {}
    if args.stage == "detect":
        for det in ("ppocrv4", "ppocrv6"):
            for side in (2400, 1024):
                reader = PageReader(detector=det, threads=args.threads, max_side=side)
                results[f"{det} max_side={side}"] = run(reader, pages, True)
                print(json.dumps({f"{det} max_side={side}": results[f"{det} max_side={side}"]}), flush=True)
    else:
        for model, ratio in (("line", 16.0), ("line", 50.0), ("word", None)):
            reader = PageReader(detector=args.detector, model=model, threads=args.threads,
                                piece_ratio=ratio or PIECE_RATIO)
            key = f"{model} pieces<={ratio}h" if ratio else f"{model} by words"
            results[key] = run(reader, pages, False)
            print(json.dumps({key: results[key]}), flush=True)
    print("| setting | det P | det R | det F1 | e2e CER | page CER | s/page |")
    print("|---|---|---|---|---|---|---|")
    for k, r in results.items():
        print(f"| {k} | {r['det_P']:.3f} | {r['det_R']:.3f} | {r['det_F1']:.3f} | {100 * r['e2e_cer']:.2f} % | "
              f"{100 * r['page_cer']:.2f} % | {r['s_per_page']:.2f} |")


if __name__ == "__main__":
    main()
