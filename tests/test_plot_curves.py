"""scripts/plot_curves.py: consecutive runs share one axis, in images when each run names its batch size."""

from __future__ import annotations

import json
from pathlib import Path


def write_run(run_dir: Path, batch_size: int | None, last_step: int) -> None:
    """A run logging val/word_acc every 100 steps up to last_step; config.json only when batch_size is given."""
    from torch.utils.tensorboard import SummaryWriter

    run_dir.mkdir(parents=True)
    if batch_size is not None:
        cfg = {"train_loader": {"type": "DataLoader", "args": {"batch_size": batch_size}}}
        (run_dir / "config.json").write_text(json.dumps(cfg))
    writer = SummaryWriter(str(run_dir / "log"))
    for step in range(100, last_step + 1, 100):
        writer.add_scalar("val/word_acc", step / 1000, step)
    writer.close()


def test_runs_with_different_batch_sizes_chain_on_images(tmp_path, plot_curves):
    write_run(tmp_path / "cpu", 64, 300)
    write_run(tmp_path / "gpu", 256, 200)
    series, unit = plot_curves.chained([tmp_path / "cpu", tmp_path / "gpu"])
    assert unit == "images"
    # the CPU run ends at 300 * 64 images; the GPU run's steps follow at 256 images each
    assert [x for x, _ in series["val/word_acc"]] == [6400, 12800, 19200, 19200 + 25600, 19200 + 51200]


def test_a_run_without_config_falls_back_to_steps(tmp_path, plot_curves):
    write_run(tmp_path / "a", 64, 200)
    write_run(tmp_path / "b", None, 200)
    series, unit = plot_curves.chained([tmp_path / "a", tmp_path / "b"])
    assert unit == "step"
    assert [x for x, _ in series["val/word_acc"]] == [100, 200, 300, 400]
