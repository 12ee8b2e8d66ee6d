"""Accuracy benchmark: the shipped model on held-out synthetic words and on real crops, peers side by side.

    python bench/accuracy.py [--checkpoint CKPT] [--real-dir ../shared/data/real-eval] [--synth-count 500]
                             [--variants fp32,int8,onnx,onnx-int8]

Prints one table measured in one run: the model as shipped (fp32), its dynamic-int8 decoder, the exported
ONNX graphs on onnxruntime and their int8 version (`masterocr export --int8`), each on the same images at
batch 1. Peers (Tesseract with --psm 8, rapidocr-onnxruntime's recognizer: `pip install -e '.[bench]'`) are
optional: skipped with a note when absent. The real crops are for evaluation only: never train or tune on them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from masterocr.evaluate import Counts, format_table, read_labels
from masterocr.infer.recognizer import Recognizer

REPO = Path(__file__).resolve().parents[1]


def run_masterocr(rec, images: list, golds: list[str]) -> tuple[dict, float]:
    """Batch-1 latency (ms/image, mean over the set, image decoding included) and the metrics."""
    rec.predict([images[0]], batch_size=1)  # warm-up: first-call allocations are not per-image cost
    counts = Counts()
    t0 = time.perf_counter()
    for img, gold in zip(images, golds):
        counts.add(rec.predict([img], batch_size=1)[0].text or "", gold)
    ms = 1000 * (time.perf_counter() - t0) / max(1, len(images))
    return counts.metrics(), ms


def build_variants(checkpoint: str | None, names: list[str], tmp: Path, threads: int) -> list[tuple[str, object]]:
    """(label, recognizer) for each requested inference path of the same weights."""
    out = []
    for name in names:
        if name == "fp32":
            out.append(("masterocr", Recognizer.from_checkpoint(checkpoint)))
        elif name == "int8":
            out.append(("masterocr int8", Recognizer.from_checkpoint(checkpoint, int8=True)))
        elif name == "onnx":
            from masterocr.infer.export import OnnxRecognizer, export_onnx

            out.append(("masterocr onnx", OnnxRecognizer(export_onnx(checkpoint, tmp / "onnx"), threads=threads)))
        elif name == "onnx-int8":
            from masterocr.infer.export import OnnxRecognizer
            from masterocr.infer.quantize import export_onnx_int8

            folder = export_onnx_int8(checkpoint, tmp / "onnx-int8")  # calibrated on synthetic training fonts
            out.append(("masterocr onnx int8", OnnxRecognizer(folder, threads=threads)))
        else:
            raise SystemExit(f"unknown variant {name!r}: use fp32, int8, onnx, onnx-int8")
    return out


def run_tesseract(paths: list[Path], golds: list[str]) -> tuple[dict, float] | str:
    exe = shutil.which("tesseract")
    if not exe:
        return "skipped: tesseract not installed (apt-get install tesseract-ocr tesseract-ocr-eng)"
    counts = Counts()
    t0 = time.perf_counter()
    for p, gold in zip(paths, golds):
        out = subprocess.run([exe, str(p), "stdout", "--psm", "8", "-l", "eng"], capture_output=True, text=True)
        counts.add(out.stdout.strip(), gold)
    return counts.metrics(), 1000 * (time.perf_counter() - t0) / max(1, len(paths))


def run_rapidocr(paths: list[Path], golds: list[str]) -> tuple[dict, float] | str:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        return "skipped: rapidocr-onnxruntime not installed (pip install rapidocr-onnxruntime)"
    engine = RapidOCR()
    counts = Counts()
    t0 = time.perf_counter()
    for p, gold in zip(paths, golds):
        result, _ = engine(str(p), use_det=False, use_cls=False, use_rec=True)
        counts.add(result[0][0] if result else "", gold)
    return counts.metrics(), 1000 * (time.perf_counter() - t0) / max(1, len(paths))


def synthetic_heldout(rec: Recognizer, count: int, seed: int) -> tuple[list, list[str]]:
    """Rendered words in fonts the training split never saw (the font split is by family)."""
    from masterocr.data.synth import SynthDataset

    ds = SynthDataset(charset=rec.charset, img_h=rec.cfg.img_h, img_w=rec.cfg.img_w, in_channels=3,
                      max_len=rec.cfg.max_len, training=False, seed=seed, length=count, fonts="heldout")
    images, golds = [], []
    for i in range(count):
        img, label = ds.synth.sample(ds.rng_for(i))
        images.append(img)
        golds.append(label)
    return images, golds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="default: the shipped weights")
    parser.add_argument("--real-dir", type=Path, default=REPO.parent / "shared" / "data" / "real-eval")
    parser.add_argument("--synth-count", type=int, default=500)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", default="fp32,int8,onnx,onnx-int8", help="comma list of those four")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average before: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        variants = build_variants(args.checkpoint, args.variants.split(","), Path(tmp), args.threads)
        first = variants[0][1]
        print(f"model: {first.source}", file=sys.stderr)
        images, golds = synthetic_heldout(first, args.synth_count, args.seed)
        for label, rec in variants:
            m, ms = run_masterocr(rec, images, golds)
            rows.append((f"{label} / synth held-out fonts", {**m, "ms_per_img": f"{ms:.1f}"}))

        labels_file = args.real_dir / "labels.jsonl"
        if labels_file.exists():
            labels = read_labels(labels_file)
            paths = [args.real_dir / "images" / n for n in labels]
            golds = list(labels.values())
            for label, rec in variants:
                m, ms = run_masterocr(rec, paths, golds)
                rows.append((f"{label} / real crops", {**m, "ms_per_img": f"{ms:.1f}"}))
            for name, fn in (("tesseract --psm 8 / real crops", run_tesseract),
                             ("rapidocr rec / real crops", run_rapidocr)):
                out = fn(paths, golds)
                if isinstance(out, str):
                    notes.append(f"{name}: {out}")
                else:
                    rows.append((name, {**out[0], "ms_per_img": f"{out[1]:.1f}"}))
        else:
            notes.append(f"real crops: {labels_file} not found (pass --real-dir)")
    print(format_table(rows, ["word_acc", "word_acc_ci", "word_acc_str", "edit_acc", "num_labels", "ms_per_img"]))
    for n in notes:
        print(f"note: {n}")
    print(f"threads {args.threads}; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
