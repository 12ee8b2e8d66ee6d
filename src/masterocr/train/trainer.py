"""The training loop: data, loss, optimizer, validation, DDP, AMP, checkpoints, resume, TensorBoard.

The model is built from the config here and knows nothing of it; everything a run needs to continue exactly
(optimizer, scheduler, scaler, step, position in the epoch, RNG states) goes into each checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import signal
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from masterocr.charset import PAD
from masterocr.train.config import charset_from_config, model_config, train_settings
from masterocr.errors import UserError
from masterocr.evaluate import Counts
from masterocr.model import build_model
from masterocr.model.decoder import upgrade_state_dict
from masterocr.train import optim
from masterocr.train.checkpoint import atomic_save, load_checkpoint, rng_state, set_rng_state
from masterocr.train.distributed import DistInfo, all_reduce_sum, barrier, cleanup, init_distributed
from masterocr.train.sampler import ResumableSampler

log = logging.getLogger("masterocr.train")


class TrainingError(UserError):
    """The run cannot go on (e.g. the loss stays non-finite); the last good checkpoint is kept."""


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def _ignore_stop_signals(worker_id: int) -> None:  # noqa: ARG001
    """Loader workers leave SIGINT/SIGTERM to the main process, which saves a checkpoint and then stops them
    (a Ctrl-C or a `kill` of the process group would otherwise kill a worker and crash the main process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class Trainer:
    def __init__(
        self,
        cfg: dict,
        *,
        resume: str | Path | None = None,
        finetune: str | Path | None = None,
        device: str | None = None,
        distributed: bool | None = None,
    ) -> None:
        self.cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
        self.s = s = train_settings(cfg)
        self.dist: DistInfo = init_distributed(s.distributed if distributed is None else distributed, device)
        self.device = self.dist.device
        seed_everything(s.seed, s.deterministic)
        base_dir = Path(cfg["_path"]).parent if "_path" in cfg else None
        self.charset = charset_from_config(cfg, base_dir)
        self.model_cfg = model_config(cfg)
        self.model = build_model(self.model_cfg, self.charset).to(self.device)
        if s.sync_batch_norm and self.dist.enabled:
            if self.device.type == "cpu":  # torch's SyncBatchNorm raises on CPU tensors ("expected ... on GPU")
                log.warning("sync_batch_norm: SyncBatchNorm needs GPUs; on CPU each rank keeps plain BatchNorm "
                            "over its own batch")
            else:
                self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        if s.amp == "fp16" and self.device.type == "cpu":
            log.warning("amp fp16 on CPU: autocast runs but is usually slower than fp32 and needs loss scaling; "
                        "prefer amp bf16 on CPU")
        self._build_data(cfg)
        self.optimizer = optim.build_optimizer(self.model, s.optimizer)
        self.scheduler, self.sched_per_step = optim.build_scheduler(self.optimizer, s.lr_scheduler, self.total_steps)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=s.amp == "fp16")
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(s.amp or "")

        # position: epoch is 1-based; batch_in_epoch counts micro-batches done in the current epoch
        self.epoch, self.step, self.batch_in_epoch, self.samples_in_epoch = 1, 0, 0, 0
        mode, _, self.monitor_key = s.monitor.partition(" ")
        self.monitor_mode = mode if mode in ("min", "max") else "off"
        self.monitor_best = -math.inf if self.monitor_mode == "max" else math.inf
        self.not_improved = 0
        self.bad_samples = 0
        self.nonfinite_skipped = 0
        self.run_dir: Path | None = None
        if s.auto_resume and not resume and not finetune:
            # a fixed run folder (no timestamp), so that a restarted job finds its own checkpoint
            self.run_dir = Path(s.save_dir) / s.name / s.run_id
            if (self.run_dir / "checkpoint-latest.pth").exists():
                resume = self.run_dir / "checkpoint-latest.pth"
                log.info("auto_resume: continuing from %s", resume)
        if resume:
            self._resume(resume)
        elif finetune:
            self._finetune(finetune)
        if self.run_dir is None:
            stamp = datetime.now().strftime("%m%d_%H%M%S")
            self.run_dir = Path(s.save_dir) / s.name / f"{s.run_id}_{stamp}"
        self.net = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if s.compile:
            self.net = torch.compile(self.net)
        self._stop_signal: int | None = None
        self.writer = None

    # data -------------------------------------------------------------------------------------------------------
    def _build_data(self, cfg: dict) -> None:
        from masterocr.data import Augment, build_dataset, collate

        s, c = self.s, self.model_cfg
        common = dict(
            charset=self.charset, img_h=c.img_h, img_w=c.img_w, in_channels=c.in_channels,
            keep_ratio=c.keep_ratio, max_len=c.max_len, seed=s.seed,
        )  # fmt: skip
        if not cfg.get("train_dataset"):
            raise UserError("the config has no train_dataset section")
        augment = Augment() if cfg.get("augment", True) else None
        self.train_ds = build_dataset(cfg["train_dataset"], training=True, augment=augment, **common)
        if len(self.train_ds) == 0:
            raise UserError("the training set is empty after skipping bad samples; check the label file and paths")
        self.sampler = ResumableSampler(
            self.train_ds, self.dist.world_size, self.dist.rank, shuffle=True, seed=s.seed,
            batch_size=s.train_batch_size,
        )
        per_rank = math.ceil(len(self.train_ds) / self.dist.world_size)
        drop_last = per_rank >= s.train_batch_size  # a set smaller than a batch still trains
        self.collate = collate
        self.loader_kwargs = dict(
            batch_size=s.train_batch_size, num_workers=s.train_num_workers, collate_fn=collate, drop_last=drop_last
        )
        batches = per_rank // s.train_batch_size if drop_last else math.ceil(per_rank / s.train_batch_size)
        if s.max_len_step:
            batches = min(batches, int(s.max_len_step))
        self.batches_per_epoch = batches
        self.total_steps = s.max_steps or (s.epochs * batches) // max(1, s.grad_accum_steps)
        self.val_ds = None
        if s.do_validation and cfg.get("val_dataset"):
            val = build_dataset(cfg["val_dataset"], training=False, augment=None, **common)
            if s.val_max_samples:
                val = Subset(val, range(min(len(val), int(s.val_max_samples))))
            # each rank scores its own slice; the counts are summed over ranks
            self.val_ds = Subset(val, range(self.dist.rank, len(val), self.dist.world_size))

    def _loader(self) -> DataLoader:
        self.sampler.set_position(self.epoch, self.samples_in_epoch)  # samples over all ranks
        if hasattr(self.train_ds, "set_epoch"):
            self.train_ds.set_epoch(self.epoch)
        gen = torch.Generator().manual_seed(self.s.seed + self.epoch)  # worker seeds without touching global RNG
        return DataLoader(self.train_ds, sampler=self.sampler, generator=gen, worker_init_fn=_ignore_stop_signals,
                          **self.loader_kwargs)

    # checkpoints ------------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "arch": "MASTER",
            "epoch": self.epoch,
            "step": self.step,
            "batch_in_epoch": self.batch_in_epoch,
            "samples_in_epoch": self.samples_in_epoch,
            "world_size": self.dist.world_size,
            "model_state_dict": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "scaler": self.scaler.state_dict(),
            "monitor_best": self.monitor_best,
            "not_improved": self.not_improved,
            "config": self.cfg,
            "model_config": self.model_cfg.to_dict(),
            "charset": {"keys": self.charset.keys, "case_sensitive": self.charset.case_sensitive},
            "rng": rng_state(),
            "bad_samples": self.bad_samples,
            "nonfinite_skipped": self.nonfinite_skipped,
        }

    def save(self, name: str) -> Path | None:
        """Rank 0 writes `run_dir/name` atomically; the other ranks only wait."""
        path = None
        if self.dist.is_main:
            path = self.run_dir / name
            atomic_save(self.state(), path)
            log.info("saved %s (epoch %d, step %d)", path, self.epoch, self.step)
        return path

    def _load_weights(self, ckpt: dict, strict: bool) -> None:
        state = {k.removeprefix("module."): v for k, v in ckpt["model_state_dict"].items()}
        if strict:
            try:
                self.model.load_state_dict(state)
            except RuntimeError as exc:
                raise UserError(
                    f"checkpoint {ckpt['_path']} does not fit this config's model ({str(exc).splitlines()[0]}); "
                    "use the config it was trained with, or --finetune to load the matching weights only"
                ) from exc
            return
        state = upgrade_state_dict(state)  # 0.1.0 names -> fused, before names and shapes are compared
        own = self.model.state_dict()
        fit = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        skipped = sorted(set(own) - set(fit))
        self.model.load_state_dict(fit, strict=False)
        if not fit:
            raise UserError(f"no weight of {ckpt['_path']} fits this model; check the preset/config")
        if skipped:
            log.warning("finetune: %d tensors kept their fresh init (shape or name differ): %s", len(skipped),
                        ", ".join(skipped[:6]) + (" ..." if len(skipped) > 6 else ""))

    def _finetune(self, path: str | Path) -> None:
        """Weights only: epochs, optimizer and schedule start fresh (the original's --finetune true)."""
        ckpt = load_checkpoint(path)
        self._load_weights(ckpt, strict=False)
        log.info("finetuning from %s", ckpt["_path"])

    def _resume(self, path: str | Path) -> None:
        ckpt = load_checkpoint(path, map_location=self.device)
        if not isinstance(ckpt.get("optimizer"), dict):  # weights (.safetensors) or a bare state_dict
            raise UserError(
                f"{ckpt['_path']} holds weights only, no training state to resume; "
                "use --finetune to start from these weights, or resume from a checkpoint-*.pth"
            )
        if upgrade_state_dict(ckpt["model_state_dict"]).keys() != ckpt["model_state_dict"].keys():
            raise UserError(
                f"{ckpt['_path']} was written by masterocr 0.1.0, before the attention projections were fused: "
                "its weights load, its optimizer state does not fit; continue with --finetune on it (weights kept, "
                "optimizer and schedule fresh), or finish the run with masterocr 0.1.0"
            )
        self._load_weights(ckpt, strict=True)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler and ckpt.get("lr_scheduler"):
            self.scheduler.load_state_dict(ckpt["lr_scheduler"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.step = int(ckpt.get("epoch", 1)), int(ckpt.get("step", 0))
        self.batch_in_epoch = int(ckpt.get("batch_in_epoch", 0))
        self.samples_in_epoch = int(ckpt.get("samples_in_epoch", 0))
        self.monitor_best = float(ckpt.get("monitor_best", self.monitor_best))
        self.not_improved = int(ckpt.get("not_improved", 0))
        self.bad_samples = int(ckpt.get("bad_samples", 0))
        self.nonfinite_skipped = int(ckpt.get("nonfinite_skipped", 0))
        old_world = int(ckpt.get("world_size", 1))
        if old_world != self.dist.world_size:
            # the sampler drops the epoch's first samples_in_epoch samples and shards the rest over the new world;
            # batch_in_epoch is recounted in batches of the new world
            self.batch_in_epoch = self.samples_in_epoch // (self.s.train_batch_size * self.dist.world_size)
            log.warning(
                "resuming a %d-process checkpoint on %d process(es): the epoch goes on after the %d samples "
                "already seen (now batch %d of %d); the global batch is now %d x %d, the RNG states are not "
                "restored, so the run is not bit-identical to an uninterrupted %d-process run",
                old_world, self.dist.world_size, self.samples_in_epoch, self.batch_in_epoch,
                self.batches_per_epoch, self.s.train_batch_size, self.dist.world_size, old_world,
            )  # fmt: skip
        elif "rng" in ckpt:
            set_rng_state(ckpt["rng"])
        self.run_dir = Path(ckpt["_path"]).parent
        log.info("resumed %s at epoch %d, step %d", ckpt["_path"], self.epoch, self.step)

    # one step ---------------------------------------------------------------------------------------------------
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _loss(self, images: torch.Tensor, labels: list[str]) -> torch.Tensor:
        longest = max(self.charset.label_length(t) for t in labels)
        targets = self.charset.encode_batch(labels, min(self.model_cfg.max_len, longest)).to(self.device)
        with self._autocast():
            logits = self.net(images.to(self.device, non_blocking=True), targets)
        return F.cross_entropy(
            logits.float().reshape(-1, logits.size(-1)), targets[:, 1:].reshape(-1),
            ignore_index=PAD, label_smoothing=self.s.label_smoothing,
        )  # fmt: skip

    def _all_finite(self, loss: torch.Tensor) -> bool:
        ok = float(torch.isfinite(loss).item())
        return all_reduce_sum([ok], self.dist)[0] == self.dist.world_size  # every rank agrees to step or skip

    def _optimizer_step(self) -> None:
        if self.s.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.s.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        if self.scheduler and self.sched_per_step:
            self.scheduler.step()

    # validation -------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict:
        """Greedy-decode the validation set (split over ranks) and all-reduce the metric counts."""
        counts = Counts()
        self.model.eval()
        loader = DataLoader(self.val_ds, batch_size=self.s.val_batch_size, num_workers=self.s.val_num_workers,
                            collate_fn=self.collate)
        for batch in loader:
            if batch.images is None:
                continue
            with self._autocast():
                out = self.model.decode(batch.images.to(self.device))
            for row, gold in zip(out.tokens.tolist(), batch.labels):
                counts.add(self.charset.decode(row), gold)
        self.model.train()
        total = Counts(*[int(v) for v in all_reduce_sum([float(x) for x in counts.as_list()], self.dist)])
        return total.metrics()

    def _after_validation(self, metrics: dict) -> bool:
        """Track the best score, save model_best.pth; True when early stopping says stop."""
        log.info("validation at step %d: %s", self.step,
                 ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()))
        if self.writer:
            for k, v in metrics.items():
                self.writer.add_scalar(f"val/{k}", v, self.step)
        if self.monitor_mode == "off" or self.monitor_key not in metrics:
            return False
        value = metrics[self.monitor_key]
        better = value > self.monitor_best if self.monitor_mode == "max" else value < self.monitor_best
        if better:
            self.monitor_best, self.not_improved = value, 0
            self.save("model_best.pth")
        else:
            self.not_improved += 1
        return 0 < self.s.early_stop <= self.not_improved

    # the loop ---------------------------------------------------------------------------------------------------
    def _handle_signal(self, signum, frame) -> None:  # noqa: ARG002
        self._stop_signal = signum
        log.warning("received signal %d: saving a checkpoint after this step, then stopping", signum)

    def _stop_requested(self) -> bool:
        """A signal reached any rank: all ranks stop after the same step and take the same path afterwards
        (a rank stopping or validating alone would hang the others in a collective)."""
        if not self.dist.enabled:
            return self._stop_signal is not None
        got, signum = all_reduce_sum([float(self._stop_signal is not None), float(self._stop_signal or 0)], self.dist)
        if got and self._stop_signal is None:
            self._stop_signal = round(signum / got)  # the signal another rank received
        return got > 0

    def _setup_run(self) -> None:
        s = self.s
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            import json

            (self.run_dir / "config.json").write_text(json.dumps(self.cfg, indent=2))
            handler = logging.FileHandler(self.run_dir / "train.log")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logging.getLogger("masterocr").addHandler(handler)
            if s.tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.run_dir / "log"))
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not in the main thread
                signal.signal(sig, self._handle_signal)
        n = sum(p.numel() for p in self.model.parameters())
        log.info("model %.2fM parameters, %d classes; %d training samples (%d skipped), %d batches/epoch, "
                 "world size %d, device %s, run dir %s", n / 1e6, len(self.charset), len(self.train_ds),
                 sum(getattr(self.train_ds, "skipped", {}).values()), self.batches_per_epoch,
                 self.dist.world_size, self.device, self.run_dir)

    def fit(self) -> dict:
        """Train until `epochs` (or `max_steps`) is reached, a signal arrives or early stopping fires."""
        from tqdm import tqdm

        s = self.s
        self._setup_run()
        self.net.train()
        last_metrics: dict = {}
        stop, nonfinite_run = False, 0
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not (self.dist.is_main and s.progress),
                   dynamic_ncols=True, unit="step")
        try:
            while self.epoch <= s.epochs and not stop:
                if self.scheduler and not self.sched_per_step and self.batch_in_epoch == 0 and self.epoch > 1:
                    self.scheduler.step()  # epoch-wise schedules (StepLR) advance at each new epoch
                bar.set_description(f"epoch {self.epoch}")
                t0, seen, loss_sum = time.perf_counter(), 0, 0.0
                for batch in self._loader():
                    if self.batch_in_epoch >= self.batches_per_epoch:
                        break
                    self.batch_in_epoch += 1
                    self.samples_in_epoch += s.train_batch_size * self.dist.world_size
                    self.bad_samples += batch.skipped
                    if batch.images is None:
                        continue
                    loss = self._loss(batch.images, batch.labels)
                    if not self._all_finite(loss):
                        nonfinite_run += 1
                        self.nonfinite_skipped += 1
                        self.optimizer.zero_grad(set_to_none=True)
                        log.warning("non-finite loss at step %d: step skipped (%d in a row)", self.step,
                                    nonfinite_run)
                        if nonfinite_run >= s.nan_patience:
                            raise TrainingError(
                                f"the loss was non-finite {nonfinite_run} steps in a row; stopping. The last good "
                                f"checkpoint in {self.run_dir} is kept: lower the learning rate or check the data"
                            )
                        continue
                    nonfinite_run = 0
                    self.scaler.scale(loss / s.grad_accum_steps).backward()
                    seen += len(batch.labels)
                    loss_sum += float(loss.detach())
                    if self.batch_in_epoch % s.grad_accum_steps:
                        continue
                    self._optimizer_step()
                    step_loss, loss_sum = loss_sum / s.grad_accum_steps, 0.0
                    bar.update(1)
                    if self.step % s.log_step_interval == 0:
                        # the loss of the step: mean over micro-batches and over ranks (every rank logs the same)
                        step_loss = all_reduce_sum([step_loss], self.dist)[0] / self.dist.world_size
                        rate = seen * self.dist.world_size / max(time.perf_counter() - t0, 1e-9)
                        lr = self.optimizer.param_groups[0]["lr"]
                        bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr:.2e}", img_s=f"{rate:.0f}")
                        log.debug("step %d loss %.6f lr %.3e %.1f img/s", self.step, step_loss, lr, rate)
                        if self.writer:
                            self.writer.add_scalar("train/loss", step_loss, self.step)
                            self.writer.add_scalar("train/lr", lr, self.step)
                            self.writer.add_scalar("train/images_per_s", rate, self.step)
                    if self.val_ds is not None and self.epoch >= s.validation_start_epoch and \
                            self.step % s.val_step_interval == 0:
                        last_metrics = self.validate()
                        stop = self._after_validation(last_metrics) or stop
                    if self.step % s.save_step_interval == 0:
                        self.save("checkpoint-latest.pth")
                    _test_kill_hook(self.step, self.dist.rank)
                    if self._stop_requested() or (s.max_steps and self.step >= s.max_steps) or stop:
                        stop = True
                        break
                if stop:
                    break
                # the epoch is complete (validation runs by step interval, and once at the end of the run)
                done_epoch = self.epoch
                self.epoch, self.batch_in_epoch, self.samples_in_epoch = self.epoch + 1, 0, 0
                if done_epoch % max(1, s.save_period) == 0:
                    self.save(f"checkpoint-epoch{done_epoch}.pth")
            if (self.val_ds is not None and not self._stop_requested() and self.step % s.val_step_interval
                    and self.epoch - (self.batch_in_epoch == 0) >= s.validation_start_epoch):
                last_metrics = self.validate()
                self._after_validation(last_metrics)
            self.save("checkpoint-latest.pth")
        finally:
            bar.close()
            barrier(self.dist)
            if self.writer:
                self.writer.close()
        if self.bad_samples:
            log.warning("skipped %d unreadable samples during training", self.bad_samples)
        log.info("stopped at epoch %d, step %d%s", self.epoch, self.step,
                 f" on signal {self._stop_signal}" if self._stop_signal else "")
        return {"step": self.step, "epoch": self.epoch, "run_dir": str(self.run_dir), "metrics": last_metrics,
                "bad_samples": self.bad_samples, "signal": self._stop_signal}

    def close(self) -> None:
        cleanup(self.dist)


