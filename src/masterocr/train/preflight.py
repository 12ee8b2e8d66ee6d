"""Checks of a training run before anything is built: the files it names, its run folder and its model.

`check_run` is cheap: dataset paths are checked for being the kind their dataset type reads (a label file, a
folder, an LMDB folder holding data.mdb), save_dir for being a writable folder, the resume checkpoint for being
a regular file, and the model the config implies is built on torch's "meta" device (shapes, no memory) and run
once on a meta batch, so a size that does not fit fails here in one line instead of after the data is loaded;
a model whose weights, gradients and optimizer state exceed every memory of the machine is refused too.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

import torch

from masterocr.data import build_dataset
from masterocr.errors import UserError
from masterocr.model import build_model
from masterocr.train.config import RunSettings
from masterocr.train.schema_errors import one_line, show
from masterocr.train.setup import dataset_kwargs
from masterocr.train.vocab import warn_outside_vocabulary

log = logging.getLogger("masterocr.train")

# (argument, kind) of the paths each dataset type reads; kind: "file", "dir" or "lmdb"
_PATHS = {
    "TextDataset": (("txt_file", "file"), ("img_root", "dir")),
    "JsonlDataset": (("jsonl_file", "file"), ("img_root", "dir")),
    "JSONDataset": (("txt_file", "file"), ("jsonl_file", "file"), ("img_root", "dir")),
    "LmdbDataset": (("root", "lmdb"), ("lmdb_dir_root", "lmdb")),
    "hierarchy_dataset": (("lmdb_dir_root", "dir"),),
}
_WHAT = {"file": "a label file", "dir": "a folder", "lmdb": "an LMDB folder (holding data.mdb)"}


def _kind_error(path: Path, kind: str) -> str | None:
    """Why `path` is not of `kind`, or None."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "does not exist"
    except (OSError, ValueError) as exc:
        return f"cannot be read ({getattr(exc, 'strerror', None) or exc})"
    if kind == "file" and not stat.S_ISREG(mode):
        return "is not a regular file"
    if kind in ("dir", "lmdb") and not stat.S_ISDIR(mode):
        return "is not a folder"
    if kind == "lmdb" and not (path / "data.mdb").is_file():
        return "holds no data.mdb"
    return None


def check_dataset_paths(section: dict[str, Any] | None, where: str) -> None:
    """UserError naming `where.args.KEY` when a path of the dataset section is missing or the wrong kind."""
    if not section:
        return
    kind = section.get("type")
    args = section.get("args") or {}
    for key, want in _PATHS.get(kind, ()):
        if args.get(key) is None:
            continue
        why = _kind_error(Path(args[key]), want)
        if why:
            raise UserError(f"{where}.args.{key} = {show(args[key])} {why}: {kind} needs {_WHAT[want]} there")
    if kind in ("SynthDataset", "SynthLineDataset"):
        dirs = args.get("font_dirs")
        for d in [dirs] if isinstance(dirs, str) else dirs or ():
            if not Path(d).exists():
                raise UserError(f"{where}.args.font_dirs: {show(d)} does not exist; give font folders or files")


def check_save_dir(save_dir: str) -> None:
    """UserError unless `save_dir` is a folder (or can be made one) this process can write in."""
    path = Path(save_dir).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise UserError(f"trainer.save_dir = {show(save_dir)}: {existing} is a file; give a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"trainer.save_dir = {show(save_dir)}: {existing} is not writable; give a folder you can write")


def check_checkpoint(path: str | Path, flag: str = "-r") -> None:
    """UserError unless `path` is a regular file, or a run folder holding checkpoint-latest.pth (not opened)."""
    p = Path(path)
    if p.is_dir():
        p = p / "checkpoint-latest.pth"
    why = _kind_error(p, "file")
    if why:
        raise UserError(f"{flag} {path}: {p} {why}; pass a checkpoint .pth file or a run folder holding one")


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def check_model(settings: RunSettings) -> int:
    """Build the model on the meta device and run a meta batch through it; returns its parameter count."""
    cfg = settings.cfg
    try:
        with torch.device("meta"):
            model = build_model(cfg, settings.charset)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise UserError(f"model_arch: the model this config describes cannot be built: {_reason(exc)}") from exc
    params = sum(p.numel() for p in model.parameters())
    try:
        with torch.device("meta"):
            images = torch.zeros(1, cfg.in_channels, cfg.img_h, cfg.img_w)
            targets = torch.zeros(1, cfg.max_len + 2, dtype=torch.long)
            logits = model.train()(images, targets)
    except NotImplementedError:  # an operator without a meta kernel says nothing about the config
        log.debug("model check: the meta forward is not supported by this torch; shapes not checked")
        return params
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise UserError(f"model_arch: a {cfg.img_h}x{cfg.img_w} image does not fit the model: {_reason(exc)}") from exc
    if logits.shape[-1] != len(settings.charset):
        raise UserError(f"model_arch: the model has {logits.shape[-1]} outputs for {len(settings.charset)} classes")
    return params


_BYTES_PER_PARAM = 16  # fp32 weights, gradients and Adam's two moments


def memory_limit() -> int:
    """Bytes of the largest memory a run could use here: the machine's RAM or its largest GPU's memory."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    gpus = [torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())] \
        if torch.cuda.is_available() else []
    return max([ram, *gpus])


def check_memory(params: int) -> None:
    """UserError when the weights, gradients and optimizer state alone exceed any memory of this machine."""
    need, have = params * _BYTES_PER_PARAM, memory_limit()
    if need > have:
        raise UserError(f"model_arch: the model has {params / 1e6:.0f}M parameters: weights, gradients and "
                        f"optimizer state need {need / 2**30:.1f} GiB, more than this machine's "
                        f"{have / 2**30:.1f} GiB; make model_size, widths or feed_forward_size smaller")


def check_run(settings: RunSettings, source: str, resume: str | Path | None = None,
              finetune: str | Path | None = None) -> int:
    """Every check above (datasets, save_dir, checkpoint, model); returns the model's parameter count.

    Errors about the config are prefixed with `source` (the config's path), as the schema's are."""
    for path, flag in ((resume, "-r"), (finetune, "-r (--finetune)")):
        if path:
            check_checkpoint(path, flag)
    try:
        return _check_config(settings)
    except UserError as exc:
        raise UserError(f"{one_line(source)}: {exc}") from None


def _check_config(settings: RunSettings) -> int:
    check_dataset_paths(settings.train_dataset, "train_dataset")
    if settings.trainer.do_validation:
        check_dataset_paths(settings.val_dataset, "val_dataset")
    check_save_dir(settings.trainer.save_dir)
    params = check_model(settings)
    check_memory(params)
    return params


def dataset_sizes(settings: RunSettings, source: str) -> str:
    """Build the datasets (labels read and checked, no image decoded) and say how many samples each keeps;
    warns about labels outside the vocabulary as training would. Errors are prefixed with `source`."""
    parts = []
    for where, section in (("train_dataset", settings.train_dataset), ("val_dataset", settings.val_dataset)):
        if not section or (where == "val_dataset" and not settings.trainer.do_validation):
            continue
        try:
            dataset = build_dataset(section, training=where == "train_dataset", augment=None,
                                    **dataset_kwargs(settings))
        except UserError as exc:
            raise UserError(f"{one_line(source)}: {where}: {exc}") from None
        if where == "train_dataset":
            warn_outside_vocabulary(dataset, settings.charset)
        skipped = sum(getattr(dataset, "skipped", {}).values())
        parts.append(f"{where} {len(dataset)} samples" + (f" ({skipped} skipped)" if skipped else ""))
    return ", ".join(parts)
