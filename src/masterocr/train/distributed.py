"""Process-group setup on torch.distributed: NCCL on GPUs, gloo on CPU, one process per device."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from masterocr import devices

log = logging.getLogger(__name__)


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def parse_device(spec: str | None, local_rank: int = 0) -> torch.device:
    """`cpu`, `cuda`, `cuda:1`, or the original's GPU id list `1,2,3` (the local rank picks one): see
    masterocr.devices, the one check of every command's device."""
    return devices.parse_device(spec, local_rank, flag="-d")


def init_distributed(want_distributed: bool, device_spec: str | None) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1) and distributed is not off."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = parse_device(device_spec, local_rank)
    if world <= 1 or not want_distributed:
        if world > 1:
            log.warning("launched with WORLD_SIZE=%d but distributed is off: every process trains alone", world)
        return DistInfo(0, 1, 0, device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        # torchrun's agent keeps one TCPStore across restarts of its workers (--max-restarts): under the default
        # key prefix a restarted gloo group reads the dead workers' addresses and fails ("Connection refused").
        # Each restart round therefore gets its own key space.
        store, _, _ = next(dist.rendezvous("env://", rank, world))
        restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        dist.init_process_group(backend=backend, store=dist.PrefixStore(f"masterocr.restart{restart}", store),
                                rank=rank, world_size=world)
    return DistInfo(rank, world, local_rank, device)


def all_reduce_sum(values: list[float], info: DistInfo) -> list[float]:
    """Sum a list of numbers over all ranks (identity in one process)."""
    if not info.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True on every rank when `flag` is True on any rank (a collective under DDP)."""
    return all_reduce_sum([float(flag)], info)[0] > 0


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