def _test_kill_hook(step: int, rank: int) -> None:
    """Tests only: MASTEROCR_TEST_KILL_AT_STEP=K makes rank MASTEROCR_TEST_KILL_RANK (default 1) send itself
    MASTEROCR_TEST_KILL_SIGNAL (KILL or TERM, default KILL) after step K, once: the marker file
    MASTEROCR_TEST_KILL_MARKER is created first and, while it exists, the hook does nothing."""
    at = os.environ.get("MASTEROCR_TEST_KILL_AT_STEP")
    if not at or step != int(at) or rank != int(os.environ.get("MASTEROCR_TEST_KILL_RANK", "1")):
        return
    marker = os.environ.get("MASTEROCR_TEST_KILL_MARKER")
    if marker:
        if Path(marker).exists():
            return
        Path(marker).write_text(f"step {step} rank {rank}\n")
    sig = getattr(signal, "SIG" + os.environ.get("MASTEROCR_TEST_KILL_SIGNAL", "KILL").upper())
    log.warning("test hook: rank %d sends itself %s after step %d", rank, sig.name, step)
    os.kill(os.getpid(), sig)


def train(cfg: dict, **kwargs) -> dict:
    """Build a Trainer from a config dict and run it; returns the summary of the run."""
    trainer = Trainer(cfg, **kwargs)
    try:
        return trainer.fit()
    finally:
        trainer.close()
