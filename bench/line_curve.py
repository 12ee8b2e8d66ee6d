"""The line model's learning curve: CER of training checkpoints on held-out synthetic lines (per kind) and on the
public real lines, in each decoding mode, against what the run had seen when the checkpoint was written.

    python bench/line_curve.py CKPT [CKPT ...] [--count 50] [--modes ctc,joint] [--out docs/line_curve.jsonl]

Held-out synthetic lines: `line_evaluation_set` (the held-out CJK design and Latin families, never drawn in
training), `--count` per kind. Real lines: `--lines-dir` (../shared/data/real-lines) read for the record only:
they never choose a checkpoint or a recipe. Each checkpoint's `lines_seen`, `chars_seen` and `train_seconds` come
from the checkpoint itself; `--cpu-hours` lets the caller add the CPU time the job had when it was written.
One JSON line per checkpoint and mode is appended to `--out`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from PIL import Image

from masterocr.data.labels import read_labels
from masterocr.data.synth.linedataset import line_evaluation_set
from masterocr.data.transforms import pad_batch, preprocess_line
from masterocr.formats.checkpoint import load_checkpoint
from masterocr.formats.load import load_model
from masterocr.metrics import line_scores

REPO = Path(__file__).resolve().parents[1]
KINDS = ("latin", "zh", "mixed")


def read_lines(model, charset, images: list[Image.Image], mode: str, batch: int = 16) -> list[str]:
    """Texts of PIL line images, read in width-sorted padded batches."""
    cfg = model.cfg
    tensors = [preprocess_line(img, cfg.img_h, cfg.img_w, cfg.in_channels) for img in images]
    order = sorted(range(len(tensors)), key=lambda i: tensors[i].size(-1))
    out: list[str] = [""] * len(tensors)
    with torch.no_grad():
        for k in range(0, len(order), batch):
            idx = order[k : k + batch]
            padded, widths = pad_batch([tensors[i] for i in idx])
            tokens = model.decode(padded, widths=widths, mode=mode).tokens
            for i, row in zip(idx, tokens.tolist()):
                out[i] = charset.decode(row)
    return out


def heldout(charset, model, kind: str, count: int, seed: int) -> tuple[list[Image.Image], list[str]]:
    ds = line_evaluation_set(charset, count, seed, height=model.cfg.img_h, max_width=model.cfg.img_w,
                             kinds={kind: 1.0})  # fmt: skip
    pairs = [ds.rendered(i)[:2] for i in range(count)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def real(folder: Path) -> tuple[list[Image.Image], list[str]]:
    labels = read_labels(folder / "labels.jsonl")
    return [Image.open(folder / "images" / n).convert("RGB") for n in labels], list(labels.values())


def evaluate(path: Path, args) -> list[dict]:
    ckpt = load_checkpoint(path, map_location="cpu") if path.suffix == ".pth" else {}
    model, charset, _ = load_model(path)
    model.eval()
    sets = {f"synth_{k}": heldout(charset, model, k, args.count, args.seed) for k in KINDS}
    if args.lines_dir.is_dir():
        sets.update({f"real_{s}": real(args.lines_dir / s) for s in ("latin", "zh")})
    rows = []
    for mode in args.modes.split(","):
        row = {"checkpoint": str(path), "mode": mode, "step": ckpt.get("step"),
               "lines_seen": ckpt.get("lines_seen"), "chars_seen": ckpt.get("chars_seen"),
               "train_seconds": ckpt.get("train_seconds"), "cpu_hours": args.cpu_hours}  # fmt: skip
        start = time.perf_counter()
        for name, (images, golds) in sets.items():
            scores = line_scores(read_lines(model, charset, images, mode), golds)
            key = "nospace" if name.endswith("zh") else "all"
            row[f"{name}_cer"] = round(100 * scores[key].cer, 2)
            row[f"{name}_runaway"] = scores["all"].runaway
            if name == "real_latin":
                row["real_latin_cer_by_bucket"] = {b: round(100 * c.cer, 2) for b, c in scores.items()
                                                   if b not in ("all", "nospace")}
        row["seconds"] = round(time.perf_counter() - start, 1)
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--count", type=int, default=50, help="held-out synthetic lines per kind")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--modes", default="ctc,joint")
    ap.add_argument("--lines-dir", type=Path, default=REPO.parent / "shared" / "data" / "real-lines")
    ap.add_argument("--cpu-hours", type=float, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for path in args.checkpoints:
        rows = evaluate(path, args)
        if args.out:
            with args.out.open("a", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


if __name__ == "__main__":
    main()
