"""Argument types and checks the subcommands share, and the runtime options (backend, model, threads)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from masterocr.assets import SHIPPED_MODELS
from masterocr.errors import UserError
from masterocr.model.config import DECODE_MODES
from masterocr.train.config import parse_bool


def bool_arg(value: str) -> bool:
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


def positive_int(value: str) -> int:
    """argparse type of counts that must be at least 1 (batch sizes)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
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
                   help="CPU threads for inference (default: every core); with --backend onnx, batches under 32 "
                        "run the decoder steps on one thread whatever this says (faster)")


def say_backend(asked: str, rec) -> None:
    """On stderr, when "auto" chose the ONNX graphs: a user comparing readings with the PyTorch model knows why."""
    if asked == "auto" and rec.backend != "torch":
        print(f"backend auto: the shipped int8 ONNX graphs ({rec.weights_path}); --backend torch for the PyTorch model",
              file=sys.stderr)
