"""Argument types and checks the subcommands share, and the runtime options (backend, model, threads)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from masterocr.assets import SHIPPED_MODELS
from masterocr.errors import UserError
from masterocr.limits import MAX_BATCH, MAX_SAMPLES, MAX_WORKERS
from masterocr.model.config import DECODE_MODES, INT_RANGES


def bool_arg(value: str) -> bool:
    """argparse type of the true/false options: the config's words (parse_bool), an empty value refused."""
    if not value.strip():
        raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
    from masterocr.train.config import parse_bool  # here: the CLI starts without the config machinery

    try:
        return parse_bool(value)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# the upper bound of each count option (its name as in check_positive) from masterocr.limits; threads are
# lowered to the CPUs instead (limits.threads), widths bounded as the model's img_w
UPPER = {"batch_size": MAX_BATCH, "workers": MAX_WORKERS, "count": MAX_SAMPLES, "shard_size": MAX_SAMPLES,
         "calib_count": MAX_SAMPLES, "width": INT_RANGES["img_w"][1], "max_width": INT_RANGES["img_w"][1]}


def check_positive(**flags: int | None) -> None:
    """UserError naming the first flag (its_name=value, '_' for '-') whose value is set and below 1, or above
    its bound in UPPER."""
    for name, value in flags.items():
        flag = f"--{name.replace('_', '-')}"
        if value is not None and value < 1:
            raise UserError(f"{flag} must be a positive integer, got {value}")
        if value is not None and name in UPPER and value > UPPER[name]:
            raise UserError(f"{flag} must be at most {UPPER[name]}, got {value}")


def check_path_text(flag: str, path: str | None) -> None:
    """UserError when a path option is given empty (it would silently mean the current folder)."""
    if path is not None and not path.strip():
        raise UserError(f"{flag} is empty; pass a path")


def check_out_folder(flag: str, path: str) -> None:
    """UserError when an output folder `path` is empty, a dangling symlink, an existing file or lies under one
    (missing folders above it are created by the command)."""
    check_path_text(flag, path)
    out = Path(path)
    if out.is_symlink() and not out.exists():
        raise UserError(f"{flag} {out} is a symlink to nothing; choose a folder path")
    if out.exists() and not out.is_dir():
        raise UserError(f"{flag} {out} is an existing file, not a folder; choose a folder path")
    above = next((p for p in out.absolute().parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise UserError(f"{flag} {out} lies under {above}, an existing file; choose a folder path")


def check_in_folder(flag: str, path: str | None) -> None:
    """UserError when an input folder `path` (if given) is empty, missing or not a folder."""
    check_path_text(flag, path)
    if path is not None and not Path(path).is_dir():
        raise UserError(f"{flag} {path} is not a folder; pass an existing folder")


def positive_int(value: str) -> int:
    """argparse type of batch sizes: a whole number from 1 to MAX_BATCH."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    if number > MAX_BATCH:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_BATCH}, got {number}")
    return number


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
    p.add_argument("--decode", choices=list(DECODE_MODES), default=None,
                   help="decoding mode: attention (the decoder), ctc (the CTC branch in one pass: fastest) or joint "
                        "(attention kept to what the CTC branch reads); ctc and joint need a model with the CTC "
                        "branch (default: the model's own, its config's decode)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for inference (default and most: the CPUs this process may use); with "
                        "--backend onnx, batches under 32 "
                        "run the decoder steps on one thread whatever this says (faster)")


def say_backend(asked: str, rec) -> None:
    """On stderr, when "auto" chose the ONNX graphs: a user comparing readings with the PyTorch model knows why."""
    if asked == "auto" and rec.backend != "torch":
        print(f"backend auto: the shipped int8 ONNX graphs ({rec.weights_path}); --backend torch for the PyTorch model",
              file=sys.stderr)
