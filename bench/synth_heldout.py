"""Held-out synthetic lines: CER of a line model on lines drawn in the held-out faces, per kind of line.

    python bench/synth_heldout.py [--checkpoint CKPT] [--count 100] [--seed 7] [--kinds latin,zh,mixed]

The lines come from `line_evaluation_set`: the held-out CJK design (LXGW WenKai) and the held-out Latin
families, never drawn in training (fonts="train" excludes them), rendered from the validation seed stream.
Reads with the given checkpoint or the shipped "line" model, greedy, batch 16. Prints one row per kind and
one for all: lines, exact accuracy, CER with and without spaces (masterocr.metrics.line_scores), and the
characters the model's charset lacks (none: the lines are drawn from that charset).
"""

from __future__ import annotations

import argparse
import os

import torch

from masterocr.data.synth.linedataset import line_evaluation_set
from masterocr.metrics import line_scores
from masterocr.runtime.torch import Recognizer


def read_kind(rec: Recognizer, kind: str, count: int, seed: int) -> tuple[list[str], list[str]]:
    """(predictions, labels) of `count` held-out lines of one kind at the model's height and width."""
    ds = line_evaluation_set(rec.charset, count, seed, height=rec.cfg.img_h, max_width=rec.cfg.img_w,
                             kinds={kind: 1.0})  # fmt: skip
    images, labels = [], []
    for i in range(count):
        img, label, _, _ = ds.rendered(i)
        images.append(img)
        labels.append(label)
    return [p.text for p in rec.predict(images, batch_size=16)], labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="a .pth or .safetensors (default: the shipped line model)")
    parser.add_argument("--count", type=int, default=100, help="lines per kind")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kinds", default="latin,zh,mixed")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rec = Recognizer.from_checkpoint(args.checkpoint) if args.checkpoint else Recognizer("line")
    print(f"model {rec.weights_path}; {args.count} held-out lines per kind, seed {args.seed}; "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    preds_all, labels_all = [], []
    rows = []
    for kind in args.kinds.split(","):
        preds, labels = read_kind(rec, kind, args.count, args.seed)
        preds_all += preds
        labels_all += labels
        rows.append((kind, line_scores(preds, labels)))
    rows.append(("all", line_scores(preds_all, labels_all)))
    print(f"{'kind':<7} {'lines':>5} {'acc':>7} {'CER':>7} {'CER nospace':>11}")
    for kind, s in rows:
        a, ns = s["all"], s["nospace"]
        print(f"{kind:<7} {a.n:>5} {100 * a.acc:>6.1f}% {100 * a.cer:>6.2f}% {100 * ns.cer:>10.2f}%")


if __name__ == "__main__":
    main()
