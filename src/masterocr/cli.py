"""`masterocr` command line: a thin layer over functions a user can call from Python."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from masterocr.assets import SHIPPED_MODELS
from masterocr.errors import UserError, require_regular_file
from masterocr.train.config import parse_bool

log = logging.getLogger("masterocr")


def _bool_arg(value: str) -> bool:
    """argparse type of the true/false options: the config's words (parse_bool), an empty value refused."""
    if not value.strip():
        raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
    try:
        return parse_bool(value)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def check_positive(**flags: int | None) -> None:
    """UserError naming the first flag (its_name=value, '_' for '-') whose value is set and below 1."""
    for name, value in flags.items():
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")


def check_out_folder(flag: str, path: str) -> None:
    """UserError when an output folder `path` is an existing file or lies under one (missing folders above it
    are created by the command)."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UserError(f"{flag} {out} is an existing file, not a folder; choose a folder path")
    above = next((p for p in out.absolute().parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise UserError(f"{flag} {out} lies under {above}, an existing file; choose a folder path")


def check_in_folder(flag: str, path: str | None) -> None:
    """UserError when an input folder `path` (if given) is missing or not a folder."""
    if path is not None and not Path(path).is_dir():
        raise UserError(f"{flag} {path} is not a folder; pass an existing folder")


# train ------------------------------------------------------------------------------------------------------------
def add_train(sub) -> None:
    p = sub.add_parser("train", help="train from a config file (one process, or DDP under torchrun)")
    p.add_argument("-c", "--config", required=True, help="JSON config (the original MASTER schema)")
    p.add_argument("-r", "--resume", help="checkpoint (.pth) or run folder to continue from")
    p.add_argument("--finetune", nargs="?", const=True, default=None, type=_bool_arg,
                   help="with -r: load its weights only, restart epochs and optimizer")
    p.add_argument("-d", "--device", help="cpu, cuda, cuda:N, or GPU ids like 0,1 (the local rank picks one)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", action="extend",
                   help="override config values, e.g. trainer.epochs=3 optimizer.args.lr=1e-4")
    p.add_argument("-dist", "--distributed", type=_bool_arg, default=None,
                   help="false: debug mode, one process even under a launcher")
    p.add_argument("--local_world_size", "--local-world-size", type=int, default=None)
    p.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--nproc", type=int, default=None,
                   help="launch N processes on this machine through torchrun's launcher")
    p.add_argument("--check", action="store_true",
                   help="validate the config (docs/config.schema.json), its dataset paths, save_dir, -r and the "
                        "model (built on the meta device), read the label files, print a summary and exit")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from masterocr.train.config import apply_overrides, load_config, run_settings
    from masterocr.train.preflight import check_run, dataset_sizes
    from masterocr.train.schema import validate_config

    if args.nproc and args.nproc > 1 and not args.check:
        from masterocr.train.launch import launch_local

        return launch_local(args.nproc, args.argv)
    config = apply_overrides(load_config(args.config), args.set)
    source = f"{args.config} with --set" if args.set else args.config
    validate_config(config, source, training=True, warn=bool(args.set))  # the file alone was checked on loading
    if args.local_world_size is not None:
        config["local_world_size"] = args.local_world_size
    finetune = args.finetune if args.finetune is not None else bool(config.get("finetune", False))
    if finetune and not args.resume:
        raise UserError("--finetune needs a checkpoint: add -r path/to/checkpoint.pth")
    settings = run_settings(config)
    params = check_run(settings, source, resume=None if finetune else args.resume,
                       finetune=args.resume if finetune else None)
    if args.check:
        sizes = dataset_sizes(settings, source)
        print(f"{args.config}: the config is valid: model {params / 1e6:.2f}M parameters "
              f"(d_model {settings.cfg.d_model}, {len(settings.charset)} classes); {sizes}")
        return 0
    from masterocr.train.loop import train

    summary = train(
        settings,
        resume=None if finetune else args.resume,
        finetune=args.resume if finetune else None,
        device=args.device,
        distributed=args.distributed,
    )
    print(json.dumps(summary))
    return 0


def _positive_int(value: str) -> int:
    """argparse type of counts that must be at least 1 (batch sizes)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


