"""Line benchmark: our word and line models and the peers on real text lines, in one run.

    python bench/lines.py [--lines-dir ../shared/data/real-lines] [--sets latin,zh] [--model word --model line]
                          [--model line-onnx] [--line-checkpoint CKPT] [--line-decode ctc,attention,joint]
                          [--line-window PX]
                          [--line-onnx FOLDER]
                          [--peers ppocrv4,ppocrv6,tesseract] [--threads 1]
                          [--limit N] [--json OUT]

Each set is a folder <lines-dir>/<set>/ with labels.jsonl ({ImageFile, Label}) and images/. Readers: the
shipped word model (`Recognizer()`), the line model (`--line-checkpoint`, else the shipped "line" model; a
release that does not ship one gets a note), its int8 ONNX graphs (`--model line-onnx`: `--line-onnx`, else
the shipped ones), and the peers, each skipped with a note when absent:
rapidocr-onnxruntime 1.4.4's PP-OCRv4 recognizer and rapidocr 3.10.0's bundled PP-OCRv6 recognizer (`pip
install -e '.[bench]'`; recognizer only, on the whole crop, after rapidocr's own input scaling: no detection,
no angle classifier), and Tesseract (`--psm 7`, `-l eng` for latin, `-l chi_sim+eng` for zh; one process per
line, so its times include starting it and loading its model).

Metrics (masterocr.metrics.line_scores): exact line accuracy and CER (summed edit distances / summed label
lengths), NFKC on both sides, whitespace runs collapsed; "nospace": all whitespace removed on both sides (the
Chinese labels keep the typesetter's CJK/Latin gap as a space); "runaway": the lines read more than 10
characters longer than their label; and per length bucket of the label. Speed:
median ms per line at batch 1 (image decoding included), and lines/s at batch 32 over the whole set for our
models and rapidocr's recognizers (their own batching); every reader runs with --threads threads.
The real lines are for evaluation only: never train, tune or pick checkpoints on them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from masterocr.data.labels import read_labels
from masterocr.errors import UserError
from masterocr.metrics import LENGTH_BUCKETS, format_table, length_bucket, line_scores, normalize_line
from masterocr.runtime.base import BaseRecognizer
from masterocr.runtime.select import load_recognizer
from masterocr.runtime.torch import Recognizer

REPO = Path(__file__).resolve().parents[1]
TESSERACT_LANGS = {"latin": "eng", "zh": "chi_sim+eng"}
BUCKETS = [length_bucket(lo) for lo, _ in LENGTH_BUCKETS]


class Reader:
    """A named reader: `one(path) -> text` at batch 1, and `many(paths) -> texts` at batch 32 (None: n/a)."""

    def __init__(self, name: str, one: Callable, many: Callable | None = None) -> None:
        self.name, self.one, self.many = name, one, many


def masterocr_reader(name: str, rec: Recognizer) -> Reader:
    """Our recognizer through its public API; a variable-width model pads lines by width (runtime/base.py)."""
    import numpy as np

    blank = np.full((rec.cfg.img_h, rec.cfg.img_w, 3), 255, dtype=np.uint8)
    rec.predict([blank], batch_size=1)  # warm-up: first-call allocations are not per-line cost

    def many(paths):
        return [p.text or "" for p in rec.predict(paths, batch_size=32)]

    return Reader(name, lambda path: rec.predict([path], batch_size=1)[0].text or "", many)


def line_model(checkpoint: str | None, decode: str | None = None, window: int | None = None) -> Recognizer:
    """The line model: a checkpoint when given, else the shipped "line" model (UserError when not shipped);
    `decode`: its decoding mode (None: the model config's); `window`: read lines wider than that many input
    pixels in overlapping windows (runtime/windows.py)."""
    if checkpoint:
        return Recognizer.from_checkpoint(checkpoint, decode=decode, window=window)
    return Recognizer("line", decode=decode, window=window)


def _rapidocr_reader(name: str, rec, call: Callable, prep: Callable) -> Reader:
    """`rec`: a rapidocr TextRecognizer; `call(rec, images) -> texts` (the two versions differ in signature);
    `prep(image) -> image`: the engine's own preprocessing of an input (its recognizer-only call,
    `engine(img, use_det=False, use_cls=False)`, scales the shorter side up to 30 px and the longer down to
    2,000 px first); as the SOURCES.md anchors were measured."""
    import cv2

    def load(path):
        return prep(cv2.imread(str(path)))

    def one(path):
        return call(rec, [load(path)])[0]

    def many(paths):
        rec.rec_batch_num = 32  # its own batching (it sorts by aspect ratio and pads to the widest)
        try:
            return call(rec, [load(p) for p in paths])
        finally:
            rec.rec_batch_num = 6

    return Reader(name, one, many)


def ppocrv4_reader(threads: int) -> Reader | str:
    """rapidocr-onnxruntime 1.4.4's PP-OCRv4 recognizer (its bundled ch_PP-OCRv4_rec_infer.onnx)."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        return "rapidocr-onnxruntime not installed (pip install -e '.[bench]')"
    engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)

    def call(rec, imgs):
        return [t for t, _ in rec(imgs)[0]]

    return _rapidocr_reader(
        "PP-OCRv4 rec (rapidocr-onnxruntime 1.4.4)", engine.text_rec, call, lambda img: engine.preprocess(img)[0]
    )


