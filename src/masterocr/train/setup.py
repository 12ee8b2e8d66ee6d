"""Building a training run from its settings: seeds, the model, the data and its loaders, optimizer and schedule.

Nothing here reads the config JSON (train/config.py does) or holds the run's progress (train/state.py does).
"""

from __future__ import annotations

import json
import logging
import math
import random
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from masterocr.data import Augment, build_dataset, collate
from masterocr.data.datasets import Batch
from masterocr.errors import UserError
from masterocr.model import build_model
from masterocr.train import optim
from masterocr.train.config import RunSettings, TrainSettings
from masterocr.train.distributed import DistInfo
from masterocr.train.sampler import ResumableSampler, WidthPools
from masterocr.train.vocab import warn_outside_vocabulary

log = logging.getLogger("masterocr.train")


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and torch; with `deterministic`, cuDNN picks reproducible kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def ignore_stop_signals(worker_id: int) -> None:  # noqa: ARG001
    """Loader workers leave SIGINT/SIGTERM to the main process, which saves a checkpoint and then stops them
    (a Ctrl-C or a `kill` of the process group would otherwise kill a worker and crash the main process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def build_train_model(settings: RunSettings, dist: DistInfo) -> torch.nn.Module:
    """The model on the run's device, with SyncBatchNorm when asked for and possible."""
    model = build_model(settings.cfg, settings.charset).to(dist.device)
    if settings.trainer.sync_batch_norm and dist.enabled:
        if dist.device.type == "cpu":  # torch's SyncBatchNorm raises on CPU tensors ("expected ... on GPU")
            log.warning("sync_batch_norm: SyncBatchNorm needs GPUs; on CPU each rank keeps plain BatchNorm "
                        "over its own batch")
        else:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if settings.trainer.amp == "fp16" and dist.device.type == "cpu":
        log.warning("amp fp16 on CPU: autocast runs but is usually slower than fp32 and needs loss scaling; "
                    "prefer amp bf16 on CPU")
    return model


@dataclass
class TrainData:
    """The datasets of a run and how they are cut into batches."""

    train_ds: Dataset
    sampler: ResumableSampler
    loader_kwargs: dict
    batches_per_epoch: int
    total_steps: int
    val_ds: Dataset | None  # this rank's slice of the validation set
    collate: Callable = collate
    pool: int = 1  # micro-batches per loaded width pool


def dataset_kwargs(settings: RunSettings) -> dict:
    """The keywords build_dataset takes from the model and the run (the dataset's args override them)."""
    cfg = settings.cfg
    return dict(
        charset=settings.charset, img_h=cfg.img_h, img_w=cfg.img_w, in_channels=cfg.in_channels,
        keep_ratio=cfg.keep_ratio, variable_width=cfg.variable_width, max_len=cfg.max_len,
        seed=settings.trainer.seed,
    )  # fmt: skip


def build_data(settings: RunSettings, dist: DistInfo) -> TrainData:
    """Training and validation sets, the resumable sampler and the number of batches and steps."""
    opts = settings.trainer
    common = dataset_kwargs(settings)
    if not settings.train_dataset:
        raise UserError("the config has no train_dataset section")
    augment = Augment() if settings.augment else None
    train_ds = build_dataset(settings.train_dataset, training=True, augment=augment, **common)
    if len(train_ds) == 0:
        raise UserError("the training set is empty after skipping bad samples; check the label file and paths")
    if dist.is_main:
        warn_outside_vocabulary(train_ds, settings.charset)
    pool = max(1, opts.bucket_pool)  # micro-batches per loaded pool (1: no width bucketing)
    sampler = ResumableSampler(
        train_ds, dist.world_size, dist.rank, shuffle=True, seed=opts.seed, batch_size=opts.train_batch_size * pool,
    )
    per_rank = math.ceil(len(train_ds) / dist.world_size)
    drop_last = per_rank >= opts.train_batch_size * pool  # a set smaller than a batch still trains
    collate_fn = WidthPools(collate, opts.train_batch_size) if opts.bucket_pool else collate
    loader_kwargs = dict(
        batch_size=opts.train_batch_size * pool, num_workers=opts.train_num_workers, collate_fn=collate_fn,
        drop_last=drop_last,
    )  # fmt: skip
    if drop_last:
        batches = per_rank // (opts.train_batch_size * pool) * pool
    else:
        batches = math.ceil(per_rank / opts.train_batch_size)
    if opts.max_len_step:
        batches = min(batches, int(opts.max_len_step))
    total_steps = opts.max_steps or (opts.epochs * batches) // max(1, opts.grad_accum_steps)
    val_ds = None
    if opts.do_validation and settings.val_dataset:
        val = build_dataset(settings.val_dataset, training=False, augment=None, **common)
        if opts.val_max_samples:
            val = Subset(val, range(min(len(val), int(opts.val_max_samples))))
        # each rank scores its own slice; the counts are summed over ranks
        val_ds = Subset(val, range(dist.rank, len(val), dist.world_size))
    return TrainData(train_ds, sampler, loader_kwargs, batches, total_steps, val_ds, pool=pool)


