"""A model from a file: a training checkpoint (.pth) or shipped weights (.safetensors), with its charset."""

from __future__ import annotations

from pathlib import Path

import torch

from masterocr.assets import default_weights_path, model_file
from masterocr.charset import Charset
from masterocr.errors import UserError
from masterocr.formats.checkpoint import load_checkpoint
from masterocr.formats.weights import read_header
from masterocr.model import MASTER, MasterConfig
from masterocr.model.config import check_num_classes
from masterocr.model.decoder import fuse_separate_projections

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


def expected_shapes(cfg: MasterConfig, num_classes: int) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in the state dict of MASTER(cfg, num_classes), built on the meta device:
    no memory is allocated, whatever sizes the config asks for."""
    with torch.device("meta"):
        model = MASTER(cfg, num_classes)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_tensors(cfg: MasterConfig, num_classes: int, shapes: dict[str, tuple[int, ...]], path: str) -> None:
    """UserError naming the first tensor of the file (name -> shape, wrapper prefixes off) that the model its
    config describes lacks, has in another shape, or needs and the file does not carry."""
    fix = "use a checkpoint written by masterocr, whose model_config describes its weights"
    bad = f"{path}: weights do not match its model config:"
    have = fuse_separate_projections({k: torch.empty(s, device="meta") for k, s in shapes.items()})
    want = expected_shapes(cfg, num_classes)
    for name, shape in want.items():
        if name not in have:
            raise UserError(f"{bad} tensor {name} (shape {list(shape)}) that its model config needs is missing; {fix}")
        if tuple(have[name].shape) != shape:
            raise UserError(f"{bad} tensor {name} has shape {list(have[name].shape)}, its model config needs "
                            f"{list(shape)}; {fix}")
    extra = [k for k in have if k not in want]
    if extra:
        raise UserError(f"{bad} tensor {extra[0]} (shape {list(have[extra[0]].shape)}) is not part of the model "
                        f"its config describes; {fix}")


def model_spec(ckpt: dict) -> tuple[MasterConfig, Charset]:
    """The config and charset of a checkpoint's metadata; a UserError naming the file when they cannot
    describe a model (wrong types, sizes over the caps, too many classes)."""
    if "model_config" not in ckpt:
        raise UserError(f"{ckpt['_path']} carries no model_config; it was not written by masterocr")
    try:
        cfg = MasterConfig.from_dict(ckpt["model_config"])
        charset = charset_of(ckpt)
        check_num_classes(len(charset))
    except UserError as exc:  # a charset past the limits: its own message, with the file
        raise UserError(f"{ckpt['_path']}: {exc}") from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # hand-edited or foreign metadata
        raise UserError(
            f"{ckpt['_path']}: its model_config/charset cannot build a model ({type(exc).__name__}: {exc}); "
            "use a checkpoint written by masterocr"
        ) from exc
    return cfg, charset


def load_model(path: str | Path | None = None) -> tuple[MASTER, Charset, Path]:
    """Model, charset and the file read, from a checkpoint (.pth), weights (.safetensors) or a shipped model's
    name (`medium`, `small`, `line`); None = the default model (`assets.default_weights_path`). The config is
    checked against the tensors the file carries (names and shapes, on the meta device; for safetensors from
    the header, before any tensor is read) before the module is built."""
    path = model_file(path) if path is not None else default_weights_path()
    if Path(path).suffix == ".safetensors" and not Path(path).is_dir():
        head = read_header(path)
        cfg, charset = model_spec(head)
        check_tensors(cfg, len(charset), head["_shapes"], head["_path"])
    ckpt = load_checkpoint(path)
    cfg, charset = model_spec(ckpt)
    state = strip_prefixes(ckpt["model_state_dict"])
    check_tensors(cfg, len(charset), {k: tuple(v.shape) for k, v in state.items()}, ckpt["_path"])
    model = MASTER(cfg, len(charset))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise UserError(f"{ckpt['_path']}: weights do not match its model config ({exc})") from exc
    return model, charset, Path(ckpt["_path"])