# predict ----------------------------------------------------------------------------------------------------------
def add_predict(sub) -> None:
    p = sub.add_parser(
        "predict", help="recognize every image in a folder -> predict_result.json",
        description="Recognize every image in --img-folder and write --output-folder/predict_result.json "
                    "atomically. An older predict_result.json there is removed before inference starts, so a "
                    "run that fails leaves no stale result for `masterocr eval`. A file name that is not valid "
                    "UTF-8 is written with its bad bytes as \\xFF escapes and \"name_escaped\": true "
                    "(docs/predict.md).")
    p.add_argument("--checkpoint", help="checkpoint .pth or weights .safetensors (default: the shipped model)")
    p.add_argument("--img-folder", "--img_folder", dest="img_folder", required=True)
    p.add_argument("--output-folder", "--output_folder", dest="output_folder", default=".",
                   help="folder of predict_result.json (created if missing; an older result there is removed "
                        "before inference starts)")
    p.add_argument("--batch-size", "--batch_size", dest="batch_size", type=_positive_int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--gpu", type=int, default=None, help="the original's GPU index (same as --device cuda:N)")
    p.add_argument("--width", type=int, default=None, help="checked against the model's input width")
    p.add_argument("--height", type=int, default=None, help="checked against the model's input height")
    add_runtime_options(p)
    p.set_defaults(func=cmd_predict)


def add_runtime_options(p, default_backend: str = "auto") -> None:
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default=default_backend,
                   help="onnx: --checkpoint is a folder written by `masterocr export` (default: the shipped "
                        "model's int8 graphs, weights/master_medium_int8); auto: those graphs when no --checkpoint "
                        "is given and onnxruntime is installed (CPU, fp32), else torch "
                        f"(default: {default_backend})")
    p.add_argument("--model", choices=list(SHIPPED_MODELS), default=None,
                   help="a shipped model by name instead of --checkpoint: word (the default, word crops) or line "
                        "(text lines, when this release ships it)")
    p.add_argument("--int8", action="store_true", help="torch backend on CPU: dynamic int8 decoder (see bench/)")
    p.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32", help="torch backend: bf16/fp16 on GPUs")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for inference (default: every core); with --backend onnx, batches under 32 "
                        "run the decoder steps on one thread whatever this says (faster)")


def say_backend(asked: str, rec) -> None:
    """On stderr, when "auto" chose the ONNX graphs: a user comparing readings with the PyTorch model knows why."""
    if asked == "auto" and rec.backend != "torch":
        print(f"backend auto: the shipped int8 ONNX graphs ({rec.weights_path}); --backend torch for the PyTorch model",
              file=sys.stderr)


def cmd_predict(args) -> int:
    from masterocr.data.folders import check_predict_folders, terminal_safe
    from masterocr.runtime.select import load_recognizer

    check_predict_folders(args.img_folder, args.output_folder)  # before the model loads
    device = f"cuda:{args.gpu}" if args.gpu is not None and args.gpu >= 0 else args.device
    rec = load_recognizer(args.checkpoint, device, args.backend, args.int8, args.dtype, args.threads, args.model)
    say_backend(args.backend, rec)
    for flag, want, have in (("--width", args.width, rec.cfg.img_w), ("--height", args.height, rec.cfg.img_h)):
        if want is not None and want != have:
            raise UserError(f"{flag} {want} differs from the model's input size {have}; drop it or use the same")
    path, entries = rec.predict_folder(args.img_folder, args.output_folder, args.batch_size)
    ok = sum(e["result"] is not None for e in entries)
    for e in entries:  # names and texts escaped: a file name can hold terminal escape sequences
        if e["result"] is None:
            print(f"{terminal_safe(e['filename'])}\tERROR\t{terminal_safe(e['error'])}")
        else:
            print(f"{terminal_safe(e['filename'])}\t{terminal_safe(e['result'])}\t{e['pred_score']:.4f}")
    print(f"wrote {terminal_safe(str(path))} ({ok} read, {len(entries) - ok} unreadable)", file=sys.stderr)
    return 0 if ok else 1