def train_batches(data: TrainData, epoch: int, samples_in_epoch: int, seed: int) -> Iterator[Batch]:
    """The micro-batches of `epoch` after the `samples_in_epoch` samples (over all ranks) already seen. With
    width pools the loader restarts at the pool that holds that position and skips its trained batches."""
    start, skip = samples_in_epoch, 0
    if data.pool > 1:
        pool_samples = data.loader_kwargs["batch_size"] * data.sampler.num_replicas
        start = samples_in_epoch - samples_in_epoch % pool_samples
        skip = (samples_in_epoch - start) // (pool_samples // data.pool)
    for item in train_loader(data, epoch, start, seed):
        batches = item if isinstance(item, list) else [item]
        yield from batches[skip:]
        skip = 0


def train_loader(data: TrainData, epoch: int, samples_in_epoch: int, seed: int) -> DataLoader:
    """The loader of `epoch`, starting after the `samples_in_epoch` samples (over all ranks) already seen."""
    data.sampler.set_position(epoch, samples_in_epoch)
    if hasattr(data.train_ds, "set_epoch"):
        data.train_ds.set_epoch(epoch)
    gen = torch.Generator().manual_seed(seed + epoch)  # worker seeds without touching global RNG
    return DataLoader(data.train_ds, sampler=data.sampler, generator=gen, worker_init_fn=ignore_stop_signals,
                      **data.loader_kwargs)


def val_loader(data: TrainData, opts: TrainSettings) -> DataLoader:
    """The loader of this rank's validation slice."""
    return DataLoader(data.val_ds, batch_size=opts.val_batch_size, num_workers=opts.val_num_workers,
                      collate_fn=data.collate)


@dataclass
class Optimization:
    """What turns losses into weight updates: optimizer, schedule, loss scaler and autocast dtype."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    sched_per_step: bool  # False: the schedule advances once per epoch
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None


def build_optimization(model: torch.nn.Module, opts: TrainSettings, total_steps: int,
                       device: torch.device) -> Optimization:
    """Optimizer and schedule from their config sections, a GradScaler for fp16 and the autocast dtype."""
    optimizer = optim.build_optimizer(model, opts.optimizer)
    scheduler, per_step = optim.build_scheduler(optimizer, opts.lr_scheduler, total_steps)
    scaler = torch.amp.GradScaler(device.type, enabled=opts.amp == "fp16")
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(opts.amp or "")
    return Optimization(optimizer, scheduler, per_step, scaler, amp_dtype)


def wrap_model(model: torch.nn.Module, dist: DistInfo, compile_model: bool) -> torch.nn.Module:
    """The module the loop calls: DDP over the process group, compiled when asked for."""
    net = model
    if dist.enabled:
        ids = [dist.device.index] if dist.device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if compile_model:
        net = torch.compile(net)
    return net


def open_run_folder(run_dir: Path, raw_config: dict, tensorboard: bool):
    """Create the run folder with its config.json and train.log (every masterocr log line from here on);
    returns the TensorBoard writer when asked for, else None."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(raw_config, indent=2))
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger("masterocr").addHandler(handler)
    if not tensorboard:
        return None
    from torch.utils.tensorboard import SummaryWriter  # optional extra (tensorboard)

    return SummaryWriter(str(run_dir / "log"))
