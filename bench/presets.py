"""Parameters, GFLOPs per image and training images/s of each preset, measured in one run.

    python bench/presets.py [--batch 32] [--steps 3] [--presets tiny small medium paper]

GFLOPs: torch's FLOP counter on one image, for the encoder plus a 10-step cached greedy decode (inference), and
for one teacher-forced training step (forward + backward, a 10-character label). Training images/s: median
over `--steps` timed Adam steps at `--batch` (paper uses batch 8), synthetic tensors, no data loading.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from masterocr.charset import Charset
from masterocr.model import build_model


def gflops(fn) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops() / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "medium", "paper"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    cs = Charset.default()
    label = ["abcdefghij"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    print(f"{'preset':<8} {'params (M)':>10} {'GFLOP/img infer':>16} {'GFLOP/img train':>16} {'train img/s':>12}")
    for name in args.presets:
        model = build_model(name, cs)
        c = model.cfg
        x1 = torch.randn(1, c.in_channels, c.img_h, c.img_w)
        t1 = cs.encode_batch(label, 10)
        model.eval()
        infer = gflops(lambda m=model, x=x1: m.decode(x, max_len=10, suppress_eos=True))
        model.train()

        def step(x, t, m=model):
            loss = torch.nn.functional.cross_entropy(m(x, t).flatten(0, 1), t[:, 1:].flatten())
            loss.backward()

        train = gflops(lambda x=x1, t=t1: step(x, t))
        batch = 8 if name == "paper" else args.batch
        xb = torch.randn(batch, c.in_channels, c.img_h, c.img_w)
        tb = cs.encode_batch(label * batch, 10)
        opt = torch.optim.Adam(model.parameters())
        times = []
        for i in range(args.steps + 1):
            t0 = time.perf_counter()
            opt.zero_grad()
            step(xb, tb)
            opt.step()
            if i:  # the first step warms up
                times.append(time.perf_counter() - t0)
        rate = batch / statistics.median(times)
        n = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"{name:<8} {n:>10.2f} {infer:>16.2f} {train:>16.2f} {rate:>12.1f}")
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
