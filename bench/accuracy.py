"""Accuracy benchmark: the shipped model on held-out synthetic words and on real crops, peers side by side.

    python bench/accuracy.py [--checkpoint CKPT] [--real-dir ../shared/data/real-eval] [--synth-count 500]
                             [--variants fp32,int8,onnx,onnx-int8] [--by-font] [--also OTHER_CKPT ...]

Prints one table measured in one run: the model as shipped (fp32), its dynamic-int8 decoder, the exported
ONNX graphs on onnxruntime and their int8 version (the shipped weights/master_medium_int8, which is `masterocr
export --int8`; exported afresh for --checkpoint), each on the same images at
batch 1; --also adds other weights (fp32) on the same images, e.g. weights/master_small.safetensors. Peers
(Tesseract with --psm 8, rapidocr-onnxruntime's recognizer: `pip install -e '.[bench]'`) are optional:
skipped with a note when absent; --threads applies to every reader (torch, our onnxruntime sessions,
rapidocr's onnxruntime session, Tesseract's OpenMP); below every core, rapidocr also runs at its default.
ms_per_img: one pass for the synthetic rows; for the real crops the median of --speed-passes passes, every
reader taking its turn in each round (this host's speed drifts).
--by-font adds a second table: the first variant's accuracy per held-out font family, and on as many words
rendered the same way in the training fonts (is the error the unseen type design, or the rendering?).
The real crops are for evaluation only: never train or tune on them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import torch

from masterocr.data.labels import read_labels
from masterocr.data.synth.dataset import evaluation_set
from masterocr.data.synth.families import font_family
from masterocr.metrics import Counts, format_table
from masterocr.runtime.torch import Recognizer

REPO = Path(__file__).resolve().parents[1]


def masterocr_reader(rec):
    """path/image -> text at batch 1 (image decoding included)."""
    import numpy as np

    blank = np.full((rec.cfg.img_h, rec.cfg.img_w, 3), 255, dtype=np.uint8)
    rec.predict([blank], batch_size=1)  # warm-up: first-call allocations are not per-image cost
    return lambda img: rec.predict([img], batch_size=1)[0].text or ""


def score(read, inputs: list, golds: list[str]) -> tuple[dict, float]:
    """Metrics and mean ms/image of one pass."""
    counts = Counts()
    t0 = time.perf_counter()
    for img, gold in zip(inputs, golds):
        counts.add(read(img), gold)
    return counts.metrics(), 1000 * (time.perf_counter() - t0) / max(1, len(inputs))


def timed_passes(readers: dict, inputs: list, passes: int) -> dict[str, float]:
    """Median ms/image over `passes` passes per reader, the readers taking turns pass by pass, so that a slow
    spell of this shared machine hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(passes):
        for name, read in readers.items():
            t0 = time.perf_counter()
            for img in inputs:
                read(img)
            times[name].append(1000 * (time.perf_counter() - t0) / max(1, len(inputs)))
    return {name: statistics.median(t) for name, t in times.items()}


def build_variants(checkpoint: str | None, names: list[str], tmp: Path, threads: int) -> list[tuple[str, object]]:
    """(label, recognizer) for each requested inference path of the same weights."""
    out = []
    for name in names:
        if name == "fp32":
            out.append(("masterocr", Recognizer.from_checkpoint(checkpoint)))
        elif name == "int8":
            out.append(("masterocr int8", Recognizer.from_checkpoint(checkpoint, int8=True)))
        elif name == "onnx":
            from masterocr.export.onnx import export_onnx
            from masterocr.runtime.onnx import OnnxRecognizer

            out.append(("masterocr onnx", OnnxRecognizer(export_onnx(checkpoint, tmp / "onnx"), threads=threads)))
        elif name == "onnx-int8":
            from masterocr.export.quantize import export_onnx_int8
            from masterocr.formats.onnx_layout import default_onnx_path
            from masterocr.runtime.onnx import OnnxRecognizer

            if checkpoint is None:  # weights/master_medium_int8: what `masterocr predict` reads by default
                folder = default_onnx_path()
            else:  # calibrated on synthetic training fonts, as the shipped ones were
                folder = export_onnx_int8(checkpoint, tmp / "onnx-int8")
            out.append(("masterocr onnx int8", OnnxRecognizer(folder, threads=threads)))
        else:
            raise SystemExit(f"unknown variant {name!r}: use fp32, int8, onnx, onnx-int8")
    return out


def tesseract_reader(threads: int):
    exe = shutil.which("tesseract")
    if not exe:
        return "skipped: tesseract not installed (apt-get install tesseract-ocr tesseract-ocr-eng)"
    env = {**os.environ, "OMP_THREAD_LIMIT": str(threads)}  # Tesseract's OpenMP threads, like ours

    def read(path) -> str:
        cmd = [exe, str(path), "stdout", "--psm", "8", "-l", "eng"]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        return out.stdout.strip()

    return read


