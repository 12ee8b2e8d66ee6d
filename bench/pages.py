"""Whole-page OCR on the real pages: `masterocr page` beside its peers, in one run (issue 28).

  nice -n 5 python bench/pages.py --pages-dir ../shared/data/real-pages --out runs/pages_bench

Engines (each a process of its own, run side by side with --jobs, one thread each):
  ours        the PP-OCRv4 DB detector (ONNX from rapidocr-onnxruntime's wheel) + the line model, in pieces
  ours-word   the same detector + the word model, word by word (masterocr page's default)
  ours-gt, ours-word-gt  the same readers on the ground-truth boxes (no detection): they split the error
              between finding lines and reading them
  rapidocr-1.4.4  rapidocr-onnxruntime 1.4.4's full pipeline (PP-OCRv4 det + cls + rec), library defaults
  rapidocr-3.10.0 rapidocr 3.10.0's full pipeline (PP-OCRv6 small det + cls + rec), library defaults
  tesseract   Tesseract `--psm 3` (eng, chi_sim+eng for Chinese), its TSV words grouped into lines, when on PATH

Predictions go to OUT/ENGINE/NAME.json (a list in the engine's reading order of {"polygon", "text"}, the
scorer's input; `masterocr page` itself writes {"lines": [...]}) with OUT/ENGINE/_timing.json; seconds are the
engine call on the decoded page (model loading and PNG decoding excluded; Tesseract's include its process
start and model load, as it runs as a program). Scores: masterocr.page.score (the definitions of the sets'
SOURCES.md); `--check` also runs the sets' own page_eval.py on each engine's folder and prints its numbers.
Never tune anything on these pages: they are for evaluation only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ENGINES = ("ours", "ours-word", "ours-gt", "ours-word-gt", "rapidocr-1.4.4", "rapidocr-3.10.0", "tesseract")


def load_pages(pages_dir: Path) -> list[tuple[dict, Path]]:
    out = []
    for gt_file in sorted(pages_dir.glob("*/gt/*.json")):
        gt = json.loads(gt_file.read_text(encoding="utf-8"))
        out.append((gt, gt_file.parent.parent / "images" / gt["image"]))
    if not out:
        raise SystemExit(f"no pages under {pages_dir}/*/gt/")
    return out


def _corners(box: list[float]) -> list[list[float]]:
    x0, y0, x1, y1 = box
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def make_engine(name: str, threads: int):
    """A function (PIL page, gt) -> [{"polygon", "text"}] in the engine's reading order."""
    import numpy as np

    if name.startswith("ours"):
        from masterocr.page import PageReader

        reader = PageReader(model="word" if name.startswith("ours-word") else "line", threads=threads)

        def ours(page, gt):
            boxes = None
            if name.endswith("-gt"):  # every line, the don't-care ones too, as a detector would find them
                boxes = [np.asarray(line["polygon"] if "polygon" in line else _corners(line["box"]), dtype=float)
                         for line in gt["lines"]]
            return [{"polygon": ln.polygon, "text": ln.text} for ln in reader.read_image(page, boxes=boxes).lines]
        return ours
    if name == "rapidocr-1.4.4":
        from rapidocr_onnxruntime import RapidOCR

        engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)

        def rapid1(page, gt):
            result, _ = engine(np.asarray(page.convert("RGB"))[:, :, ::-1].copy())
            return [{"polygon": [list(map(float, p)) for p in box], "text": text} for box, text, _ in result or []]
        return rapid1
    if name == "rapidocr-3.10.0":
        from rapidocr import RapidOCR

        engine = RapidOCR(params={"EngineConfig.onnxruntime.intra_op_num_threads": threads,
                                  "EngineConfig.onnxruntime.inter_op_num_threads": 1})

        def rapid3(page, gt):
            out = engine(np.asarray(page.convert("RGB"))[:, :, ::-1].copy())
            if out.boxes is None:
                return []
            return [{"polygon": np.asarray(b, dtype=float).tolist(), "text": t} for b, t in zip(out.boxes, out.txts)]
        return rapid3
    if name == "tesseract":
        return tesseract_engine(threads)
    raise SystemExit(f"unknown engine {name}")


def tesseract_engine(threads: int):
    import csv
    import io
    import tempfile

    exe = shutil.which("tesseract")

    def tess(page, gt):
        lang = "chi_sim+eng" if gt.get("script") == "zh" else "eng"
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "p.png"
            page.save(src)
            env = dict(os.environ, OMP_THREAD_LIMIT=str(threads))
            run = subprocess.run([exe, str(src), "stdout", "--psm", "3", "-l", lang, "tsv"], capture_output=True,
                                 env=env, check=True)
        lines: dict = {}
        for row in csv.DictReader(io.StringIO(run.stdout.decode("utf-8", "replace")), delimiter="\t",
                                  quoting=csv.QUOTE_NONE):
            if row.get("level") != "5" or not (row.get("text") or "").strip():
                continue
            key = (row["block_num"], row["par_num"], row["line_num"])
            x, y, w, h = (float(row[k]) for k in ("left", "top", "width", "height"))
            e = lines.setdefault(key, {"box": [x, y, x + w, y + h], "words": []})
            b = e["box"]
            e["box"] = [min(b[0], x), min(b[1], y), max(b[2], x + w), max(b[3], y + h)]
            e["words"].append(row["text"].strip())
        sep = lambda ws: "".join(ws) if gt.get("script") == "zh" else " ".join(ws)  # noqa: E731
        return [{"box": e["box"], "text": sep(e["words"])} for e in lines.values()]
    return tess


