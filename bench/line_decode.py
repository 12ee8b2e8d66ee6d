"""Decoding a long line: the key/value cache against full recompute, the share of the encoder, and the cost of
each decoding mode.

    python bench/line_decode.py                       # line preset, 1,600 px, 100 characters, batch 1
    python bench/line_decode.py --width 800 --chars 50 --classes 7188 --threads 1 --reps 3
    python bench/line_decode.py --mode attention ctc joint --width 800 --chars 50 --threads 1 --reps 5
    python bench/line_decode.py --mode attention ctc joint --onnx --width 800 --chars 50 --threads 1 --reps 5

Random weights with EOS suppressed, so every run decodes exactly `--chars` characters (plus the EOS slot);
the figures are medians over `--reps` runs of `MASTER.decode` (the encoder included) and of the encoder alone.
`--mode` builds the model with the CTC branch (ctc_weight 0.5) and times `MASTER.decode(..., mode=M)` per
mode: ctc is one pass (encoder + CTC head + best path); attention and joint decode `--chars` steps (joint: the
decoder's top 5 rescored by the CTC prefix score at each step; its CTC length bound is lifted here so that
every mode decodes the same number of characters, as a random branch reads no text). `--onnx` times the same
modes through the exported fp32 graphs on onnxruntime (`--threads` intra-op threads), beside the encoder graph
with and without the CTC output (the cost of carrying the head in attention mode).
"""

from __future__ import annotations

import argparse
import statistics
import time
from unittest import mock

import torch

from masterocr.model import build_model, decoding, get_preset


def _median_ms(fn, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def _cache_table(model, x, widths, args) -> None:
    def decode(cache: bool):
        return lambda: model.decode(x, max_len=args.chars, suppress_eos=True, use_cache=cache, widths=widths)

    steps = model.decode(x, max_len=args.chars, suppress_eos=True, widths=widths).tokens.size(1)
    enc = _median_ms(lambda: model.encode(x, widths), args.reps)
    cached = _median_ms(decode(True), args.reps)
    full = _median_ms(decode(False), args.reps)
    print(f"line preset, {args.classes} classes, batch {args.batch} of {args.width} px, {steps} steps, "
          f"{torch.get_num_threads()} threads, median of {args.reps}")  # fmt: skip
    print(f"{'encoder':<28}{enc:>9.0f} ms")
    print(f"{'decode, key/value cache':<28}{cached:>9.0f} ms  ({(cached - enc) / steps:.2f} ms per step)")
    print(f"{'decode, full recompute':<28}{full:>9.0f} ms  ({(full - enc) / steps:.2f} ms per step)")
    print(f"{'cache speed-up':<28}{full / cached:>9.1f}x")


def _mode_table(model, x, widths, args) -> None:
    enc = _median_ms(lambda: model.encode(x, widths), args.reps)
    print(f"line preset with the CTC branch (ctc_weight 0.5), {args.classes} classes, batch {args.batch} of "
          f"{args.width} px, {args.chars} characters, {torch.get_num_threads()} threads, median of {args.reps}")
    print(f"{'mode':<12}{'ms per line':>12}{'of which encoder':>18}")
    # joint's CTC length bound would stop a random branch's reading early: lifted, every mode reads --chars
    with mock.patch.object(decoding, "joint_step_bound", lambda lengths: torch.full_like(lengths, args.chars)):
        for mode in args.mode:
            ms = _median_ms(lambda m=mode: model.decode(x, max_len=args.chars, suppress_eos=True, widths=widths,
                                                        mode=m), args.reps)  # fmt: skip
            print(f"{mode:<12}{ms / args.batch:>12.1f}{enc / args.batch:>18.1f}")


def _onnx_table(model, x, widths, args) -> None:
    import tempfile
    from dataclasses import replace

    from masterocr import Charset
    from masterocr.export.onnx import export_model
    from masterocr.runtime.onnx import OnnxRecognizer

    charset = Charset("".join(chr(0x4E00 + i) for i in range(args.classes - 4)))  # the classes' count only
    arr, w = x.numpy(), widths.numpy()
    with tempfile.TemporaryDirectory() as tmp:
        plain = build_model(replace(model.cfg, ctc_weight=0.0), charset).eval()
        plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("ctc.")})
        folders = {"without": export_model(plain, charset, f"{tmp}/plain"),
                   "with": export_model(model, charset, f"{tmp}/ctc")}
        print(f"onnxruntime fp32 graphs, batch {args.batch} of {args.width} px, {args.chars} characters, "
              f"{args.threads or 'default'} threads, median of {args.reps}")
        for name, folder in folders.items():
            rec = OnnxRecognizer(folder, threads=args.threads)
            ms = _median_ms(lambda r=rec: r.encoder.run(None, {"images": arr, "widths": w}), args.reps)
            print(f"{'encoder graph ' + name + ' the CTC output':<40}{ms / args.batch:>9.1f} ms")
        with mock.patch.object(decoding, "joint_step_bound", lambda lengths: torch.full_like(lengths, args.chars)):
            for mode in args.mode:
                rec = OnnxRecognizer(folders["with"], threads=args.threads, decode=mode)
                ms = _median_ms(lambda r=rec: r.decode_output(arr, args.chars, True, w), args.reps)
                print(f"{'decode, ' + mode:<40}{ms / args.batch:>9.1f} ms")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--chars", type=int, default=100)
    ap.add_argument("--classes", type=int, default=7188)  # the zh_latin charset with the special tokens
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--onnx", action="store_true", help="with --mode: time the exported graphs on onnxruntime")
    ap.add_argument("--mode", nargs="+", choices=["attention", "ctc", "joint"], default=None,
                    help="time these decoding modes (a model with the CTC branch) instead of cache vs recompute")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ctc = {"ctc_weight": 0.5} if args.mode else {}
    model = build_model(get_preset("line", img_w=max(args.width, 1600), **ctc), args.classes).eval()
    x = torch.randn(args.batch, 1, 32, args.width)
    widths = torch.full((args.batch,), args.width)
    with torch.inference_mode():
        table = (_onnx_table if args.onnx else _mode_table) if args.mode else _cache_table
        table(model, x, widths, args)


if __name__ == "__main__":
    main()
