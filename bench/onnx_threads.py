"""Decoder-step threads on onnxruntime: ms per crop by batch size, in one run.

    python bench/onnx_threads.py [--onnx FOLDER] [--threads N] [--count 128] [--batches 1,2,4,8,16,32,64]
                                 [--reps 5]

Three readers share one exported model and differ only in the decoder-step session: `dec 1` runs every step on
one thread, `dec N` on --threads (default: every core, onnxruntime's default), `auto` is what `OnnxRecognizer`
does (one thread below SMALL_BATCH images, --threads from there). The encoder runs on --threads in all three.
Without --onnx: the shipped int8 graphs (weights/master_medium_int8, `masterocr export --int8` of the default
weights). Words:
the first --count held-out synthetic words of bench/accuracy.py, preprocessed once (model time only, no image
decoding). ms per crop: the median of --reps passes, the readers taking turns in each pass. The three must
read the same tokens (same graphs); the script checks it.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from masterocr import Recognizer
from masterocr.data.synth.dataset import evaluation_set
from masterocr.formats.onnx_layout import default_onnx_path
from masterocr.metrics import format_table
from masterocr.runtime.onnx import SMALL_BATCH, OnnxRecognizer


def heldout_words(rec: Recognizer, count: int, seed: int, font_dirs: list[str] | None = None) -> tuple[list, list[str]]:
    """bench/accuracy.py's held-out synthetic words (same seed and count: the same images and labels)."""
    samples = evaluation_set(rec.charset, rec.cfg, count, seed, font_dirs=font_dirs).rendered()
    return [image for image, _, _ in samples], [label for _, label, _ in samples]


def readers(folder: Path, threads: int) -> dict[str, OnnxRecognizer]:
    """`auto` as shipped, and two shallow copies of it (same encoder session) whose decoder session is pinned to
    one thread or to `threads`."""
    auto = OnnxRecognizer(folder, threads=threads)
    one, many = copy.copy(auto), copy.copy(auto)
    one.decoder = one.decoder_small = auto.decoder_small  # one thread
    many.decoder = many.decoder_small = auto.decoder  # `threads`
    return {"dec 1": one, f"dec {threads}": many, "auto": auto}


def measure(reads: dict[str, OnnxRecognizer], batch: np.ndarray, sizes: list[int], reps: int) -> list[tuple]:
    """One table row per batch size: each reader's median ms per crop over `reps` interleaved passes over
    `batch`, and the ratio of the second reader (many threads) to the first (one)."""
    rows = []
    for size in sizes:
        times: dict[str, list[float]] = {name: [] for name in reads}
        for r in reads.values():  # warm-up at this batch size
            r.decode_arrays(batch[:size])
        for _ in range(reps):
            for name, r in reads.items():
                start = time.perf_counter()
                for s in range(0, len(batch), size):
                    r.decode_arrays(batch[s : s + size])
                times[name].append(1000 * (time.perf_counter() - start) / len(batch))
        ms = {name: statistics.median(t) for name, t in times.items()}
        one, many = list(ms.values())[:2]
        rows.append((f"batch {size}", {**{k: f"{v:.2f}" for k, v in ms.items()}, "many/one": f"{many / one:.2f}"}))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onnx", type=Path, default=None, help="an exported folder (default: the shipped graphs)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--count", type=int, default=128)
    parser.add_argument("--seed", type=int, default=12345, help="bench/accuracy.py's default")
    parser.add_argument("--batches", default="1,2,4,8,16,32,64")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    if args.threads < 2:
        raise SystemExit("--threads must be at least 2: with one, all three readers are the same")
    torch.set_num_threads(args.threads)
    reads = readers(args.onnx or default_onnx_path(), args.threads)
    images, _ = heldout_words(Recognizer(), args.count, args.seed)
    batch = np.stack([reads["auto"].preprocess(im).numpy() for im in images])
    tokens = {name: r.decode_arrays(batch[:8])[0] for name, r in reads.items()}
    if any(not np.array_equal(t, tokens["auto"]) for t in tokens.values()):
        raise SystemExit("the readers disagree: the sessions should run the same graphs")
    rows = measure(reads, batch, [int(b) for b in args.batches.split(",")], args.reps)
    print(
        f"ms per crop, {len(batch)} held-out synthetic words, encoder on {args.threads} threads; auto: one thread "
        f"below {SMALL_BATCH} images"
    )
    print(format_table(rows, [*reads, "many/one"]))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
