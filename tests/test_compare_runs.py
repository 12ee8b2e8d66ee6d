"""scripts/compare_runs.py: the training clock leaves out pauses between segments; accuracy at a time or a step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def write_run(run_dir: Path, preset: str) -> None:
    """A run of two segments: steps 25..1000 a minute per 25 steps, a 3-hour pause, then steps 1025..2000."""
    from torch.utils.tensorboard import SummaryWriter

    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"model_arch": {"args": {"preset": preset}}}))
    (run_dir / "train.log").write_text("INFO model 1.66M parameters, 99 classes\n")
    writer = SummaryWriter(str(run_dir / "log"))
    start = 1_000_000.0
    for step in range(25, 2001, 25):
        pause = 3 * 3600 if step > 1000 else 0
        wall = start + 60 * (step // 25) + pause
        writer.add_scalar("train/loss", 1.0 / step, step, walltime=wall)
        writer.add_scalar("train/images_per_s", 40.0, step, walltime=wall)
        if step % 500 == 0:
            writer.add_scalar("val/word_acc", step / 2000, step, walltime=wall + 5)
    writer.close()


def test_clock_skips_the_pause_between_segments(tmp_path, compare_runs):
    write_run(tmp_path / "run_a", "small")
    run = compare_runs.read_run(tmp_path / "run_a")
    assert run["preset"] == "small" and run["params"] == "1.66M" and run["img_s"] == 40.0
    minutes = {step: m for step, m, _ in run["val"]}
    # 20 log intervals of a minute up to step 500 (the clock starts at the first logged step, 25)
    assert minutes[500] == pytest.approx(19 + 5 / 60)
    # the 3-hour pause counts as one usual interval, not 180 minutes
    assert minutes[2000] == pytest.approx(79 + 5 / 60, abs=0.2)


def test_accuracy_at_steps_and_minutes(tmp_path, compare_runs):
    write_run(tmp_path / "run_b", "medium")
    val = compare_runs.read_run(tmp_path / "run_b")["val"]
    assert compare_runs.acc_at(val, step=1000) == "50.0"
    assert compare_runs.acc_at(val, step=1234) == "-"
    assert compare_runs.acc_at(val, minutes=10) == "0"  # before the first validation
    assert compare_runs.acc_at(val, minutes=40) == "50.0"  # step 1000 at 39.1 min is the last before 40
    assert compare_runs.acc_at(val, minutes=200) == "-"  # the run never trained that long