def run_engine(name: str, pages, out: Path, threads: int) -> None:
    """Run one engine over every page; write its predictions and timing."""
    from PIL import Image

    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    engine = make_engine(name, threads)
    timing = {}
    for gt, image_path in pages:
        with Image.open(image_path) as im:
            page = im.convert("RGB")
        start = time.perf_counter()
        preds = engine(page, gt)
        timing[gt["image"]] = time.perf_counter() - start
        stem = Path(gt["image"]).stem
        (folder / f"{stem}.json").write_text(json.dumps(preds, ensure_ascii=False), encoding="utf-8")
        # after every page: a run cut short still scores the pages every engine finished
        (folder / "_timing.json").write_text(json.dumps({"pages": timing}), encoding="utf-8")
        print(f"{name} {stem}: {len(preds)} lines, {timing[gt['image']]:.2f} s", flush=True)


def score(engines, pages, out: Path) -> dict:
    import statistics

    from masterocr.page.score import score_page, summarize

    timings = {name: json.loads((out / name / "_timing.json").read_text())["pages"] for name in engines}
    done = set.intersection(*(set(t) for t in timings.values()))
    if len(done) < len(pages):
        print(f"scoring the {len(done)} of {len(pages)} pages that every engine finished")
    table = {}
    for name in engines:
        folder, timing = out / name, timings[name]
        for script in ("latin", "zh"):
            rows, secs = [], []
            for gt, _ in pages:
                if gt.get("script") != script or gt["image"] not in done:
                    continue
                preds = json.loads((folder / f"{Path(gt['image']).stem}.json").read_text(encoding="utf-8"))
                rows.append(score_page(gt, preds))
                secs.append(timing[gt["image"]])
            if not rows:
                continue
            s = summarize(rows)
            s["s_mean"], s["s_median"] = statistics.mean(secs), statistics.median(secs)
            table[(name, script)] = s
    return table


def print_table(table: dict) -> None:
    for script in ("latin", "zh"):
        print(f"\n{script}\n| engine | pages | GT lines | pred lines | det P | det R | det F1 | e2e CER | e2e CER ns | "
              "page CER | page CER ns | s/page |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for (name, sc), s in table.items():
            if sc != script:
                continue
            print(f"| {name} | {s['pages']} | {s['gt_lines']} | {s['pred_lines']} | {s['det_P']:.3f} | "
                  f"{s['det_R']:.3f} | {s['det_F1']:.3f} | {100 * s['e2e_cer']:.2f} % | "
                  f"{100 * s['e2e_cer_nospace']:.2f} % | {100 * s['page_cer']:.2f} % | "
                  f"{100 * s['page_cer_nospace']:.2f} % | {s['s_mean']:.2f} ({s['s_median']:.2f}) |")


def print_split(table: dict) -> None:
    """End-to-end CER split into misread matched lines, missed GT lines and spurious predictions."""
    print("\n| engine | script | e2e CER | misread (matched lines) | missed lines | spurious lines |")
    print("|---|---|---|---|---|---|")
    for (name, sc), s in table.items():
        print(f"| {name} | {sc} | {100 * s['e2e_cer']:.2f} % | {100 * s['e2e_matched']:.2f} % | "
              f"{100 * s['e2e_missed']:.2f} % | {100 * s['e2e_spurious']:.2f} % |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages-dir", type=Path, default=Path("../shared/data/real-pages"))
    ap.add_argument("--out", type=Path, default=Path("runs/pages_bench"))
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma-separated, from: " + ", ".join(ENGINES))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1, help="engines run side by side (default 1: one after another)")
    ap.add_argument("--engine", help=argparse.SUPPRESS)  # a worker: run this one engine only
    ap.add_argument("--score-only", action="store_true", help="score the predictions already in --out")
    ap.add_argument("--check", action="store_true", help="also score with the sets' own page_eval.py")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    pages = load_pages(args.pages_dir)
    if args.engine:
        run_engine(args.engine, pages, args.out, args.threads)
        return
    engines = [e for e in args.engines.split(",") if e]
    if "tesseract" in engines and shutil.which("tesseract") is None:
        print("tesseract is not on PATH: left out", file=sys.stderr)
        engines.remove("tesseract")
    if not args.score_only:
        started = time.strftime("%Y-%m-%d %H:%M")
        running: list[subprocess.Popen] = []
        for name in engines:
            while len(running) >= args.jobs:
                running = [p for p in running if p.poll() is None] or []
                time.sleep(1)
            cmd = [sys.executable, __file__, "--engine", name, "--pages-dir", str(args.pages_dir), "--out",
                   str(args.out), "--threads", str(args.threads)]
            running.append(subprocess.Popen(cmd))
        for p in running:
            p.wait()
        print(f"started {started}, load average at the end: {os.getloadavg()}")
    table = score(engines, pages, args.out)
    print_table(table)
    print_split(table)
    if args.check:
        evaluator = args.pages_dir / "page_eval.py"
        for name in engines:
            run = subprocess.run([sys.executable, str(evaluator), str(args.out / name), str(args.pages_dir)],
                                 capture_output=True, text=True)
            print(name, run.stdout.strip() or run.stderr.strip())


if __name__ == "__main__":
    main()
