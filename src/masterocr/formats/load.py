"""A model from a file: a training checkpoint (.pth) or shipped weights (.safetensors), with its charset."""

from __future__ import annotations

from pathlib import Path

import torch

from masterocr.assets import default_weights_path
from masterocr.charset import Charset
from masterocr.errors import UserError
from masterocr.formats.checkpoint import load_checkpoint
from masterocr.model import MASTER, MasterConfig

# what wrappers put in front of every key: DistributedDataParallel ("module.") and torch.compile ("_orig_mod.")
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def strip_prefixes(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy of a state dict with the DDP and torch.compile wrapper prefixes taken off its keys."""
    out = {}
    for key, value in state_dict.items():
        for prefix in WRAPPER_PREFIXES:
            key = key.removeprefix(prefix)
        out[key] = value
    return out


def charset_of(meta: dict) -> Charset:
    """The charset recorded in a checkpoint's or an export's metadata ({"keys", "case_sensitive"}); the default
    charset when none is recorded."""
    cs = meta.get("charset") or {}
    return Charset(cs["keys"], case_sensitive=cs.get("case_sensitive", True)) if cs else Charset.default()


def load_model(path: str | Path | None = None) -> tuple[MASTER, Charset, Path]:
    """Model, charset and the file read, from a checkpoint (.pth) or weights (.safetensors); None = the default
    model (`assets.default_weights_path`)."""
    ckpt = load_checkpoint(path if path is not None else default_weights_path())
    if "model_config" not in ckpt:
        raise UserError(f"{ckpt['_path']} carries no model_config; it was not written by masterocr")
    try:
        cfg = MasterConfig.from_dict(ckpt["model_config"])
        charset = charset_of(ckpt)
        model = MASTER(cfg, len(charset))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # hand-edited or foreign metadata
        raise UserError(
            f"{ckpt['_path']}: its model_config/charset cannot build a model ({type(exc).__name__}: {exc}); "
            "use a checkpoint written by masterocr"
        ) from exc
    try:
        model.load_state_dict(strip_prefixes(ckpt["model_state_dict"]))
    except RuntimeError as exc:
        raise UserError(f"{ckpt['_path']}: weights do not match its model config ({exc})") from exc
    return model, charset, Path(ckpt["_path"])