def ppocrv6_reader(threads: int) -> Reader | str:
    """rapidocr 3.10.0's default recognizer, PP-OCRv6 small, from the wheel's models/ (no download: the keys
    travel inside the ONNX file)."""
    try:
        from rapidocr import RapidOCR
        from rapidocr.ch_ppocr_rec.typings import TextRecInput
    except ImportError:
        return "rapidocr not installed (pip install -e '.[bench]')"
    engine = RapidOCR(
        params={
            "Global.log_level": "warning",
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )
    rec = engine._load_rec_model()  # its recognizer alone, so that a batch can be timed

    def call(r, imgs):
        return list(r(TextRecInput(img=imgs)).txts or [""] * len(imgs))

    return _rapidocr_reader(
        "PP-OCRv6 small rec (rapidocr 3.10.0)", rec, call, lambda img: engine.preprocess_img(img)[0]
    )


def tesseract_reader(threads: int, lang: str) -> Reader | str:
    exe = shutil.which("tesseract")
    if not exe:
        return "tesseract not installed (apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim)"
    env = {**os.environ, "OMP_THREAD_LIMIT": str(threads)}

    def one(path) -> str:
        cmd = [exe, str(path), "-", "--psm", "7", "-l", lang]
        return subprocess.run(cmd, capture_output=True, text=True, env=env).stdout.strip()

    return Reader(f"Tesseract --psm 7 ({lang})", one)


def read_set(folder: Path, limit: int | None) -> tuple[list[Path], list[str]]:
    labels_file = folder / "labels.jsonl"
    if not labels_file.exists():
        raise UserError(f"{labels_file} not found: pass --lines-dir, the folder that holds <set>/labels.jsonl")
    labels = read_labels(labels_file)
    names = list(labels)[:limit]
    return [folder / "images" / n for n in names], [labels[n] for n in names]


def measure(reader: Reader, paths: list[Path], golds: list[str]) -> dict:
    """Scores from one pass at batch 1 (each line timed), and lines/s of one pass at batch 32 after a warm-up
    batch."""
    preds, ms = [], []
    for path in paths:
        t0 = time.perf_counter()
        preds.append(reader.one(path))
        ms.append(1000 * (time.perf_counter() - t0))
    scores = line_scores(preds, golds)
    out = {
        "acc": scores["all"].acc,
        "cer": scores["all"].cer,
        "acc_nospace": scores["nospace"].acc,
        "cer_nospace": scores["nospace"].cer,
        "runaway": scores["all"].runaway,
        "buckets": {b: {"n": c.n, "acc": c.acc, "cer": c.cer} for b, c in scores.items() if b in BUCKETS},
        "ms_per_line_b1": statistics.median(ms) if ms else 0.0,
        "lines_per_s_b32": None,
        "preds": preds,
    }
    if reader.many is not None and paths:
        reader.many(paths[:32])  # warm-up: onnxruntime's first run of a batch shape costs several times a rerun
        t0 = time.perf_counter()
        reader.many(paths)
        out["lines_per_s_b32"] = len(paths) / (time.perf_counter() - t0)
    return out


def tables(set_name: str, n: int, results: dict[str, dict]) -> str:
    """The set's two tables: overall (with speed), and per length bucket."""
    pct = "{:.2f}".format
    main_rows, bucket_rows = [], []
    for name, r in results.items():
        speed = "n/a" if r["lines_per_s_b32"] is None else f"{r['lines_per_s_b32']:.1f}"
        main_rows.append(
            (
                name,
                {
                    "line_acc": r["acc"],
                    "cer_%": pct(100 * r["cer"]),
                    "nospace_acc": r["acc_nospace"],
                    "cer_nospace_%": pct(100 * r["cer_nospace"]),
                    "runaway": r["runaway"],
                    "ms_b1": f"{r['ms_per_line_b1']:.1f}",
                    "lines/s_b32": speed,
                },
            )
        )
        cells = {}
        for b in BUCKETS:
            c = r["buckets"].get(b)
            cells[f"{b}_line%"] = "-" if c is None else f"{100 * c['acc']:.1f}"
            cells[f"{b}_cer%"] = "-" if c is None else pct(100 * c["cer"])
        bucket_rows.append((name, cells))
    counts = next(iter(results.values()))["buckets"] if results else {}
    sizes = ", ".join(f"{b}: {counts[b]['n']}" for b in BUCKETS if b in counts)
    cols = ["line_acc", "cer_%", "nospace_acc", "cer_nospace_%", "runaway", "ms_b1", "lines/s_b32"]
    bcols = [c for b in BUCKETS for c in (f"{b}_line%", f"{b}_cer%")]
    return (
        f"{set_name}: {n} lines\n{format_table(main_rows, cols)}\n\n{set_name} by label length "
        f"(lines per bucket: {sizes}; accuracy and CER in %, with spaces)\n{format_table(bucket_rows, bcols)}"
    )


def line_onnx(folder: str | None, threads: int) -> BaseRecognizer:
    """The line model's ONNX graphs: an exported folder when given, else the shipped int8 graphs."""
    if folder:
        return load_recognizer(folder, backend="onnx", threads=threads)
    return load_recognizer(backend="onnx", threads=threads, model="line")


def build_readers(args, set_name: str, notes: list[str], cache: dict) -> list[Reader]:
    """Our models and the peers for one set; the absent ones become notes (once each)."""
    makers: list[tuple[str, Callable[[], Reader | str]]] = []
    if "word" in args.model:
        makers.append(("word", lambda: masterocr_reader("masterocr word (shipped)", Recognizer())))
    if "line" in args.model:
        name = Path(args.line_checkpoint).name if args.line_checkpoint else "shipped"
        for mode in args.line_decode.split(",") if args.line_decode else [None]:
            for window in [None, args.line_window] if args.line_window else [None]:
                label = f"masterocr line ({name}{', ' + mode if mode else ''}{f', windows {window}' if window else ''})"
                makers.append((f"line-{mode}-{window}", lambda label=label, mode=mode, window=window: masterocr_reader(
                    label, line_model(args.line_checkpoint, mode, window))))
    if "line-onnx" in args.model:  # the shipped line model's int8 graphs, or an exported folder
        folder = args.line_onnx
        label = f"masterocr line onnx ({Path(folder).name if folder else 'shipped int8'})"
        makers.append(("line-onnx", lambda label=label: masterocr_reader(label, line_onnx(folder, args.threads))))
    peers = [p for p in args.peers.split(",") if p and p != "none"]
    for p in peers:
        if p == "ppocrv4":
            makers.append((p, lambda: ppocrv4_reader(args.threads)))
        elif p == "ppocrv6":
            makers.append((p, lambda: ppocrv6_reader(args.threads)))
        elif p == "tesseract":
            lang = TESSERACT_LANGS.get(set_name, "eng")
            makers.append((f"tesseract-{lang}", lambda lang=lang: tesseract_reader(args.threads, lang)))
        else:
            raise UserError(f"--peers: unknown peer {p!r}; use ppocrv4, ppocrv6, tesseract or none")
    readers = []
    for key, make in makers:
        if key not in cache:
            try:
                cache[key] = make()
            except UserError as exc:  # e.g. no line model in this release
                cache[key] = str(exc) + (" (bench/lines.py: --line-checkpoint)" if key.startswith("line-") else "")
            if isinstance(cache[key], str):
                notes.append(f"{key} skipped: {cache[key]}")
        if not isinstance(cache[key], str):
            readers.append(cache[key])
    return readers


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    report = {"threads": args.threads, "load_before": os.getloadavg(), "sets": {}, "notes": []}
    cache: dict = {}
    for set_name in args.sets.split(","):
        paths, golds = read_set(args.lines_dir / set_name, args.limit)
        readers = build_readers(args, set_name, report["notes"], cache)
        results = {r.name: measure(r, paths, golds) for r in readers}
        report["sets"][set_name] = {
            "n": len(paths),
            "labels": [normalize_line(g) for g in golds],
            "images": [p.name for p in paths],
            "readers": results,
        }
        print(tables(set_name, len(paths), results) + "\n", flush=True)
    report["load_after"] = os.getloadavg()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines-dir", type=Path, default=REPO.parent / "shared" / "data" / "real-lines")
    parser.add_argument("--sets", default="latin,zh", help="comma list of folders under --lines-dir")
    parser.add_argument(
        "--model",
        action="append",
        choices=["word", "line", "line-onnx"],
        help="our models to read with (repeat; default both, the line model when there is one)",
    )
    parser.add_argument("--line-checkpoint", default=None, help="a line model's .pth or .safetensors")
    parser.add_argument("--line-decode", default=None, help="comma list of the line model's decoding modes "
                        "(attention, ctc, joint), one reader each; default: the model config's")
    parser.add_argument("--line-window", type=int, default=None, help="also read with the line model in "
                        "overlapping windows of this many input pixels (one more reader per mode)")
    parser.add_argument("--line-onnx", default=None, help="with --model line-onnx: an exported folder")
    parser.add_argument("--peers", default="ppocrv4,ppocrv6,tesseract", help="comma list, or none")
    parser.add_argument("--threads", type=int, default=1, help="threads of every reader")
    parser.add_argument("--limit", type=int, default=None, help="the first N lines of each set")
    parser.add_argument("--json", type=Path, default=None, help="write the scores and predictions here")
    args = parser.parse_args()
    args.model = args.model or ["word", "line"]
    try:
        report = run(args)
    except UserError as exc:
        sys.exit(f"error: {exc}")
    for note in report["notes"]:
        print(f"note: {note}")
    lb, la = report["load_before"], report["load_after"]
    print(f"threads {args.threads}; load average (1 min) before {lb[0]:.2f}, after {la[0]:.2f}; {os.cpu_count()} CPUs")
    if args.json:
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(args.json)


if __name__ == "__main__":
    main()
