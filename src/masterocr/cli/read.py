"""`masterocr predict`, `eval` and `test`: read images, score predictions, evaluate on LMDB sets."""

from __future__ import annotations

import json
import sys

from masterocr.cli.options import (
    add_runtime_options,
    check_in_folder,
    check_out_folder,
    check_positive,
    positive_int,
    say_backend,
)
from masterocr.errors import UserError
from masterocr.text import NORMALIZATION


def add_predict(sub) -> None:
    p = sub.add_parser(
        "predict", help="read image files, folders or globs; print text (or --json), optionally predict_result.json",
        description="Read every image named: files, folders (their images; with --recursive their subfolders' "
                    "too) and glob patterns (quote them; ** spans folders). An image from a folder is named by "
                    "its path relative to that folder, so label files with folders match it in `masterocr eval`. "
                    "Prints one line per image (tab-separated, or JSON with --json). With --output-folder it also "
                    "writes OUT/predict_result.json atomically; an older predict_result.json there is removed "
                    "before inference starts (said on stderr), so a run that fails leaves no stale result. A "
                    "file name "
                    "that is not valid UTF-8 is written with its bad bytes as \\xFF escapes and "
                    "\"name_escaped\": true (docs/predict.md).")
    p.add_argument("inputs", nargs="*", metavar="IMAGE", help="image files, folders or glob patterns")
    p.add_argument("--img-folder", "--img_folder", dest="img_folder", help="a folder of images (the original's "
                   "spelling; same as giving the folder as IMAGE)")
    p.add_argument("--recursive", "-R", action="store_true", help="read the subfolders of the folders given")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per image: filename, text, score, char_scores, error")
    p.add_argument("--output-folder", "--output_folder", dest="output_folder", default=None,
                   help="also write predict_result.json here (created if missing; an older result there is "
                        "replaced, and stderr says so); default: print only")
    p.add_argument("--checkpoint", help="checkpoint .pth, weights .safetensors, an exported ONNX folder (with "
                   "--backend onnx) or a shipped model's name: medium, small, line (default: the shipped model)")
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
    from masterocr.data.folders import check_predict_folders, terminal_safe, write_json_atomic
    from masterocr.devices import parse_device
    from masterocr.runtime.files import gather, predict_entries, prepare_output
    from masterocr.runtime.select import load_recognizer

    inputs = [*args.inputs, *([args.img_folder] if args.img_folder else [])]
    if not inputs:
        raise UserError("name the images to read: files, folders or glob patterns (or --img-folder DIR)")
    if args.img_folder is not None:
        check_predict_folders(args.img_folder, args.output_folder or ".")
    if args.output_folder is not None:
        check_out_folder("--output-folder", args.output_folder)
    device = f"cuda:{args.gpu}" if args.gpu is not None and args.gpu >= 0 else args.device
    parse_device(device)  # an absent device is one line before any folder is scanned
    gathered = gather(inputs, args.recursive)  # before the model loads
    rec = load_recognizer(args.checkpoint, device, args.backend, args.int8, args.dtype, args.threads, args.model,
                          decode=args.decode, window=args.window)
    say_backend(args.backend, rec)
    for flag, want, have in (("--width", args.width, rec.cfg.img_w), ("--height", args.height, rec.cfg.img_h)):
        if want is not None and want != have:
            raise UserError(f"{flag} {want} differs from the model's input size {have}; drop it or use the same")
    result = prepare_output(args.output_folder) if args.output_folder is not None else None
    entries = predict_entries(rec, gathered, args.batch_size)
    if result is not None:
        write_json_atomic(result, entries)
    ok = sum(e["text"] is not None for e in entries)
    for e in entries:  # names and texts escaped: a file name can hold terminal escape sequences
        if args.json:
            print(json.dumps({k: e[k] for k in ("filename", "text", "score", "char_scores", "error")},
                             ensure_ascii=True))
        elif e["text"] is None:
            print(f"{terminal_safe(e['filename'])}\tERROR\t{terminal_safe(e['error'])}")
        else:
            print(f"{terminal_safe(e['filename'])}\t{terminal_safe(e['text'])}\t{e['score']:.4f}")
    where = f"wrote {terminal_safe(str(result))} " if result is not None else ""
    print(f"{where}({ok} read, {len(entries) - ok} unreadable)", file=sys.stderr)
    return 0 if ok else 1


FOLDED = f"scores compare {NORMALIZATION}-folded labels and predictions, as training does (masterocr.text)"


def add_eval(sub) -> None:
    p = sub.add_parser(
        "eval", help="score predict_result.json against a label file",
        description="Score predict_result.json against a label file, matched by path: a label images/a.png "
                    "finds the prediction a.png (predict run on images/) or images/a.png (predict run on the "
                    "folder above, --recursive). Labels left unmatched are counted on stderr, by reason; with "
                    "none matched the exit code is 1. A label that is not a "
                    "string, an empty label file, a prediction whose result is neither a string nor null, and a "
                    "file that is not a regular file are refused with the file, line or entry, and the reason "
                    "(docs/predict.md). Lines end at \\n, \\r\\n or \\r: U+2028, form feeds and the like stay in "
                    "labels. Labels and predictions are compared NFKC-folded, as training compares them.")
    p.add_argument("--predict-path", "--predict_path", dest="predict_path", required=True)
    p.add_argument("--label-path", "--label_path", dest="label_path", required=True,
                   help="JSON lines {ImageFile, Label} or txt name<sep>label")
    p.add_argument("--split", default=",", help="separator of a txt label file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args) -> int:
    from masterocr.data.evaluation import evaluate_files
    from masterocr.data.folders import terminal_safe
    from masterocr.metrics import format_table

    metrics = evaluate_files(args.predict_path, args.label_path, args.split)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(format_table([("all", metrics)], ["word_acc", "word_acc_ci", "word_acc_str", "edit_acc",
                                                "num_labels", "num_missing"]))
    print(FOLDED, file=sys.stderr)
    for why, group in metrics["unmatched"].items():
        print(f"eval: {group['count']} of {metrics['num_labels']} labels unscored: {why} (e.g. "
              f"{terminal_safe(group['examples'][0])})", file=sys.stderr)
    if metrics["num_matched"] == 0:
        seen = terminal_safe(metrics.get("prediction_example", "none"))
        print(f"masterocr eval: error: no label matched a prediction (predictions are named like {seen}); run "
              "predict on the folder the label paths start from (`masterocr predict DIR --recursive "
              "--output-folder OUT`)", file=sys.stderr)
        return 1
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
        print(FOLDED, file=sys.stderr)
        return 0
    print(FOLDED, file=sys.stderr)
    print("full charset (exact / case-insensitive / edit distance):")
    print(format_table(rows, ["word_acc", "word_acc_ci", "edit_acc", "num_labels"]))
    print("\nSTR benchmark protocol (case-insensitive, alphanumeric only):")
    print(format_table(rows, ["word_acc_str", "num_labels"]))
    return 0
