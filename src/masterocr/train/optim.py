"""Optimizer and learning-rate schedule from the config's `optimizer` / `lr_scheduler` sections."""

from __future__ import annotations

import math

import torch

from masterocr.errors import UserError

OPTIMIZERS = {"Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW, "SGD": torch.optim.SGD}


def build_optimizer(model: torch.nn.Module, spec: dict) -> torch.optim.Optimizer:
    kind = spec.get("type") or "Adam"
    if kind not in OPTIMIZERS:
        raise UserError(f"optimizer type {kind!r} is not supported; use one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[kind](model.parameters(), **(spec.get("args") or {}))


def build_scheduler(
    optimizer: torch.optim.Optimizer, spec: dict | None, total_steps: int
) -> tuple[torch.optim.lr_scheduler.LRScheduler | None, bool]:
    """Returns (scheduler, steps_per_batch). StepLR/MultiStepLR advance per epoch like the original;
    `WarmupCosine` (ours: linear warm-up then cosine decay to `min_ratio`) and OneCycleLR advance per step."""
    spec = spec or {}
    kind = spec.get("type")
    args = dict(spec.get("args") or {})
    if kind in (None, "", "null", "None"):
        return None, False
    if kind == "StepLR":
        return torch.optim.lr_scheduler.StepLR(optimizer, **args), False
    if kind == "MultiStepLR":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, **args), False
    if kind == "OneCycleLR":
        args.setdefault("total_steps", max(1, total_steps))
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, **args), True
    if kind == "WarmupCosine":
        warmup = int(args.get("warmup_steps", 0))
        total = int(args.get("total_steps") or total_steps)
        floor = float(args.get("min_ratio", 0.01))

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            t = min(1.0, (step - warmup) / max(1, total - warmup))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor), True
    raise UserError(f"lr_scheduler type {kind!r} is not supported; use StepLR, MultiStepLR, OneCycleLR, WarmupCosine")
