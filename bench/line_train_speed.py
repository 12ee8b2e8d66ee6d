"""What a training step of the line model costs, and what each change to the recipe buys: lines and characters
per hour of CPU, and the share of each batch that is padding.

    python bench/line_train_speed.py                       # 96 lines: 8 batches of 12 after a warm-up step
    python bench/line_train_speed.py --threads 2 --out docs/line_train_speed.json
    python bench/line_train_speed.py --padding-only        # padding share by pool size, 768 lines, no training

The same synthetic lines (Latin, Chinese and mixed, `configs/line_cpu_ctc.json`'s mix) are rendered once and
trained on by every variant, so the rows differ only in the recipe:
  attention            the line preset, attention loss only, batches in the order drawn (the old recipe)
  + CTC branch         ctc_weight 0.5: one more head on the memory and its loss
  + width pools        --pool batches drawn at once, sorted by width, batched with their neighbours
  + chunks             the curriculum's start: 3-30 Latin characters or 2-12 hanzi per line
  slimmer encoder      the last row with blocks (1, 1, 1, 1) instead of (1, 1, 2, 2)
Timing is of full training steps (forward, both losses, backward, AdamW) over the same 96 lines after one
warm-up step, summed: wall and process CPU seconds (the CPU column is the one to trust on a shared machine).
Rendering is not included: a loader worker renders in parallel.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from masterocr.charset import Charset
from masterocr.data.datasets import collate
from masterocr.data.synth.linedataset import SynthLineDataset
from masterocr.model import build_model, get_preset
from masterocr.model.ctc import frame_log_probs, joint_loss
from masterocr.train.sampler import WidthPools, padding_share

KINDS = {"latin": 0.35, "zh": 0.4, "mixed": 0.25}
REPO = Path(__file__).resolve().parents[1]


def render(charset: Charset, count: int, chunks: bool, seed: int) -> list[tuple[torch.Tensor, str]]:
    ds = SynthLineDataset(charset=charset, height=32, max_width=1600, in_channels=1, training=True, seed=seed,
                          length=count, kinds=KINDS, max_len=160, short_epochs=1 if chunks else 0)
    ds.set_epoch(1)
    return [ds[i] for i in range(count)]


def batches_of(items: list, batch: int, pool: int) -> list:
    """Batches of `batch` lines, from width pools of `pool` batches (1: in the order drawn)."""
    if pool > 1:
        out = []
        for i in range(0, len(items), batch * pool):
            out += WidthPools(collate, batch)(items[i : i + batch * pool])
        return out
    return [collate(items[i : i + batch]) for i in range(0, len(items), batch)]


def padding_by_pool(charset: Charset, batch: int, seed: int) -> None:
    """The padding share of whole lines and of chunks for pools of 1 to 64 batches (no training)."""
    for chunks in (False, True):
        items = render(charset, 768, chunks=chunks, seed=seed)
        shares = [f"{pool}: {100 * padding_share(batches_of(items, batch, pool)):.1f} %" for pool in (1, 8, 16, 32, 64)]
        print(f"{'chunks' if chunks else 'whole lines'}, padding by pool size: " + "; ".join(shares))


def train_step(model, charset: Charset, batch, opt, ctc_weight: float) -> None:
    longest = max(charset.label_length(t) for t in batch.labels)
    targets = charset.encode_batch(batch.labels, min(model.cfg.max_len, longest))
    logits, gold, ctc = model(batch.images, targets, batch.widths, masked=True)
    frames = model.ctc_frames(batch.images, batch.widths)
    log_probs = None if ctc is None else frame_log_probs(ctc)
    joint_loss(logits, gold, log_probs, frames, targets, ctc_weight).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def time_steps(model, charset: Charset, warmup, batches: list, ctc_weight: float) -> dict:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    train_step(model, charset, warmup, opt, ctc_weight)
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        train_step(model, charset, batch, opt, ctc_weight)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    lines = sum(len(b.labels) for b in batches)
    chars = sum(len(t) for b in batches for t in b.labels)
    return {
        "s_per_step_wall": round(wall / len(batches), 3), "cpu_s_per_step": round(cpu / len(batches), 3),
        "lines_per_cpu_hour": round(lines * 3600 / cpu), "chars_per_cpu_hour": round(chars * 3600 / cpu),
        "padding_share": round(padding_share(batches), 3),
        "mean_chars_per_line": round(chars / lines, 1),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--pool", type=int, default=8, help="batches per width pool in the pooled rows")
    ap.add_argument("--padding-only", action="store_true", help="only the padding share by pool size")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    charset = Charset.from_file(REPO / "src/masterocr/charsets/zh_latin.txt")
    if args.padding_only:
        padding_by_pool(charset, args.batch, args.seed)
        return
    count = args.batch * args.pool
    full = render(charset, count + args.batch, chunks=False, seed=args.seed)
    chunks = render(charset, count + args.batch, chunks=True, seed=args.seed)
    random.Random(args.seed).shuffle(full)
    warmup = collate(full[count:])
    variants = [
        ("attention", {}, full, False),
        ("+ CTC branch", {"ctc_weight": 0.5}, full, False),
        ("+ width pools", {"ctc_weight": 0.5}, full, True),
        ("+ chunks", {"ctc_weight": 0.5}, chunks, True),
        ("slimmer encoder (+ chunks)", {"ctc_weight": 0.5, "blocks": (1, 1, 1, 1)}, chunks, True),
    ]
    rows = []
    print(f"threads {args.threads}, batch {args.batch}, {count} lines per row")
    print("| recipe | CPU s/step | wall s/step | lines / CPU-hour | chars / CPU-hour | padding | chars/line |")
    print("|---|---|---|---|---|---|---|")
    for name, overrides, items, pools in variants:
        torch.manual_seed(0)
        model = build_model(get_preset("line", **overrides), charset)
        r = time_steps(model, charset, warmup, batches_of(items[:count], args.batch, args.pool if pools else 1),
                       overrides.get("ctc_weight", 0.0))
        rows.append({"recipe": name, **r})
        print(f"| {name} | {r['cpu_s_per_step']} | {r['s_per_step_wall']} | {r['lines_per_cpu_hour']:,} | "
              f"{r['chars_per_cpu_hour']:,} | {100 * r['padding_share']:.1f} % | {r['mean_chars_per_line']} |",
              flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
