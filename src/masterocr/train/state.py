"""What a run carries across a restart: its progress, the RNG states, checkpoints, resume and finetune.

Everything a run needs to continue exactly (optimizer, scheduler, scaler, step, position in the epoch, RNG
states) goes into each checkpoint; resuming on another number of processes continues the epoch after the
samples already seen.
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from masterocr.errors import UserError
from masterocr.formats.checkpoint import load_checkpoint
from masterocr.formats.load import strip_prefixes
from masterocr.model.decoder import fuse_separate_projections
from masterocr.train.config import RunSettings, TrainSettings
from masterocr.train.distributed import DistInfo
from masterocr.train.setup import Optimization

log = logging.getLogger("masterocr.train")

LATEST = "checkpoint-latest.pth"
BEST = "model_best.pth"
# the parts of a checkpoint that only resuming needs: model_best.pth goes without them (predicting and finetuning
# read its weights, config and charset), a third of the size for AdamW; checkpoint-*.pth keep them all
RESUME_ONLY = ("optimizer", "lr_scheduler", "scaler", "rng")
# what the weights have been shown: every checkpoint and the shipped weights' metadata carry it, and finetuning
# goes on counting from it (the line model learns in chunks across sessions that start from shipped weights)
SHOWN = ("lines_seen", "chars_seen", "train_seconds", "char_views")


@dataclass
class TrainState:
    """The run's progress and bookkeeping, saved in every checkpoint."""

    epoch: int = 1  # 1-based
    step: int = 0  # optimizer steps done
    batch_in_epoch: int = 0  # micro-batches done in the current epoch (per rank)
    samples_in_epoch: int = 0  # samples of the current epoch consumed over all ranks
    monitor_best: float = math.inf
    not_improved: int = 0  # validations in a row without a better monitored score
    bad_samples: int = 0
    nonfinite_skipped: int = 0
    lines_seen: int = 0  # training samples and characters shown to the model over the whole run (this rank)
    chars_seen: int = 0
    train_seconds: float = 0.0  # wall-clock seconds in fit() over the whole run, resumes included
    char_views: dict = field(default_factory=dict)  # character -> times shown (the hanzi sampler reads it)


