"""The shipped model on one device in each float dtype: accuracy, throughput and batch-1 latency, in one run.

    python bench/gpu_inference.py [--device cuda] [--dtypes fp32,fp16,bf16] [--count 500] [--batch 256]
                                  [--checkpoint CKPT] [--fonts DIR]

Accuracy: the same held-out synthetic words as `bench/accuracy.py` (same seed and count, so the rows compare
with its table), read at --batch. Throughput: images/s of repeated decodes of one preprocessed batch (model
only: no image decoding), for at least --seconds. Latency: the median of 50 batch-1 decodes after 10 warm-up
ones. --fonts: a folder of fonts to render with where the system has none (the split hashes font families, so
a copy of the same files gives the same words).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from masterocr import Recognizer
from masterocr.data.synth.dataset import evaluation_set
from masterocr.metrics import format_table, score


def heldout_words(rec: Recognizer, count: int, seed: int, font_dirs: list[str] | None = None) -> tuple[list, list[str]]:
    """bench/accuracy.py's held-out synthetic words (same seed and count: the same images and labels)."""
    samples = evaluation_set(rec.charset, rec.cfg, count, seed, font_dirs=font_dirs).rendered()
    return [image for image, _, _ in samples], [label for _, label, _ in samples]


def measure(rec: Recognizer, images, golds, batch: int, seconds: float, sync) -> dict:
    """Accuracy at `batch`, then images/s of one repeated batch, then the median batch-1 latency."""
    m = score([p.text for p in rec.predict(images, batch_size=batch)], golds)
    x = torch.stack([rec.preprocess(im) for im in images[:batch]])
    for _ in range(3):
        rec.predict_tensors(x)
    sync()
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds or n < 2:
        rec.predict_tensors(x)
        n += 1
    sync()
    m["img_s"] = round(n * len(x) / (time.perf_counter() - start))
    lat = []
    for i in range(60):
        t = time.perf_counter()
        rec.predict_tensors(x[i % len(x) : i % len(x) + 1])
        sync()
        lat.append(time.perf_counter() - t)
    m["ms_batch1"] = f"{1000 * statistics.median(lat[10:]):.2f}"
    return m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="default: the shipped weights")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtypes", default="fp32,fp16,bf16")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--seed", type=int, default=12345, help="bench/accuracy.py's default")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--fonts", action="append", default=None, help="font folder (repeatable)")
    args = parser.parse_args()
    cuda = torch.device(args.device).type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    base = Recognizer.from_checkpoint(args.checkpoint, device=args.device)
    images, golds = heldout_words(base, args.count, args.seed, font_dirs=args.fonts)
    rows = []
    for dtype in args.dtypes.split(","):
        rec = Recognizer.from_checkpoint(args.checkpoint, device=args.device, dtype=dtype)
        rows.append((f"{dtype} / synth held-out fonts", measure(rec, images, golds, args.batch, args.seconds, sync)))
    device = torch.cuda.get_device_name(torch.device(args.device)) if cuda else "cpu"
    print(f"model: {base.weights_path}; device: {device}; batch {args.batch}")
    print(format_table(rows, ["word_acc", "word_acc_str", "num_labels", "img_s", "ms_batch1"]))


if __name__ == "__main__":
    main()