def rapidocr_reader(threads: int | None):
    """rapidocr's recognizer with `threads` onnxruntime intra-op threads (None: its default, every core)."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        return "skipped: rapidocr-onnxruntime not installed (pip install rapidocr-onnxruntime)"
    engine = RapidOCR() if threads is None else RapidOCR(intra_op_num_threads=threads)

    def read(path) -> str:
        result, _ = engine(str(path), use_det=False, use_cls=False, use_rec=True)
        return result[0][0] if result else ""

    return read


class RenderedWords(NamedTuple):
    images: list
    golds: list[str]
    families: list[str]  # the font family that drew each word
    split_families: int  # how many families the font split holds (a small sample may not draw them all)


def synthetic_words(
    rec: Recognizer, count: int, seed: int, fonts: str = "heldout", font_dirs: list[str] | None = None
) -> RenderedWords:
    """Rendered words, their labels and font families. "heldout": fonts the training split never saw (the
    split is by family); "train": the training fonts, rendered the same way. `font_dirs`: where the fonts lie
    (None: the system's)."""
    ds = evaluation_set(rec.charset, rec.cfg, count, seed, fonts=fonts, font_dirs=font_dirs)
    samples = ds.rendered()
    images, golds = [image for image, _, _ in samples], [label for _, label, _ in samples]
    families = [font_family(font) for _, _, font in samples]
    return RenderedWords(images, golds, families, len(ds.synth.families))


def by_font_rows(rec: Recognizer, heldout: RenderedWords, seen: RenderedWords) -> list:
    """Exact accuracy per held-out font family, then over all of them and over the training fonts: how much of
    the error is the unseen type design and how much the rendering itself."""

    def read(words: RenderedWords):
        texts = [p.text or "" for p in rec.predict(words.images, batch_size=32)]
        per: dict[str, Counts] = {}
        total = Counts()
        for text, gold, fam in zip(texts, words.golds, words.families):
            per.setdefault(fam, Counts()).add(text, gold)
            total.add(text, gold)
        return per, total.metrics()

    per, total = read(heldout)
    rows = sorted(((f"held-out family: {fam}", c.metrics()) for fam, c in per.items()), key=lambda r: r[1]["word_acc"])
    rows.append(("all held-out families", total))
    rows.append((f"training fonts ({seen.split_families} families), same renderer", read(seen)[1]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="default: the shipped weights")
    parser.add_argument("--real-dir", type=Path, default=REPO.parent / "shared" / "data" / "real-eval")
    parser.add_argument("--synth-count", type=int, default=500)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", default="fp32,int8,onnx,onnx-int8", help="comma list of those four")
    parser.add_argument(
        "--by-font",
        action="store_true",
        help="also the first variant's accuracy per held-out font family, and on as many words in the training fonts",
    )
    parser.add_argument("--also", nargs="*", default=[], help="other weights read in the same run (fp32)")
    parser.add_argument("--speed-passes", type=int, default=3, help="timed passes over the real crops per reader")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average before: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        variants = build_variants(args.checkpoint, args.variants.split(","), Path(tmp), args.threads)
        variants += [(f"masterocr {Path(other).stem}", Recognizer.from_checkpoint(other)) for other in args.also]
        first = variants[0][1]
        print(f"model: {first.weights_path} ({first.variant})", file=sys.stderr)
        readers = {label: masterocr_reader(rec) for label, rec in variants}
        heldout = synthetic_words(first, args.synth_count, args.seed)
        images, golds = heldout.images, heldout.golds
        for label, read in readers.items():
            m, ms = score(read, images, golds)
            rows.append((f"{label} / synth held-out fonts", {**m, "ms_per_img": f"{ms:.1f}"}))

        if args.by_font:
            seen = synthetic_words(first, args.synth_count, args.seed, fonts="train")
            font_rows = by_font_rows(first, heldout, seen)

        labels_file = args.real_dir / "labels.jsonl"
        if labels_file.exists():
            labels = read_labels(labels_file)
            paths = [args.real_dir / "images" / n for n in labels]
            golds = list(labels.values())
            peers = [
                ("tesseract --psm 8", tesseract_reader, args.threads),
                ("rapidocr rec", rapidocr_reader, args.threads),
            ]
            if args.threads < (os.cpu_count() or 1):  # the peer at its own best setting too, in the same run
                peers.append(("rapidocr rec, all cores", rapidocr_reader, None))
            for name, make, threads in peers:
                peer = make(threads)
                if isinstance(peer, str):
                    notes.append(f"{name} / real crops: {peer}")
                else:
                    readers[name] = peer
            real_rows = {name: score(read, paths, golds)[0] for name, read in readers.items()}
            speed = timed_passes(readers, paths, args.speed_passes)
            for name, m in real_rows.items():
                rows.append((f"{name} / real crops", {**m, "ms_per_img": f"{speed[name]:.1f}"}))
        else:
            notes.append(f"real crops: {labels_file} not found (pass --real-dir)")
    print(format_table(rows, ["word_acc", "word_acc_ci", "word_acc_str", "edit_acc", "num_labels", "ms_per_img"]))
    if args.by_font:
        print(f"\n{variants[0][0]}, synthetic words by font (batch 32):")
        print(format_table(font_rows, ["word_acc", "word_acc_ci", "word_acc_str", "edit_acc", "num_labels"]))
    for n in notes:
        print(f"note: {n}")
    print(f"threads {args.threads}; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