# eval / test ------------------------------------------------------------------------------------------------------
def add_eval(sub) -> None:
    p = sub.add_parser(
        "eval", help="score predict_result.json against a label file",
        description="Score predict_result.json against a label file, matched by file name. A label that is not a "
                    "string, an empty label file, a prediction whose result is neither a string nor null, and a "
                    "file that is not a regular file are refused with the file, line or entry, and the reason "
                    "(docs/predict.md). Lines end at \\n only: U+2028, form feeds and the like stay in labels.")
    p.add_argument("--predict-path", "--predict_path", dest="predict_path", required=True)
    p.add_argument("--label-path", "--label_path", dest="label_path", required=True,
                   help="JSON lines {ImageFile, Label} or txt name<sep>label")
    p.add_argument("--split", default=",", help="separator of a txt label file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args) -> int:
    from masterocr.data.evaluation import evaluate_files
    from masterocr.metrics import format_table

    metrics = evaluate_files(args.predict_path, args.label_path, args.split)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(format_table([("all", metrics)], ["word_acc", "word_acc_ci", "word_acc_str", "edit_acc",
                                                "num_labels", "num_missing"]))
    return 0


def add_test(sub) -> None:
    p = sub.add_parser("test", help="evaluate on every LMDB under a folder (standard benchmarks)")
    p.add_argument("--checkpoint", help="checkpoint or weights (default: the shipped model)")
    p.add_argument("--data-root", "--data_root", dest="data_root", required=True)
    p.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    add_runtime_options(p)
    p.set_defaults(func=cmd_test)


def cmd_test(args) -> int:
    from masterocr.metrics import format_table
    from masterocr.runtime.benchmark import evaluate_benchmarks
    from masterocr.runtime.select import load_recognizer

    check_positive(batch_size=args.batch_size, threads=args.threads)
    check_in_folder("--data-root", args.data_root)
    rec = load_recognizer(args.checkpoint, args.device, args.backend, args.int8, args.dtype, args.threads,
                          args.model)
    say_backend(args.backend, rec)
    rows = evaluate_benchmarks(rec, args.data_root, args.batch_size)
    if args.json:
        print(json.dumps(dict(rows)))
        return 0
    print("full charset (exact / case-insensitive / edit distance):")
    print(format_table(rows, ["word_acc", "word_acc_ci", "edit_acc", "num_labels"]))
    print("\nSTR benchmark protocol (case-insensitive, alphanumeric only):")
    print(format_table(rows, ["word_acc_str", "num_labels"]))
    return 0


# data tools -------------------------------------------------------------------------------------------------------
def add_synth(sub) -> None:
    p = sub.add_parser("synth", help="render synthetic word images (LMDB or folder)")
    p.add_argument("--out", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--fonts", nargs="+", default=None, help="font folders (default: the system's fonts)")
    p.add_argument("--charset", help="keys file (default: 95 printable ASCII)")
    p.add_argument("--height", type=int, default=32)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--format", choices=["lmdb", "folder"], default="lmdb")
    p.add_argument("--font-split", choices=["train", "heldout", "all"], default="train")
    p.add_argument("--lines", action="store_true",
                   help="text lines (Chinese, Latin, mixed; CJK fonts) into LMDB shards instead of words")
    p.add_argument("--shard-size", type=int, default=100000, help="--lines: lines per LMDB shard")
    p.add_argument("--max-width", type=int, default=None, help="--lines: widest line in px (default 50 x height)")
    p.set_defaults(func=cmd_synth)


def cmd_synth(args) -> int:
    from masterocr.charset import Charset
    from masterocr.data.synth import generate

    charset = Charset.from_file(args.charset) if args.charset else Charset.default()
    if args.lines:
        from masterocr.data.synth.linedataset import generate_lines

        if args.format != "lmdb" or args.width is not None:
            raise UserError("synth --lines writes LMDB shards of variable-width lines: drop --format/--width")
        if args.workers != 1:
            raise UserError("synth --lines renders in one process: run one command per --seed (and --out) instead")
        stats = generate_lines(args.out, args.count, charset=charset, shard_size=args.shard_size,
                               height=args.height, max_width=args.max_width, seed=args.seed,
                               font_split=args.font_split, font_dirs=args.fonts)
        print(json.dumps(stats, default=str, ensure_ascii=False))
        return 0
    stats = generate(args.out, args.count, fonts=args.fonts, charset=charset, height=args.height, width=args.width,
                     seed=args.seed, workers=args.workers, fmt=args.format, font_split=args.font_split)
    print(json.dumps(stats, default=str))
    return 0


def add_lmdb(sub) -> None:
    p = sub.add_parser("lmdb", help="write a clovaai-layout LMDB from a txt/jsonl label file")
    p.add_argument("--labels", required=True, help="txt (name<sep>label) or JSON lines {ImageFile, Label}")
    p.add_argument("--img-root", "--img_root", dest="img_root", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--split", default=",")
    p.set_defaults(func=cmd_lmdb)


def cmd_lmdb(args) -> int:
    from masterocr.data.lmdb import lmdb_from_labels

    require_regular_file(args.labels, "--labels", "pass a txt or jsonl label file")
    check_in_folder("--img-root", args.img_root)
    check_out_folder("--out", args.out)
    if not args.split:
        raise UserError("--split must not be empty; pass the separator of the txt label file, e.g. ','")
    written, skipped = lmdb_from_labels(args.labels, args.img_root, args.out, split=args.split)
    print(json.dumps({"written": written, "skipped": skipped, "out": args.out}))
    return 0 if written else 1


# export / serve ---------------------------------------------------------------------------------------------------
def add_export(sub) -> None:
    p = sub.add_parser("export", help="export a model for onnxruntime (encoder + cached decoder step)")
    p.add_argument("--checkpoint", help="checkpoint or weights (default: the shipped model)")
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--int8", action="store_true",
                   help="static int8 convolutions + dynamic int8 decoder matmuls (see bench/accuracy.py)")
    p.add_argument("--calib-images", help="--int8: a folder of crops from your domain (default: synthetic words)")
    p.add_argument("--calib-count", type=int, default=128, help="--int8: calibration images (default 128)")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    check_positive(calib_count=args.calib_count)
    check_out_folder("--out", args.out)
    if args.calib_images is not None and not args.int8:
        raise UserError("--calib-images calibrates the int8 export: add --int8 or drop it")
    check_in_folder("--calib-images", args.calib_images)
    if args.int8:
        from masterocr.export.quantize import export_onnx_int8

        out = export_onnx_int8(args.checkpoint, args.out, args.calib_count, args.calib_images)
    else:
        from masterocr.export.onnx import export_onnx

        out = export_onnx(args.checkpoint, args.out)
    print(json.dumps({"out": str(out), "int8": args.int8}))
    return 0


def add_serve(sub) -> None:
    p = sub.add_parser("serve", help="HTTP recognition service with a web page")
    p.add_argument("--checkpoint", help="checkpoint or weights (default: the shipped model)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: localhost only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-images", type=int, default=64, help="images per request (default 64)")
    p.add_argument("--max-pixels", type=int, default=40_000_000,
                   help="pixels per image, read from its header before decoding (default 40000000)")
    p.add_argument("--max-pixels-in-flight", type=int, default=80_000_000,
                   help="pixels decoded at once over all requests; beyond it requests wait, then get 503 "
                        "(default 80000000)")
    p.add_argument("--body-timeout-s", type=float, default=30.0,
                   help="seconds to receive a request body (10 s at most per chunk); slower clients get 408 "
                        "(default 30)")
    p.add_argument("--max-connections", type=int, default=128,
                   help="open connections; beyond them the server answers 503 (default 128)")
    add_runtime_options(p, default_backend="torch")  # the web page shows attention maps
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    from masterocr.serve.app import serve

    serve(checkpoint=args.checkpoint, host=args.host, port=args.port, max_batch=args.max_batch,
          max_wait_ms=args.max_wait_ms, device=args.device, int8=args.int8, dtype=args.dtype,
          backend=args.backend, threads=args.threads, model=args.model, max_images_per_request=args.max_images,
          max_pixels=args.max_pixels, max_pixels_in_flight=args.max_pixels_in_flight,
          body_timeout_s=args.body_timeout_s, max_connections=args.max_connections)
    return 0


# entry point ------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="masterocr", description="MASTER scene-text recognition")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (add_train, add_predict, add_eval, add_test, add_synth, add_lmdb, add_export, add_serve):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # `train --nproc` relaunches this same command line under torchrun
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return args.func(args)
    except UserError as exc:
        print(f"masterocr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"masterocr {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
