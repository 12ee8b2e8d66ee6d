"""Optimizer and learning-rate schedule from the config's validated `optimizer` / `lr_scheduler` sections."""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

from masterocr.errors import UserError

log = logging.getLogger("masterocr.train")

OPTIMIZERS = {"Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW, "SGD": torch.optim.SGD}
DEFAULT_OPTIMIZER = ("Adam", {"lr": 0.0004})  # the original's


def _given(section: Any) -> tuple[str | None, dict]:
    """(type, the arguments the config wrote) of a validated section (or a plain dict of one)."""
    if section is None:
        return None, {}
    if isinstance(section, dict):
        return section.get("type"), dict(section.get("args") or {})
    args = section.args
    return section.type, dict(args) if isinstance(args, dict) else args.model_dump(exclude_unset=True)


def build_optimizer(model: torch.nn.Module, spec: Any) -> torch.optim.Optimizer:
    """The optimizer `spec` names (default: Adam, lr 0.0004), with the arguments the config wrote."""
    kind, args = _given(spec) if spec is not None else DEFAULT_OPTIMIZER
    kind = kind or "Adam"
    if kind not in OPTIMIZERS:
        raise UserError(f"optimizer type {kind!r} is not supported; use one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[kind](model.parameters(), **args)


def _say_longer(kind: str, total: int, max_steps: int | None) -> None:
    """One line when trainer.max_steps ends the run before a schedule whose length the config set: the rate
    stops mid-schedule (wanted for a run trained in chunks and resumed, a surprise otherwise)."""
    if max_steps and total > max_steps:
        log.warning("lr_scheduler %s: total_steps %d is longer than trainer.max_steps %d: the run stops "
                    "mid-schedule; drop total_steps to have the schedule follow max_steps", kind, total, max_steps)


def build_scheduler(
    optimizer: torch.optim.Optimizer, spec: Any, total_steps: int, max_steps: int | None = None
) -> tuple[torch.optim.lr_scheduler.LRScheduler | None, bool]:
    """Returns (scheduler, steps_per_batch). StepLR/MultiStepLR advance per epoch like the original;
    `WarmupCosine` (ours: linear warm-up then cosine decay to `min_ratio`) and OneCycleLR advance per step.
    A per-step schedule follows the run's `total_steps` (trainer.max_steps when set) unless it sets its own
    length; a set length longer than `max_steps` is kept (runs trained in chunks rely on it) and said in one line."""
    kind, args = _given(spec)
    if kind in (None, "", "null", "None"):
        return None, False
    if kind == "StepLR":
        return torch.optim.lr_scheduler.StepLR(optimizer, **args), False
    if kind == "MultiStepLR":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, **args), False
    if kind == "OneCycleLR":
        if "epochs" not in args:
            args.setdefault("total_steps", max(1, total_steps))
            _say_longer(kind, args["total_steps"], max_steps)
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, **args), True
    if kind == "WarmupCosine":
        total, warmup = int(args.get("total_steps") or total_steps), int(args.get("warmup_steps", 0))
        _say_longer(kind, total, max_steps)
        floor = float(args.get("min_ratio", 0.01))

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            t = min(1.0, (step - warmup) / max(1, total - warmup))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor), True
    raise UserError(f"lr_scheduler type {kind!r} is not supported; use StepLR, MultiStepLR, OneCycleLR, WarmupCosine")
