"""Training-step time of the line preset against the charset size: does a large charset's generator and loss
stay cheap?

    python bench/charset_step.py                                  # 95, 7,000 and 12,000 classes
    python bench/charset_step.py --classes 95 7184 --width 800 --batch 8 --steps 5 --threads 2

One step is the forward with teacher forcing, cross-entropy and backward (no optimizer step: Adam's cost is
per parameter and the same for both loss paths), on a batch of random right-padded lines of `--width` px
(valid widths from half to all of it) whose random labels run from `--min-chars` to `--max-chars` characters.
Two loss paths: "full" projects every decoder position onto the whole charset (`model(images, targets)`, then
cross-entropy with ignore_index=PAD), "masked" only the positions the loss scores (`model.masked_logits`).
The figure is the median over the timed steps, after one warm-up step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from masterocr.charset import NUM_SPECIAL, PAD, Charset
from masterocr.model import build_model, get_preset


def _batch(classes: int, args, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    images = torch.randn(args.batch, 1, 32, args.width, generator=g)
    widths = torch.randint(args.width // 2, args.width + 1, (args.batch,), generator=g)
    lengths = torch.randint(args.min_chars, args.max_chars + 1, (args.batch,), generator=g)
    keys = "".join(chr(0x4E00 + i) for i in range(classes - NUM_SPECIAL))
    charset = Charset(keys)
    texts = ["".join(keys[int(i)] for i in torch.randint(0, len(keys), (int(n),), generator=g)) for n in lengths]
    return images, widths, charset.encode_batch(texts, int(lengths.max()))


def _step(model, images, widths, targets, path: str) -> float:
    t = time.perf_counter()
    if path == "full":
        logits = model(images, targets, widths)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets[:, 1:].reshape(-1), ignore_index=PAD)
    else:
        logits, gold = model.masked_logits(images, targets, widths)
        loss = F.cross_entropy(logits, gold)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - t


def measure(classes: int, path: str, args) -> dict:
    """Median step time (ms) of one charset size and loss path, and the generator's share of the parameters."""
    torch.manual_seed(0)
    model = build_model(get_preset("line", img_w=max(args.width, 32)), classes).train()
    images, widths, targets = _batch(classes, args, torch.Generator().manual_seed(1))
    _step(model, images, widths, targets, path)  # warm-up
    times = [_step(model, images, widths, targets, path) for _ in range(args.steps)]
    n_params = sum(p.numel() for p in model.parameters())
    gen = sum(p.numel() for p in model.generator.parameters()) + model.embed.weight.numel()
    return {"ms": 1000 * statistics.median(times), "params": n_params, "vocab_share": gen / n_params}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", type=int, nargs="+", default=[95, 7000, 12000])
    ap.add_argument("--paths", nargs="+", choices=("full", "masked"), default=["full", "masked"])
    ap.add_argument("--width", type=int, default=800)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--min-chars", type=int, default=10)
    ap.add_argument("--max-chars", type=int, default=60)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"line preset, batch {args.batch}, lines of {args.width // 2}-{args.width} px, "
          f"labels of {args.min_chars}-{args.max_chars} chars, {torch.get_num_threads()} threads, "
          f"median of {args.steps} steps (forward + loss + backward)")  # fmt: skip
    print(f"{'classes':>8} {'params':>9} {'embed+gen':>9} " + " ".join(f"{p + ' ms':>10}" for p in args.paths)
          + (f" {'vs 95 (full)':>13}" if "full" in args.paths else ""))  # fmt: skip
    base = None
    for classes in args.classes:
        rows = {path: measure(classes, path, args) for path in args.paths}
        first = rows[args.paths[0]]
        if base is None and "full" in rows:
            base = rows["full"]["ms"]
        ratio = f" {rows['full']['ms'] / base:>12.2f}x" if "full" in rows and base else ""
        cells = " ".join(f"{rows[p]['ms']:>10.0f}" for p in args.paths)
        print(f"{classes:>8} {first['params'] / 1e6:>8.2f}M {first['vocab_share']:>9.0%} {cells}{ratio}")


if __name__ == "__main__":
    main()
