"""A DistributedSampler that can start part-way through an epoch, for exact resume."""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import Dataset, DistributedSampler


class ResumableSampler(DistributedSampler):
    """Shuffled per epoch from (seed, epoch), sharded over ranks; `skip` drops this rank's first samples.

    Works in one process too (num_replicas=1). The order of an epoch depends only on seed and epoch, so a
    run resumed mid-epoch sees exactly the samples the uninterrupted run would have seen next.
    """

    def __init__(
        self, dataset: Dataset, num_replicas: int, rank: int, shuffle: bool, seed: int, drop_last: bool = False
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        self.skip = 0

    def set_position(self, epoch: int, skip: int) -> None:
        self.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        skip, self.skip = self.skip, 0  # only the first pass after a resume is shortened
        return iter(indices[skip:])

    def __len__(self) -> int:
        return self.num_samples - self.skip
