"""Validation during training: greedy decoding of the validation set and the monitored score.

Each rank decodes its own slice; the metric counts are summed over ranks, so every rank sees the same score.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from masterocr.charset import Charset
from masterocr.metrics import Counts
from masterocr.train.distributed import DistInfo, all_reduce_sum


@torch.no_grad()
def validation_metrics(model: torch.nn.Module, loader: DataLoader, charset: Charset, dist: DistInfo,
             autocast: Callable[[], contextlib.AbstractContextManager]) -> dict:
    """Greedy-decode this rank's validation batches and all-reduce the metric counts; the model is left in
    training mode."""
    counts = Counts()
    model.eval()
    for batch in loader:
        if batch.images is None:
            continue
        with autocast():
            out = model.decode(batch.images.to(dist.device), widths=batch.widths)
        for row, gold in zip(out.tokens.tolist(), batch.labels):
            counts.add(charset.decode(row), gold)
    model.train()
    total = Counts(*[int(v) for v in all_reduce_sum([float(x) for x in counts.as_list()], dist)])
    return total.metrics()


@dataclass(frozen=True)
class Monitor:
    """The trainer's `monitor` option, e.g. "max word_acc": which metric decides the best model, and how."""

    mode: str  # "max", "min" or "off"
    key: str

    @classmethod
    def parse(cls, spec: str) -> Monitor:
        """"max KEY" / "min KEY"; anything else ("off") monitors nothing."""
        mode, _, key = spec.partition(" ")
        return cls(mode if mode in ("min", "max") else "off", key)

    def worst(self) -> float:
        """The best score before any validation."""
        return -math.inf if self.mode == "max" else math.inf

    def watches(self, metrics: dict) -> bool:
        return self.mode != "off" and self.key in metrics

    def improves(self, value: float, best: float) -> bool:
        return value > best if self.mode == "max" else value < best
