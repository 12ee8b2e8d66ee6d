"""Training throughput (images/s) for 1 and N processes (DDP, gloo on CPU) and each precision, per preset.

    python bench/train_throughput.py                       # tiny batch 8 x 6 steps, paper batch 2 x 3 steps
    python bench/train_throughput.py --nproc 1 2 --presets tiny paper --tiny-batch 8 --paper-batch 2
    python bench/train_throughput.py --nproc 1 --presets tiny --precisions fp32 compile   # torch.compile

Each configuration is one process group (torchrun for N > 1) that builds each preset once and times full
training steps (forward with teacher forcing, cross-entropy, backward, DDP all-reduce, clipping, Adam step) on
random images and labels, after one warm-up step; the figure is the median over the timed steps. Data loading is
not included (see docs/distributed.md). Also prints the checkpoint size (weights + Adam state) per preset.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# "compile" is fp32 through torch.compile (inductor); its first step, the compilation, is reported apart
PRECISIONS = ("fp32", "bf16", "fp16", "compile")


def worker(args) -> None:
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F

    from masterocr.charset import PAD, Charset
    from masterocr.model import build_model, get_preset

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        dist.init_process_group("gloo")
    torch.manual_seed(0)
    charset = Charset.default()
    rows = []
    for preset in args.presets:
        batch, steps = (args.paper_batch, args.paper_steps) if preset == "paper" else (args.tiny_batch, args.tiny_steps)
        cfg = get_preset(preset)
        model = build_model(cfg, charset)
        net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        images = torch.randn(batch, cfg.in_channels, cfg.img_h, cfg.img_w)
        words = ["scene" + "text"[: i % 5] for i in range(batch)]  # 5-9 characters, padded as the trainer does
        targets = charset.encode_batch(words, max(charset.label_length(w) for w in words))
        for prec in args.precisions:
            dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(prec)
            step_net = torch.compile(net) if prec == "compile" else net
            scaler = torch.amp.GradScaler("cpu", enabled=prec == "fp16")
            times = []
            for i in range(steps + 1):
                t0 = time.perf_counter()
                ctx = torch.autocast("cpu", dtype=dtype) if dtype else torch.autocast("cpu", enabled=False)
                with ctx:
                    logits = step_net(images, targets)
                loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets[:, 1:].reshape(-1),
                                       ignore_index=PAD)
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                scaler.step(opt)
                scaler.update()
                opt.zero_grad(set_to_none=True)
                if world > 1:
                    dist.barrier()
                if i:  # the first step warms up (and compiles)
                    times.append(time.perf_counter() - t0)
                else:
                    first = time.perf_counter() - t0
            med = statistics.median(times)
            rows.append({"preset": preset, "nproc": world, "precision": prec, "batch_per_rank": batch,
                         "steps": steps, "s_per_step": med, "img_per_s": batch * world / med, "first_step_s": first})
            if rank == 0:  # as we go: a run cut short by --timeout keeps what it measured
                Path(args.out).write_text(json.dumps(rows))
        if rank == 0 and world == 1:
            buf = io.BytesIO()
            torch.save({"model_state_dict": model.state_dict(), "optimizer": opt.state_dict()}, buf)
            params = sum(p.numel() for p in model.parameters())
            rows.append({"preset": preset, "checkpoint_mb": buf.tell() / 2**20, "params_m": params / 1e6})
    if rank == 0:
        Path(args.out).write_text(json.dumps(rows))
    if world > 1:
        dist.destroy_process_group()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    p.add_argument("--presets", nargs="+", default=["tiny", "paper"])
    p.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    p.add_argument("--tiny-batch", type=int, default=8)
    p.add_argument("--tiny-steps", type=int, default=6)
    p.add_argument("--paper-batch", type=int, default=2)
    p.add_argument("--paper-steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="OMP threads per process")
    p.add_argument("--timeout", type=float, default=600, help="seconds per process group before it is stopped")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    load_before = os.getloadavg()
    rows, t0 = [], time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    for n in args.nproc:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "rows.json"
            inner = [__file__, "--worker", "--out", str(out), "--presets", *args.presets, "--precisions",
                     *args.precisions, "--tiny-batch", str(args.tiny_batch), "--tiny-steps", str(args.tiny_steps),
                     "--paper-batch", str(args.paper_batch), "--paper-steps", str(args.paper_steps)]
            if n == 1:
                cmd = [sys.executable, *inner]
            else:
                cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n),
                       *inner]
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
            try:
                proc.wait(timeout=args.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its workers: the group this script started
                proc.wait()
                print(f"{n} process(es): stopped after --timeout {args.timeout:.0f} s; the rest is not measured")
            if out.exists():
                rows += json.loads(out.read_text())
    load_after = os.getloadavg()
    print(f"CPU cores {os.cpu_count()}, OMP_NUM_THREADS={args.threads} per process, "
          f"load average before {load_before[0]:.2f} / after {load_after[0]:.2f} (1 min), "
          f"wall {time.perf_counter() - t0:.0f} s")
    print(f"{'preset':7} {'procs':>5} {'precision':9} {'batch/rank':>10} {'steps':>5} {'s/step':>8} {'img/s':>8} "
          f"{'1st step s':>10}")
    for r in rows:
        if "img_per_s" in r:
            print(f"{r['preset']:7} {r['nproc']:>5} {r['precision']:9} {r['batch_per_rank']:>10} {r['steps']:>5} "
                  f"{r['s_per_step']:>8.3f} {r['img_per_s']:>8.1f} {r['first_step_s']:>10.1f}")
    for r in rows:
        if "checkpoint_mb" in r:
            print(f"checkpoint {r['preset']}: {r['params_m']:.2f}M parameters, model + Adam state "
                  f"{r['checkpoint_mb']:.1f} MiB")


if __name__ == "__main__":
    main()
