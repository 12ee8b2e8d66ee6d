"""A DistributedSampler that can start part-way through an epoch, for exact resume."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence

import torch
from torch.utils.data import Dataset, DistributedSampler

from masterocr.data.datasets import Batch


class ResumableSampler(DistributedSampler):
    """Shuffled per epoch from (seed, epoch), sharded over ranks in contiguous per-batch blocks.

    The epoch's order depends only on seed and epoch. Global batch g is `order[g*B*W : (g+1)*B*W]` and rank r
    takes its r-th block of B, so the union of the ranks' g-th batches is exactly the g-th batch of batch B*W in
    one process, and one process with batch B and W accumulation steps sees the same micro-batches in rank order
    (torch's DistributedSampler strides `rank::world` instead, which no single-process run can reproduce).

    `skip` counts samples of the whole epoch (all ranks) already consumed: they are dropped from the front of the
    order before sharding, so a run resumed mid-epoch, on the same or on a different number of processes, sees
    exactly the samples not yet seen. Works in one process too (num_replicas=1), where the order is the plain
    shuffled permutation.
    """

    def __init__(
        self, dataset: Dataset, num_replicas: int, rank: int, shuffle: bool, seed: int, drop_last: bool = False,
        batch_size: int = 1,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        self.batch_size = max(1, int(batch_size))
        self.skip = 0

    def set_position(self, epoch: int, skip: int) -> None:
        """Epoch number and the number of samples of this epoch (over all ranks) already consumed."""
        self.set_epoch(epoch)
        self.skip = max(0, int(skip))

    def _total(self, n: int) -> int:
        """Samples over all ranks for `n` remaining ones: padded (or, with drop_last, cut) to a multiple of W."""
        if self.drop_last:
            return (n // self.num_replicas) * self.num_replicas
        return math.ceil(n / self.num_replicas) * self.num_replicas

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        skip, self.skip = self.skip, 0  # only the first pass after a resume is shortened
        total = self._total(max(0, n - skip))
        order = order[skip:]
        if total > len(order):  # pad (wrapping round the epoch's order) so every rank gets as many samples
            pad = total - len(order)
            base = order or list(range(n))
            order += (base * math.ceil(pad / max(1, len(base))))[:pad]
        order = order[:total]
        w, r, b = self.num_replicas, self.rank, self.batch_size
        full = (total // (b * w)) * b * w
        mine = [i for start in range(0, full, b * w) for i in order[start + r * b : start + (r + 1) * b]]
        k = (total - full) // w  # a last, partial global batch: W equal contiguous pieces
        mine += order[full + r * k : full + (r + 1) * k]
        return iter(mine)

    def __len__(self) -> int:
        return self._total(max(0, len(self.dataset) - self.skip)) // self.num_replicas


class WidthPools:
    """A collate that turns `pool` batches' worth of variable-width lines into `pool` batches of neighbours
    in width, so that little of each padded batch is padding (the convolutions compute on padding too).

    The lines are sorted by width (stable), cut into batches of `batch_size`, and the batches put in an order
    drawn from the pool's own labels: the same pool gives the same batches in the same order, so a run resumed
    mid-pool re-renders the pool and skips the batches it had trained (exact resume)."""

    def __init__(self, collate: Callable[[Sequence], Batch], batch_size: int) -> None:
        self.collate = collate
        self.batch_size = batch_size

    def __call__(self, items: Sequence) -> list[Batch]:
        kept = [item for item in items if item is not None]
        skipped = len(items) - len(kept)
        kept.sort(key=lambda item: item[0].size(-1))
        groups = [kept[i : i + self.batch_size] for i in range(0, len(kept), self.batch_size)] or [[]]
        random.Random("\n".join(label for _, label in kept)).shuffle(groups)
        batches = [self.collate(group) for group in groups]
        batches[0] = batches[0]._replace(skipped=batches[0].skipped + skipped)
        return batches


def padding_columns(batch: Batch) -> tuple[int, int]:
    """(padded, total) pixel columns of a batch, summed over its lines (0 padded for a stacked batch)."""
    if batch.images is None:
        return 0, 0
    total = batch.images.size(0) * batch.images.size(-1)
    return (0 if batch.widths is None else total - int(batch.widths.sum())), total


def padding_share(batches: Sequence[Batch]) -> float:
    """Share of the batches' pixels that are padding (what the convolutions compute for nothing)."""
    padded, total = (sum(col) for col in zip(*(padding_columns(b) for b in batches), (0, 0)))
    return padded / max(1, total)
