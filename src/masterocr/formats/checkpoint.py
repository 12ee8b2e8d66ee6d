"""Checkpoints (.pth): atomic writes and safe loads (weights_only, never arbitrary unpickling)."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from masterocr.assets import model_file
from masterocr.errors import UserError, require_regular_file
from masterocr.formats.weights import load_weights

REQUIRED_KEYS = ("model_state_dict",)


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename over `path`.

    A crash or kill -9 at any moment leaves either the old file or the new one, never a torn file; a full
    disk raises (OSError) and the old checkpoint stays.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def check_state_dict(state: object, path: Path) -> None:
    """UserError unless `state` is a dict of str -> tensor (what a model's state_dict is)."""
    if not isinstance(state, dict):
        raise UserError(f"checkpoint {path}: model_state_dict is {type(state).__name__}, not a dict of tensors; "
                        "pass a checkpoint written by masterocr")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise UserError(f"checkpoint {path}: model_state_dict entry {str(key)[:80]!r} is "
                            f"{type(value).__name__}, not a tensor; pass a checkpoint written by masterocr")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a training checkpoint with `weights_only=True`: tensors and plain containers only.

    A file that carries pickled objects (which could run code) is refused with a message saying so. A shipped
    model's name (`medium`, `line`; assets.model_file) reads its shipped weights.
    """
    path = model_file(path)
    if path.is_dir():
        candidate = path / "checkpoint-latest.pth"
        if not candidate.exists():
            raise UserError(f"{path} is a folder without checkpoint-latest.pth; pass a .pth file")
        path = candidate
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist; pass the path of a .pth file")
    require_regular_file(path, "checkpoint", "pass a .pth or .safetensors file")
    if path.suffix == ".safetensors":
        return load_weights(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's first line is the same for every failure (and advises weights_only=False): find the reason
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        forbidden = next((ln for ln in lines if "GLOBAL" in ln), None)
        if forbidden is None:  # not a forbidden object: random or damaged bytes ("Unsupported operand 188")
            boiler = ("Weights only", "Please file", "Check the documentation")
            reason = next((ln for ln in lines if not ln.startswith(boiler)), "bad pickle data")
            raise UserError(
                f"checkpoint {path} is unreadable or corrupt (not a torch checkpoint: {reason[:200]}); "
                "pass a .pth written by masterocr or a .safetensors weights file"
            ) from exc
        raise UserError(
            f"refusing to load {path}: it holds pickled Python objects that could run code "
            f"(torch.load weights_only=True rejected it: {forbidden[:200]}). "
            "Load only checkpoints you trust, re-saved as plain tensors/dicts, or use safetensors weights."
        ) from exc
    except Exception as exc:  # garbage bytes make the unpickler raise KeyError, IndexError, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # EOFError() has no message
        raise UserError(
            f"checkpoint {path} is unreadable or truncated ({first[:200]}); pass a complete .pth written by masterocr"
        ) from exc
    if not isinstance(ckpt, dict):
        raise UserError(f"checkpoint {path} is not a MASTER checkpoint (expected a dict)")
    if "model_state_dict" not in ckpt:
        if all(isinstance(v, torch.Tensor) for v in ckpt.values()):  # a bare state_dict
            ckpt = {"model_state_dict": ckpt}
        else:
            raise UserError(f"checkpoint {path} has no model_state_dict; is it a MASTER checkpoint?")
    check_state_dict(ckpt["model_state_dict"], path)
    ckpt["_path"] = str(path)
    return ckpt
