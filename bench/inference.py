"""Inference speed benchmark: full recompute vs cached decoding, fast paths, onnxruntime, peers, FLOP floor.

    python bench/inference.py [--presets tiny,small,paper] [--reps 3] [--full] [--compile] [--original]

Prints ONE table measured in one run, ms per image (median over --reps after one warm-up), random weights
and random images, EOS suppressed so every row decodes exactly `len` characters (+1 step). Columns:

  full      decode(use_cache=False): the decoder re-runs over the whole prefix every step
  cached    decode(use_cache=True): one position per step with a key/value cache (the default)
  fold      + conv/BN folding (`optimize`)            fold+cl  + channels_last backbone
  fold+i8   + dynamic int8 decoder Linears            compile  + torch.compile(backbone) (--compile)
  ort       onnxruntime, exported encoder + cached step, NumPy greedy loop
  ort-i8    the same graphs quantized by `masterocr export --int8` (int8 convs + dynamic int8 matmuls)
  doctr     docTR's MASTER, untrained, paper rows only (its size, 3x48x160): 49 full-recompute steps whatever
            `len` is; n/i where python-doctr is not installed (its venv: docs/benchmarks.md)
  orig      (--original) the original's decoding: full recompute over all max_len+2 positions, max_len+1 steps
  floor     FLOPs/image of the cached decode (FlopCounterMode) / measured 2048^2 fp32 matmul rate
  x floor   cached / floor, and best / floor
  roof      a roofline floor: each decoder step costs at least the time to read the decoder's fp32 weights,
            at the rate a matrix-vector product of that many bytes reaches here (weights larger than the
            last-level cache stream from memory: at batch 1 the paper decoder is bandwidth-bound, not FLOP-bound)
  agree     token agreement of fold+i8 and ort with cached (random weights: a sensitivity check only)

Paper at batch 32 runs only with --full. The machine may be shared: the 1-minute load average is printed
before and after and a warning is given above 0.5.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
import types
import warnings

import torch

from masterocr.charset import Charset
from masterocr.export.onnx import export_model
from masterocr.export.quantize import quantize_exported
from masterocr.model import build_model
from masterocr.runtime.fast import optimize
from masterocr.runtime.onnx import OnnxRecognizer

warnings.filterwarnings("ignore")


def load1() -> float:
    return os.getloadavg()[0]


def median_ms(fn, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def matmul_gflops(reps: int = 5) -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    ms = median_ms(lambda: a @ b, reps)
    return 2 * 2048**3 / (ms / 1000) / 1e9


def stream_rate(nbytes: int, reps: int = 5) -> float:
    """Bytes/s of a fp32 matrix-vector product over a matrix of `nbytes` (the decoder step's weight traffic)."""
    w = torch.randn(max(1, nbytes // 4 // 512), 512)
    v = torch.randn(512)
    ms = median_ms(lambda: w @ v, reps)
    return w.numel() * 4 / (ms / 1000)


def step_weight_bytes(model) -> int:
    """fp32 weights one cached step reads: the decoder layers (less the once-per-image memory projections),
    the final norm and the generator."""
    n = sum(p.numel() for n, p in model.decoder.named_parameters() if ".kv_proj." not in n)
    n += sum(p.numel() for p in (*model.decoder_norm.parameters(), *model.generator.parameters()))
    return n * 4


def decode_flops(model, x, length: int) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        model.decode(x, max_len=length, suppress_eos=True)
    return fc.get_total_flops()


@torch.inference_mode()
def original_decode(model, x) -> None:
    """The original's greedy loop: a fixed (B, max_len+2) target sequence, full decoder pass at every one of
    max_len+1 steps, reading position t of the output (no cache, no early stop)."""
    from masterocr.charset import PAD, SOS

    n = model.cfg.max_len + 2
    mem_kv = model.memory_kv(model.encode(x))
    seq = torch.full((x.size(0), n), PAD, dtype=torch.long)
    seq[:, 0] = SOS
    for t in range(n - 1):
        h = model._embed(seq)
        for i, layer in enumerate(model.decoder):
            h, _, _ = layer(h, mem_kv[i])
        logits = model.generator(model.decoder_norm(h[:, t]))
        seq[:, t + 1] = logits.softmax(-1).argmax(-1)


META_REGISTRATIONS = "torchvision._meta_registrations"


def stand_in_for_torchvision_meta_registrations() -> bool:
    """Put an empty module under torchvision's `_meta_registrations` in sys.modules, unless one is there.

    torchvision imports it first thing to register fake (meta) kernels for its compiled operators; where its
    wheel is built against another torch (the CUDA build beside torch's CPU wheel) those operators are not
    loaded, `torch.library.register_fake` raises "operator torchvision::nms does not exist" and the whole
    import fails. Fake kernels serve only tracing (torch.compile, meta tensors); docTR's MASTER runs eagerly
    and calls none of those operators, so it runs without them. Returns whether it put the stand-in there."""
    if META_REGISTRATIONS in sys.modules:
        return False
    sys.modules[META_REGISTRATIONS] = types.ModuleType(META_REGISTRATIONS)
    return True


def doctr_runner(cfg):
    """docTR's MASTER (untrained) at `cfg`'s input size, 3 channels: (run(batch, length), note), or (None, why
    not) when python-doctr is not installed. It decodes max_length - 1 = 49 steps whatever `length` is, each
    one recomputing the whole sequence (no cache), like the original."""
    if importlib.util.find_spec("doctr") is None:
        return None, "skipped: python-doctr not installed (docs/benchmarks.md: its venv)"
    stand_in_for_torchvision_meta_registrations()
    from doctr.models import recognition

    model = recognition.master(
        pretrained=False, pretrained_backbone=False, input_shape=(3, cfg.img_h, cfg.img_w)
    ).eval()

    def run(b: int, length: int):
        x = torch.rand(b, 3, cfg.img_h, cfg.img_w)
        with torch.inference_mode():
            model(x)

    return run, f"docTR master, 3x{cfg.img_h}x{cfg.img_w}, {model.max_length - 1} steps"


def bench_row(preset, model, variants, ort, ort_i8, x, length, reps, rate, read_ms, args, doctr_run) -> list:
    """One table row: every method on the same batch x decoding exactly `length` characters."""
    b = x.size(0)
    r = {}

    def dec(m, cache=True):
        with torch.inference_mode():
            return m.decode(x, max_len=length, use_cache=cache, suppress_eos=True)

    r["full"] = median_ms(lambda: dec(model, False), reps) / b
    r["cached"] = median_ms(lambda: dec(model), reps) / b
    for name, m in variants.items():
        r[name] = median_ms(lambda m=m: dec(m), reps) / b
    arr = x.numpy()
    r["ort"] = median_ms(lambda: ort.decode_arrays(arr, max_len=length, suppress_eos=True), reps) / b
    r["ort-i8"] = median_ms(lambda: ort_i8.decode_arrays(arr, max_len=length, suppress_eos=True), reps) / b
    if doctr_run:
        r["doctr"] = median_ms(lambda: doctr_run(b, length), reps) / b
    else:  # n/i: python-doctr not installed; "-": a preset of another size than docTR's MASTER
        r["doctr"] = "n/i" if preset == "paper" else None
    if args.original:
        r["orig"] = median_ms(lambda: original_decode(model, x), 1) / b if b == 1 else None
    ref = dec(model).tokens
    agree_i8 = (dec(variants["fold+i8"]).tokens == ref).float().mean().item()
    agree_ort = float((ort.decode_arrays(arr, max_len=length, suppress_eos=True)[0] == ref.numpy()).mean())
    flops = decode_flops(model, x, length) / b
    floor = flops / (rate * 1e9) * 1000
    step_flops = (flops - decode_flops(model, x, 0) / b) / length  # one more step costs this much
    step_ms = max(step_flops * b / (rate * 1e9) * 1000, read_ms) / b
    roof = ((flops - (length + 1) * step_flops) / (rate * 1e9) * 1000) + (length + 1) * step_ms
    speeds = [v for k, v in r.items() if isinstance(v, float) and k not in ("full", "orig", "doctr")]
    row = [preset, b, length, r["full"], r["cached"], r["fold"], r["fold+cl"], r["fold+i8"]]
    row += [r["compile"]] if args.compile else []
    row += [r["ort"], r["ort-i8"], r["doctr"]] + ([r["orig"]] if args.original else [])
    row += [flops / 1e9, floor, r["cached"] / floor, min(speeds) / floor, roof, r["cached"] / roof]
    row += [f"{agree_i8:.2f}/{agree_ort:.2f}"]
    return row


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, (str, int)):
        return str(v)
    return f"{v:.2f}" if v < 100 else f"{v:.0f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="tiny,small,paper")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--full", action="store_true", help="also paper at batch 32")
    ap.add_argument("--compile", action="store_true", help="also torch.compile the backbone (slow to compile)")
    ap.add_argument("--original", action="store_true", help="also the original's decoding (batch 1 only)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    before = load1()
    print(f"torch {torch.__version__}, {threads} threads, load average (1 min) before: {before:.2f}", flush=True)
    if before > 0.5:
        print("WARNING: the machine is busy (load > 0.5); timings are inflated and noisy", flush=True)
    rate = matmul_gflops()
    print(f"matmul rate (2048^2 fp32, {threads} threads): {rate:.1f} GFLOP/s", flush=True)
    charset = Charset.default()
    doctr_note = "only with the paper preset (the size of docTR's MASTER)"
    header = ["preset", "B", "len", "full", "cached", "fold", "fold+cl", "fold+i8"]
    header += ["compile"] if args.compile else []
    header += ["ort", "ort-i8", "doctr"] + (["orig"] if args.original else [])
    header += ["GFLOP/img", "floor", "cached/floor", "best/floor", "roof", "cached/roof", "agree i8/ort"]
    rows = []
    t0 = time.time()
    for preset in args.presets.split(","):
        torch.manual_seed(0)
        model = build_model(preset, charset).eval()
        cfg = model.cfg
        step_bytes = step_weight_bytes(model)
        stream = stream_rate(step_bytes)
        read_ms = step_bytes / stream * 1000  # the least time one cached step can take at any batch size
        print(
            f"{preset}: a cached step reads {step_bytes / 1e6:.1f} MB of fp32 weights; "
            f"matrix-vector rate over that many bytes {stream / 1e9:.1f} GB/s",
            flush=True,
        )
        variants = {
            "fold": optimize(model),
            "fold+cl": optimize(model, channels_last=True),
            "fold+i8": optimize(model, int8=True),
        }
        if args.compile:
            variants["compile"] = optimize(model, compile=True)
        doctr_run = None
        if preset == "paper":
            doctr_run, doctr_note = doctr_runner(cfg)
        with tempfile.TemporaryDirectory() as tmp:
            export_model(model, charset, f"{tmp}/fp32")
            ort = OnnxRecognizer(f"{tmp}/fp32", threads=threads)
            calibration = torch.randn(16, cfg.in_channels, cfg.img_h, cfg.img_w).numpy()  # random weights anyway
            ort_i8 = OnnxRecognizer(quantize_exported(f"{tmp}/fp32", f"{tmp}/int8", calibration), threads=threads)
        for b in [int(v) for v in args.batches.split(",")]:
            if preset == "paper" and b > 1 and not args.full:
                continue
            x = torch.randn(b, cfg.in_channels, cfg.img_h, cfg.img_w)
            for length in (10, cfg.max_len):
                reps = max(1, args.reps if preset != "paper" else min(args.reps, 2))
                rows.append(
                    bench_row(preset, model, variants, ort, ort_i8, x, length, reps, rate, read_ms, args, doctr_run)
                )
                row = "  ".join(f"{h}={fmt(v)}" for h, v in zip(header, rows[-1]))
                print(f"  done ({time.time() - t0:.0f}s): {row}", file=sys.stderr, flush=True)
    after = load1()
    print()
    widths = [max(len(h), *(len(fmt(r[i])) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join(fmt(v).rjust(w) for v, w in zip(r, widths)))
    print()
    print("ms per image (median of reps after a warm-up); floor = FLOPs of the cached decode / matmul rate;")
    print("roof = floor with each decoder step at least its weight bytes / the matrix-vector rate measured above")
    print(f"doctr: {doctr_note}")
    print(f"load average (1 min) before {before:.2f}, after {after:.2f}; total {time.time() - t0:.0f}s")
    if max(before, after) > 0.5:
        print("WARNING: the machine is busy around the run (load > 0.5): timings are inflated and noisy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