def rng_state() -> dict:
    """Python, NumPy and torch RNG states as plain containers (loadable with weights_only)."""
    np_state = np.random.get_state()
    state = {
        "python": json.dumps(random.getstate()),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype("int64")), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` saved."""
    py = json.loads(state["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype("uint32"), *n[2:]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_dict(state: TrainState, model: torch.nn.Module, optimization: Optimization, settings: RunSettings,
                    world_size: int) -> dict:
    """The checkpoint of the run as it stands: plain containers and tensors only."""
    return {
        "arch": "MASTER",
        "epoch": state.epoch,
        "step": state.step,
        "batch_in_epoch": state.batch_in_epoch,
        "samples_in_epoch": state.samples_in_epoch,
        "world_size": world_size,
        "model_state_dict": model.state_dict(),
        "optimizer": optimization.optimizer.state_dict(),
        "lr_scheduler": optimization.scheduler.state_dict() if optimization.scheduler else None,
        "scaler": optimization.scaler.state_dict(),
        "monitor_best": state.monitor_best,
        "not_improved": state.not_improved,
        "config": settings.raw_config,
        "model_config": settings.cfg.to_dict(),
        "charset": {"keys": settings.charset.keys, "case_sensitive": settings.charset.case_sensitive},
        "rng": rng_state(),
        "bad_samples": state.bad_samples,
        "nonfinite_skipped": state.nonfinite_skipped,
        "lines_seen": state.lines_seen,
        "chars_seen": state.chars_seen,
        "train_seconds": state.train_seconds,
        "char_views": dict(state.char_views),
    }


def load_weights(model: torch.nn.Module, ckpt: dict, strict: bool) -> None:
    """Strict: every tensor must fit (resume). Not strict: load those whose name and shape fit (finetune)."""
    weights = strip_prefixes(ckpt["model_state_dict"])
    if strict:
        try:
            model.load_state_dict(weights)
        except RuntimeError as exc:
            raise UserError(
                f"checkpoint {ckpt['_path']} does not fit this config's model ({str(exc).splitlines()[0]}); "
                "use the config it was trained with, or --finetune to load the matching weights only"
            ) from exc
        return
    weights = fuse_separate_projections(weights)  # separate q/k/v -> fused, before names and shapes are compared
    own = model.state_dict()
    fit = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(own) - set(fit))
    model.load_state_dict(fit, strict=False)
    if not fit:
        raise UserError(f"no weight of {ckpt['_path']} fits this model; check the preset/config")
    if skipped:
        log.warning("finetune: %d tensors kept their fresh init (shape or name differ): %s", len(skipped),
                    ", ".join(skipped[:6]) + (" ..." if len(skipped) > 6 else ""))


def weights_checkpoint(ckpt: dict) -> dict:
    """`ckpt` (a checkpoint_dict) without what only resuming needs (RESUME_ONLY): for model_best.pth."""
    return {key: value for key, value in ckpt.items() if key not in RESUME_ONLY}


def finetune_from(path: str | Path, model: torch.nn.Module, state: TrainState) -> None:
    """Weights only: epochs, optimizer and schedule start fresh (the original's --finetune true); the counters
    of what the weights were shown go on (SHOWN)."""
    ckpt = load_checkpoint(path)
    load_weights(model, ckpt, strict=False)
    restore_shown(ckpt, state, ckpt["_path"])
    log.info("finetuning from %s", ckpt["_path"])


def _check_resumable(ckpt: dict) -> None:
    if not isinstance(ckpt.get("optimizer"), dict):  # weights (.safetensors) or a bare state_dict
        raise UserError(
            f"{ckpt['_path']} holds weights only, no training state to resume; "
            f"use --finetune to start from these weights, or resume from {LATEST} (or a checkpoint-*.pth)"
        )
    if fuse_separate_projections(ckpt["model_state_dict"]).keys() != ckpt["model_state_dict"].keys():
        raise UserError(
            f"{ckpt['_path']} was written by masterocr 0.1.0, before the attention projections were fused: "
            "its weights load, its optimizer state does not fit; continue with --finetune on it (weights kept, "
            "optimizer and schedule fresh), or finish the run with masterocr 0.1.0"
        )


def _restore_progress(ckpt: dict, state: TrainState) -> None:
    state.epoch, state.step = int(ckpt.get("epoch", 1)), int(ckpt.get("step", 0))
    state.batch_in_epoch = int(ckpt.get("batch_in_epoch", 0))
    state.samples_in_epoch = int(ckpt.get("samples_in_epoch", 0))
    state.monitor_best = float(ckpt.get("monitor_best", state.monitor_best))
    state.not_improved = int(ckpt.get("not_improved", 0))
    state.bad_samples = int(ckpt.get("bad_samples", 0))
    state.nonfinite_skipped = int(ckpt.get("nonfinite_skipped", 0))
    restore_shown(ckpt, state, ckpt["_path"])


def shown(ckpt: dict) -> dict:
    """The SHOWN counters of a checkpoint or of shipped weights (their metadata), for shipping them on."""
    source = ckpt if "lines_seen" in ckpt else ckpt.get("metadata") or {}
    return {k: source[k] for k in SHOWN if k in source}


def restore_shown(source: dict, state: TrainState, path: str) -> None:
    """Set the state's SHOWN counters from a checkpoint's or a weights file's; a bad value is a UserError."""
    values = shown(source)
    try:
        state.lines_seen, state.chars_seen = int(values.get("lines_seen", 0)), int(values.get("chars_seen", 0))
        state.train_seconds = float(values.get("train_seconds", 0.0))
        state.char_views = {str(k): int(v) for k, v in dict(values.get("char_views") or {}).items()}
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path}: its counters of what the model was shown ({', '.join(SHOWN)}) are not numbers "
                        f"({exc}); finetune from weights written by masterocr") from exc


def resume_from(path: str | Path, *, model: torch.nn.Module, optimization: Optimization, state: TrainState,
                dist: DistInfo, batch_size: int, batches_per_epoch: int) -> Path:
    """Load the full training state of a checkpoint into the run; returns the checkpoint's folder (the run's)."""
    ckpt = load_checkpoint(path, map_location=dist.device)
    _check_resumable(ckpt)
    load_weights(model, ckpt, strict=True)
    optimization.optimizer.load_state_dict(ckpt["optimizer"])
    if optimization.scheduler and ckpt.get("lr_scheduler"):
        optimization.scheduler.load_state_dict(ckpt["lr_scheduler"])
    if ckpt.get("scaler"):
        optimization.scaler.load_state_dict(ckpt["scaler"])
    _restore_progress(ckpt, state)
    old_world = int(ckpt.get("world_size", 1))
    if old_world != dist.world_size:
        # the sampler drops the epoch's first samples_in_epoch samples and shards the rest over the new world;
        # batch_in_epoch is recounted in batches of the new world
        state.batch_in_epoch = state.samples_in_epoch // (batch_size * dist.world_size)
        log.warning(
            "resuming a %d-process checkpoint on %d process(es): the epoch goes on after the %d samples "
            "already seen (now batch %d of %d); the global batch is now %d x %d, the RNG states are not "
            "restored, so the run is not bit-identical to an uninterrupted %d-process run",
            old_world, dist.world_size, state.samples_in_epoch, state.batch_in_epoch,
            batches_per_epoch, batch_size, dist.world_size, old_world,
        )  # fmt: skip
    elif "rng" in ckpt:
        set_rng_state(ckpt["rng"])
    log.info("resumed %s at epoch %d, step %d", ckpt["_path"], state.epoch, state.step)
    return Path(ckpt["_path"]).parent


def auto_resume_dir(opts: TrainSettings) -> tuple[Path, Path | None]:
    """auto_resume's fixed run folder (no timestamp, so a restarted job finds its own checkpoint) and the
    checkpoint in it to continue from, if any."""
    run_dir = Path(opts.save_dir) / opts.name / opts.run_id
    latest = run_dir / LATEST
    if latest.exists():
        log.info("auto_resume: continuing from %s", latest)
        return run_dir, latest
    return run_dir, None


def new_run_dir(opts: TrainSettings) -> Path:
    """A fresh run folder, save_dir/name/run_id_MMDD_HHMMSS (the original's layout)."""
    stamp = datetime.now().strftime("%m%d_%H%M%S")
    return Path(opts.save_dir) / opts.name / f"{opts.run_id}_{stamp}"
