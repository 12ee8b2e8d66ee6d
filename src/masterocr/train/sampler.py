"""A DistributedSampler that can start part-way through an epoch, for exact resume."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, DistributedSampler


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
