"""Training for a number of wall-clock seconds: a short calibration run, then a run sized to the time left.

A lent accelerator comes with a fixed number of seconds. `train_for_seconds` first trains `calibrate_steps`
steps from the starting weights (measuring seconds per step past the first steps, which pay for loader start
and kernel choice, and the time of one validation), then finetunes from that checkpoint for as many steps as
the time left allows, with its learning-rate schedule (warm-up, cosine decay) sized to exactly those steps, so
the run ends at the schedule's floor. A guard ends the run after any step that leaves too little time to
validate and save (its step callback returns True: the trainer validates, saves and stops). Both runs are
ordinary runs of the trainer, under `work_dir`.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

from masterocr.train.config import run_settings
from masterocr.train.loop import StepState, train
from masterocr.train.schema import validate_config

__all__ = ["sized_config", "train_for_seconds"]

log = logging.getLogger("masterocr.train")
_SAVE_S = 5.0  # writing the last checkpoint and leaving the loaders, with room to spare


def sized_config(config: dict, steps: int, run_dir: Path, run_id: str, save_every: int) -> dict:
    """`config` for a run of exactly `steps` optimizer steps in `run_dir/run_id`: max_steps and the
    schedule's total are `steps`, the warm-up is at most a tenth of them, one validation at the end,
    checkpoints every `save_every` steps."""
    cfg = copy.deepcopy(config)
    trainer = cfg.setdefault("trainer", {})
    trainer.update(max_steps=steps, epochs=10**6, save_dir=str(run_dir), auto_resume=False, tensorboard=False,
                   val_step_interval=steps, save_step_interval=save_every, save_period=10**6)
    cfg["run_id"] = run_id
    sched = cfg.get("lr_scheduler") or {}
    if sched.get("type") == "WarmupCosine":
        args = sched.setdefault("args", {})
        args["total_steps"] = steps
        args["warmup_steps"] = max(1, min(int(args.get("warmup_steps", 0)), steps // 10))
    return cfg


class _Clock:
    """Times the steps of a run; asks the run to stop when a step leaves less than `reserve` seconds."""

    def __init__(self, deadline: float, reserve: float, now: Callable[[], float]) -> None:
        self.deadline, self.reserve, self.now = deadline, reserve, now
        self.times: list[tuple[int, float]] = []
        self.stopped = False

    def __call__(self, info: StepState) -> bool:
        now = self.now()
        self.times.append((info.step, now))
        if not self.stopped and now + self.reserve > self.deadline:
            self.stopped = True
            log.warning("step %d: %.0f s left, fewer than the %.0f s kept to validate and save: stopping",
                        info.step, self.deadline - now, self.reserve)
        return self.stopped

    def seconds_per_step(self) -> float | None:
        """Mean seconds per step after the first few steps (loader start, kernel choice), None when too few."""
        skip = min(3, len(self.times) // 2)
        timed = self.times[skip:]
        if len(timed) < 2:
            return None
        (s0, t0), (s1, t1) = timed[0], timed[-1]
        return (t1 - t0) / max(1, s1 - s0)


def _run(config: dict, weights: str, clock: _Clock, device: str | None) -> dict:
    validate_config(config, "the sized config", training=True)
    return train(run_settings(config), callbacks=[clock], finetune=weights, device=device)


def train_for_seconds(config: dict, weights: str | Path, seconds: float, work_dir: str | Path, *,
                      calibrate_steps: int = 30, device: str | None = None,
                      clock: Callable[[], float] = time.perf_counter) -> dict:
    """Finetune `weights` under `config` for about `seconds` of wall time (start-up included); returns what
    was done: steps, seconds per step, the two runs' summaries and the path of the last checkpoint. `clock`
    is the time source every measurement and the plan use."""
    start = clock()
    deadline = start + seconds
    work = Path(work_dir)
    big = 10**9
    calib = _Clock(deadline, _SAVE_S, clock)
    cfg1 = sized_config(config, calibrate_steps, work, "calibrate", big)
    cfg1["trainer"]["val_step_interval"] = big  # its one validation comes after the last step, and is timed
    cfg1["lr_scheduler"] = {"type": "WarmupCosine",  # the learning rate rises through the calibration steps
                            "args": {**((config.get("lr_scheduler") or {}).get("args") or {}),
                                     "warmup_steps": calibrate_steps, "total_steps": big}}
    first = _run(cfg1, str(weights), calib, device)
    after_first = clock()
    per_step = calib.seconds_per_step()
    startup = (calib.times[0][1] - start) if calib.times else after_first - start
    last_step_at = calib.times[-1][1] if calib.times else after_first
    validate_s = after_first - last_step_at  # the final validation and save of the calibration run
    reserve = startup + validate_s + _SAVE_S
    left = deadline - clock() - reserve
    steps = 0 if per_step is None else max(0, int(left / per_step))
    out = {"calibration": {"steps": first["step"], "seconds_per_step": per_step, "startup_s": round(startup, 1),
                           "validate_and_save_s": round(validate_s, 1), "metrics": first["metrics"]},
           "planned_steps": steps}
    checkpoint = Path(first["run_dir"]) / "checkpoint-latest.pth"
    out["calibration"]["checkpoint"] = str(checkpoint)
    if steps < 1:
        log.info("no time for a sized run after calibration (%.0f s left)", left)
        return {**out, "steps": first["step"], "summary": first, "checkpoint": str(checkpoint),
                "seconds": round(clock() - start, 1)}
    log.info("calibration: %.3f s/step, start-up %.1f s, validation+save %.1f s: %d steps in the %.0f s left",
             per_step, startup, validate_s, steps, left)
    sized = _Clock(deadline, validate_s + _SAVE_S, clock)
    cfg2 = sized_config(config, steps, work, "sized", max(1, math.ceil(steps / 4)))
    second = _run(cfg2, str(checkpoint), sized, device)
    return {**out, "steps": first["step"] + second["step"], "summary": second,
            "seconds_per_step": sized.seconds_per_step(), "stopped_early": sized.stopped,
            "checkpoint": str(Path(second["run_dir"]) / "checkpoint-latest.pth"),
            "seconds": round(clock() - start, 1)}
