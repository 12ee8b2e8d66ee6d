"""`masterocr synth`, `lmdb`, `export` and `serve`: data tools, ONNX export and the HTTP service."""

from __future__ import annotations

import json
from pathlib import Path

from masterocr.cli.options import (
    add_runtime_options,
    check_in_folder,
    check_out_folder,
    check_path_text,
    check_positive,
)
from masterocr.errors import UserError, require_regular_file


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


def check_synth_args(args) -> None:
    """One line for a bad synth argument, before any font is read or image drawn."""
    check_positive(count=args.count, workers=args.workers, shard_size=args.shard_size, width=args.width,
                   max_width=args.max_width)
    if not 8 <= args.height <= 256:
        raise UserError(f"--height must be from 8 to 256 px, got {args.height}")
    if args.max_width is not None and args.max_width < args.height:
        raise UserError(f"--max-width {args.max_width} is narrower than --height {args.height}; a line needs room")
    check_out_folder("--out", args.out)
    check_path_text("--charset", args.charset)
    for font in args.fonts or []:
        check_path_text("--fonts", font)
        if not Path(font).exists():
            raise UserError(f"--fonts {font} does not exist; pass font folders or font files")
        if not Path(font).is_dir():  # a font file: regular (a FIFO or device would block or stream forever)
            require_regular_file(font, "--fonts", "pass font folders or font files")


def cmd_synth(args) -> int:
    from masterocr.charset import Charset
    from masterocr.data.synth import generate

    check_synth_args(args)
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
                   help="requests in flight; beyond them the server answers 503 (default 128); idle sockets "
                        "take no slot")
    p.add_argument("--header-timeout-s", type=float, default=5.0,
                   help="seconds a connection has to send its request headers, after it opens or after its last "
                        "response; then it is closed (default 5)")
    add_runtime_options(p, default_backend="torch")  # the web page shows attention maps
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    from masterocr.serve.app import serve

    serve(checkpoint=args.checkpoint, host=args.host, port=args.port, max_batch=args.max_batch,
          max_wait_ms=args.max_wait_ms, device=args.device, int8=args.int8, dtype=args.dtype,
          backend=args.backend, threads=args.threads, model=args.model, decode=args.decode,
          max_images_per_request=args.max_images,
          max_pixels=args.max_pixels, max_pixels_in_flight=args.max_pixels_in_flight,
          body_timeout_s=args.body_timeout_s, max_connections=args.max_connections,
          header_timeout_s=args.header_timeout_s)
    return 0
