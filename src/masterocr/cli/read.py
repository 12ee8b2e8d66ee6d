"""`masterocr predict`, `eval` and `test`: read images, score predictions, evaluate on LMDB sets."""

from __future__ import annotations

import json
import sys

from masterocr.cli.options import (
    add_runtime_options,
    check_in_folder,
    check_positive,
    positive_int,
    say_backend,
)
from masterocr.errors import UserError


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
    p.add_argument("--batch-size", "--batch_size", dest="batch_size", type=positive_int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--gpu", type=int, default=None, help="the original's GPU index (same as --device cuda:N)")
    p.add_argument("--width", type=int, default=None, help="checked against the model's input width")
    p.add_argument("--height", type=int, default=None, help="checked against the model's input height")
    p.add_argument("--window", type=positive_int, default=None,
                   help="line models: read lines wider than this many pixels (at the model's height) in "
                        "overlapping windows and merge the texts (default: off; wider than the model's width "
                        "is refused)")
    add_runtime_options(p)
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    from masterocr.data.folders import check_predict_folders, terminal_safe
    from masterocr.runtime.select import load_recognizer

    check_predict_folders(args.img_folder, args.output_folder)  # before the model loads
    device = f"cuda:{args.gpu}" if args.gpu is not None and args.gpu >= 0 else args.device
    rec = load_recognizer(args.checkpoint, device, args.backend, args.int8, args.dtype, args.threads, args.model,
                          decode=args.decode, window=args.window)
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
                          args.model, decode=args.decode)
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
