"""The training loop: loss, optimizer steps, logging, validation, checkpoints, signals, DDP and AMP.

`Trainer(settings)` builds a run (train/setup.py) and places it at its start, its checkpoint or its finetuning
weights (train/state.py); `fit()` runs epochs of steps. Step callbacks are called after every optimizer step
with a `StepState`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from masterocr.data.datasets import Batch
from masterocr.errors import UserError
from masterocr.formats.checkpoint import atomic_save
from masterocr.memory import release_memory
from masterocr.model.ctc import frame_log_probs, joint_loss
from masterocr.train.config import RunSettings
from masterocr.train.distributed import DistInfo, all_reduce_sum, any_rank, barrier, cleanup, init_distributed
from masterocr.train.sampler import padding_columns
from masterocr.train.setup import (
    build_data,
    build_optimization,
    build_train_model,
    open_run_folder,
    seed_everything,
    train_batches,
    val_loader,
    wrap_model,
)
from masterocr.train.signals import StopSignal
from masterocr.train.state import (
    BEST,
    LATEST,
    TrainState,
    auto_resume_dir,
    checkpoint_dict,
    finetune_from,
    new_run_dir,
    resume_from,
    weights_checkpoint,
)
from masterocr.train.teacher import build_teacher, distill_loss
from masterocr.train.validation import Monitor, validation_metrics

log = logging.getLogger("masterocr.train")


class TrainingError(UserError):
    """The run cannot go on (e.g. the loss stays non-finite); the last good checkpoint is kept."""


@dataclass(frozen=True)
class StepState:
    """What a step callback sees, after an optimizer step and the checkpoint that step was due to write."""

    step: int
    epoch: int
    batch_in_epoch: int
    rank: int
    world_size: int
    run_dir: Path


# A callback that returns True ends the run after this step as max_steps would: a last validation and a save
# (a stop signal, by contrast, saves without validating).
StepCallback = Callable[[StepState], bool | None]


@dataclass
class _StepMeter:
    """Images and summed loss since the epoch began (throughput) and since the last optimizer step (loss)."""

    started: float
    seen: int = 0
    loss_sum: float = 0.0
    padded_columns: int = 0  # pixel columns of padding, and in all, of the micro-batches (lines x width)
    columns: int = 0

    def take_step_loss(self, micro_batches: int) -> float:
        loss, self.loss_sum = self.loss_sum / micro_batches, 0.0
        return loss


class Trainer:
    """One training run: `fit()` trains, `close()` leaves the process group."""

    def __init__(
        self,
        settings: RunSettings,
        *,
        resume: str | Path | None = None,
        finetune: str | Path | None = None,
        device: str | None = None,
        distributed: bool | None = None,
        callbacks: Sequence[StepCallback] = (),
    ) -> None:
        self.settings = settings
        opts = settings.trainer
        self.dist: DistInfo = init_distributed(opts.distributed if distributed is None else distributed, device)
        self.device = self.dist.device
        seed_everything(opts.seed, opts.deterministic)
        self.charset, self.cfg = settings.charset, settings.cfg
        self.model = build_train_model(settings, self.dist)
        self.data = build_data(settings, self.dist)
        self.optimization = build_optimization(self.model, opts, self.data.total_steps, self.device)
        self.monitor = Monitor.parse(opts.monitor)
        self.state = TrainState(monitor_best=self.monitor.worst())
        self.run_dir = self._place_start(resume, finetune)
        self.teacher = build_teacher(opts.distill, self.charset, self.cfg)
        self.net = wrap_model(self.model, self.dist, opts.compile)
        self.callbacks = list(callbacks)
        self.last_metrics: dict = {}
        self._nonfinite_run = 0
        self.stop_signal = StopSignal()
        self.writer = None
        self._clock = time.perf_counter()  # train_seconds counts from here, then from each save

    def _place_start(self, resume: str | Path | None, finetune: str | Path | None) -> Path:
        """Resume, finetune or start fresh; returns the run folder."""
        opts = self.settings.trainer
        run_dir = None
        if opts.auto_resume and not resume:  # its own checkpoint first; the finetuning weights only start it
            run_dir, latest = auto_resume_dir(opts)
            if latest is not None:
                resume, finetune = latest, None
        if resume:
            return resume_from(resume, model=self.model, optimization=self.optimization, state=self.state,
                               dist=self.dist, batch_size=opts.train_batch_size,
                               batches_per_epoch=self.data.batches_per_epoch)
        if finetune:
            finetune_from(finetune, self.model, self.state)
        return run_dir or new_run_dir(opts)

    # checkpoints ------------------------------------------------------------------------------------------------
    def save(self, name: str, resumable: bool = True) -> Path | None:
        """Rank 0 writes `run_dir/name` atomically; the other ranks only wait. Not `resumable`: the weights,
        configs and progress without the optimizer's state (state.weights_checkpoint)."""
        path = None
        now = time.perf_counter()
        self.state.train_seconds += now - self._clock
        self._clock = now
        if self.dist.is_main:
            path = self.run_dir / name
            ckpt = checkpoint_dict(self.state, self.model, self.optimization, self.settings, self.dist.world_size)
            atomic_save(ckpt if resumable else weights_checkpoint(ckpt), path)
            log.info("saved %s (epoch %d, step %d)", path, self.state.epoch, self.state.step)
        return path

    # one step ---------------------------------------------------------------------------------------------------
    def _autocast(self):
        if self.optimization.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.optimization.amp_dtype)

    def _loss(self, images: torch.Tensor, labels: list[str], widths: torch.Tensor | None = None) -> torch.Tensor:
        longest = max(self.charset.label_length(t) for t in labels)
        targets = self.charset.encode_batch(labels, min(self.cfg.max_len, longest)).to(self.device)
        images = images.to(self.device, non_blocking=True)
        with self._autocast():
            logits, gold, ctc = self.net(images, targets, widths, masked=True)
        frames = self.model.ctc_frames(images, None if widths is None else widths.to(self.device))
        log_probs = None if ctc is None else frame_log_probs(ctc)
        loss = joint_loss(logits, gold, log_probs, frames, targets, self.cfg.ctc_weight,
                          self.settings.trainer.label_smoothing)
        if self.teacher is not None:  # the teacher's term joins the CTC term, at its weight
            cols = widths if widths is not None else torch.full((len(labels),), images.shape[-1])
            soft = self.teacher.targets(images.cpu(), cols, labels, ctc.shape[1])
            weight = self.cfg.ctc_weight * self.settings.trainer.distill.weight
            loss = loss + weight * distill_loss(log_probs, soft, frames)
        return loss

    def _all_finite(self, loss: torch.Tensor) -> bool:
        ok = float(torch.isfinite(loss).item())
        return all_reduce_sum([ok], self.dist)[0] == self.dist.world_size  # every rank agrees to step or skip

    def _skip_nonfinite_step(self) -> None:
        """Drop this micro-batch's gradients; too many non-finite losses in a row stop the run."""
        self._nonfinite_run += 1
        self.state.nonfinite_skipped += 1
        self.optimization.optimizer.zero_grad(set_to_none=True)
        log.warning("non-finite loss at step %d: step skipped (%d in a row)", self.state.step, self._nonfinite_run)
        if self._nonfinite_run >= self.settings.trainer.nan_patience:
            raise TrainingError(
                f"the loss was non-finite {self._nonfinite_run} steps in a row; stopping. The last good "
                f"checkpoint in {self.run_dir} is kept: lower the learning rate or check the data"
            )

    def _optimizer_step(self) -> None:
        opt = self.optimization
        if self.settings.trainer.grad_clip:
            opt.scaler.unscale_(opt.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.trainer.grad_clip)
        opt.scaler.step(opt.optimizer)
        opt.scaler.update()
        opt.optimizer.zero_grad(set_to_none=True)
        self.state.step += 1
        if opt.scheduler and opt.sched_per_step:
            opt.scheduler.step()

    def _train_batch(self, batch, meter: _StepMeter) -> bool:
        """Forward and backward one micro-batch; True when it completed an optimizer step."""
        opts, state = self.settings.trainer, self.state
        state.batch_in_epoch += 1
        state.samples_in_epoch += opts.train_batch_size * self.dist.world_size
        state.bad_samples += batch.skipped
        if batch.images is None:
            return False
        loss = self._loss(batch.images, batch.labels, batch.widths)
        if not self._all_finite(loss):
            self._skip_nonfinite_step()
            return False
        self._nonfinite_run = 0
        self.optimization.scaler.scale(loss / opts.grad_accum_steps).backward()
        meter.seen += len(batch.labels)
        padded, total = padding_columns(batch)
        meter.padded_columns += padded
        meter.columns += total
        self._count_shown(batch.labels)
        meter.loss_sum += float(loss.detach())
        if state.batch_in_epoch % opts.grad_accum_steps:
            return False
        self._optimizer_step()
        return True

    def _count_shown(self, labels: list[str]) -> None:
        state = self.state
        state.lines_seen += len(labels)
        views = state.char_views
        for text in labels:
            state.chars_seen += len(text)
            for ch in text:
                if not ch.isspace():
                    views[ch] = views.get(ch, 0) + 1

    # after a step -----------------------------------------------------------------------------------------------
    def _log_step(self, step_loss: float, meter: _StepMeter, bar: tqdm) -> None:
        # the loss of the step: mean over micro-batches and over ranks (every rank logs the same)
        step_loss = all_reduce_sum([step_loss], self.dist)[0] / self.dist.world_size
        rate = meter.seen * self.dist.world_size / max(time.perf_counter() - meter.started, 1e-9)
        lr = self.optimization.optimizer.param_groups[0]["lr"]
        padding = meter.padded_columns / max(1, meter.columns)
        bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr:.2e}", img_s=f"{rate:.0f}")
        log.debug("step %d loss %.6f lr %.3e %.1f img/s padding %.3f lines %d chars %d", self.state.step,
                  step_loss, lr, rate, padding, self.state.lines_seen, self.state.chars_seen)
        if self.writer:
            self.writer.add_scalar("train/loss", step_loss, self.state.step)
            self.writer.add_scalar("train/lr", lr, self.state.step)
            self.writer.add_scalar("train/images_per_s", rate, self.state.step)
            self.writer.add_scalar("train/padding_share", padding, self.state.step)
            self.writer.add_scalar("train/chars_seen", self.state.chars_seen, self.state.step)

    def _run_callbacks(self) -> bool:
        """Call every step callback; True when one of them, on any rank, asks the run to end."""
        info = StepState(self.state.step, self.state.epoch, self.state.batch_in_epoch, self.dist.rank,
                         self.dist.world_size, self.run_dir)
        ends = [bool(callback(info)) for callback in self.callbacks]
        return any_rank(any(ends), self.dist) if self.callbacks else False

    def _after_step(self, meter: _StepMeter, bar: tqdm) -> bool:
        """Log, validate and save as their intervals say, call the step callbacks; True when the run stops."""
        opts, step = self.settings.trainer, self.state.step
        step_loss = meter.take_step_loss(opts.grad_accum_steps)
        bar.update(1)
        if step % opts.log_step_interval == 0:
            self._log_step(step_loss, meter, bar)
        early_stop = False
        if self.data.val_ds is not None and self.state.epoch >= opts.validation_start_epoch and \
                step % opts.val_step_interval == 0:
            self.last_metrics = self.validate()
            early_stop = self._after_validation(self.last_metrics)
        if step % opts.save_step_interval == 0:
            self.save(LATEST)
        # batches of lines each have their own width, and the freed blocks of their tensors stay in glibc's heap:
        # the line trainer held 5.5 GB of free memory after 20 minutes, and with a trim every 10 steps still
        # swung from 2 to 8 GB between trims (~0.5 GB a step), so the heap is trimmed after every step
        release_memory(collect=False)
        ends = self._run_callbacks()
        stop = self.stop_signal.requested(self.dist)  # first: a collective every rank calls after every step
        return stop or ends or bool(opts.max_steps and step >= opts.max_steps) or early_stop

    # validation -------------------------------------------------------------------------------------------------
    def validate(self) -> dict:
        """Greedy-decode the validation set (split over ranks) and all-reduce the metric counts."""
        loader = val_loader(self.data, self.settings.trainer)
        return validation_metrics(self.model, loader, self.charset, self.dist, self._autocast)

    def _after_validation(self, metrics: dict) -> bool:
        """Track the best score, save model_best.pth; True when early stopping says stop."""
        state = self.state
        log.info("validation at step %d: %s", state.step,
                 ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()))
        if self.writer:
            for k, v in metrics.items():
                self.writer.add_scalar(f"val/{k}", v, state.step)
        if not self.monitor.watches(metrics):
            return False
        value = metrics[self.monitor.key]
        if self.monitor.improves(value, state.monitor_best):
            state.monitor_best, state.not_improved = value, 0
            self.save(BEST, resumable=False)
        else:
            state.not_improved += 1
        return 0 < self.settings.trainer.early_stop <= state.not_improved

    # the run ----------------------------------------------------------------------------------------------------
    def _open_run(self) -> None:
        """Run folder (rank 0), stop signal handlers, the opening log line."""
        if self.dist.is_main:
            self.writer = open_run_folder(self.run_dir, self.settings.raw_config, self.settings.trainer.tensorboard)
        self.stop_signal.install()
        n = sum(p.numel() for p in self.model.parameters())
        train_ds = self.data.train_ds
        log.info("model %.2fM parameters, %d classes; %d training samples (%d skipped), %d batches/epoch, "
                 "world size %d, device %s, run dir %s", n / 1e6, len(self.charset), len(train_ds),
                 sum(getattr(train_ds, "skipped", {}).values()), self.data.batches_per_epoch,
                 self.dist.world_size, self.device, self.run_dir)

    def _batches(self) -> Iterator[Batch]:
        state = self.state
        train_ds = self.data.train_ds
        if hasattr(train_ds, "set_views"):  # the hanzi sampler favours what the run has shown least
            train_ds.set_views(state.char_views)
        return train_batches(self.data, state.epoch, state.samples_in_epoch, self.settings.trainer.seed)

    def _run_epoch(self, bar: tqdm) -> bool:
        """Train the rest of the current epoch; True when the run stops inside it."""
        opt, state = self.optimization, self.state
        if opt.scheduler and not opt.sched_per_step and state.batch_in_epoch == 0 and state.epoch > 1:
            opt.scheduler.step()  # epoch-wise schedules (StepLR) advance at each new epoch
        bar.set_description(f"epoch {state.epoch}")
        meter = _StepMeter(time.perf_counter())
        for batch in self._batches():
            if state.batch_in_epoch >= self.data.batches_per_epoch:
                break
            if self._train_batch(batch, meter) and self._after_step(meter, bar):
                return True
        # the epoch is complete (validation runs by step interval, and once at the end of the run)
        done_epoch = state.epoch
        state.epoch, state.batch_in_epoch, state.samples_in_epoch = state.epoch + 1, 0, 0
        if done_epoch % max(1, self.settings.trainer.save_period) == 0:
            self.save(f"checkpoint-epoch{done_epoch}.pth")
        return False

    def _finish(self) -> None:
        """A last validation when the last step did not just run one, and the final checkpoint."""
        opts, state = self.settings.trainer, self.state
        if (self.data.val_ds is not None and not self.stop_signal.requested(self.dist)
                and state.step % opts.val_step_interval
                and state.epoch - (state.batch_in_epoch == 0) >= opts.validation_start_epoch):
            self.last_metrics = self.validate()
            self._after_validation(self.last_metrics)
        self.save(LATEST)

    def fit(self) -> dict:
        """Train until `epochs` (or `max_steps`) is reached, a signal arrives or early stopping fires."""
        opts, state = self.settings.trainer, self.state
        self._open_run()
        self._clock = time.perf_counter()
        self.net.train()
        bar = tqdm(total=self.data.total_steps, initial=state.step,
                   disable=not (self.dist.is_main and opts.progress), dynamic_ncols=True, unit="step")
        try:
            while state.epoch <= opts.epochs:
                if self._run_epoch(bar):
                    break
            self._finish()
        finally:
            bar.close()
            barrier(self.dist)
            if self.writer:
                self.writer.close()
        if state.bad_samples:
            log.warning("skipped %d unreadable samples during training", state.bad_samples)
        log.info("stopped at epoch %d, step %d%s", state.epoch, state.step,
                 f" on signal {self.stop_signal.signum}" if self.stop_signal.signum else "")
        return {"step": state.step, "epoch": state.epoch, "run_dir": str(self.run_dir),
                "metrics": self.last_metrics, "bad_samples": state.bad_samples, "signal": self.stop_signal.signum}

    def close(self) -> None:
        """Leave the process group (under DDP)."""
        cleanup(self.dist)


def train(settings: RunSettings, *, callbacks: Sequence[StepCallback] = (), **kwargs) -> dict:
    """Build a Trainer from the run's settings and run it; returns the summary of the run.

    `kwargs` are Trainer's (resume, finetune, device, distributed); `callbacks` are called after every step."""
    trainer = Trainer(settings, callbacks=callbacks, **kwargs)
    try:
        return trainer.fit()
    finally:
        trainer.close()
