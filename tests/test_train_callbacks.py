"""Step callbacks: called after every optimizer step, after the checkpoint that step was due to write."""

from __future__ import annotations

import torch
from fixtures import tiny_word_config

from masterocr.train.config import run_settings
from masterocr.train.loop import StepState, train


def test_callbacks_see_each_step_after_its_checkpoint(tmp_path):
    config = tiny_word_config(tmp_path, validate=False)
    config["trainer"].update(max_steps=3, save_step_interval=1)
    seen: list[StepState] = []

    def record(state: StepState) -> None:
        saved = torch.load(state.run_dir / "checkpoint-latest.pth", weights_only=True)
        assert saved["step"] == state.step
        seen.append(state)

    summary = train(run_settings(config), device="cpu", callbacks=[record])
    assert [s.step for s in seen] == [1, 2, 3] and summary["step"] == 3
    assert {(s.rank, s.world_size, str(s.run_dir)) for s in seen} == {(0, 1, summary["run_dir"])}
    assert [(s.epoch, s.batch_in_epoch) for s in seen] == [(1, 1), (1, 2), (2, 1)]  # 4 words, batch 2


def test_a_callback_that_returns_true_ends_the_run_with_a_validation(tmp_path):
    """The seconds budget's guard ends a run this way: unlike a stop signal, the run still validates and saves."""
    config = tiny_word_config(tmp_path, validate=True)
    config["trainer"].update(max_steps=6, save_step_interval=100, val_step_interval=100)
    summary = train(run_settings(config), device="cpu", callbacks=[lambda state: state.step == 2])
    assert summary["step"] == 2 and summary["signal"] is None and "edit_acc" in summary["metrics"]
    saved = torch.load(summary["run_dir"] + "/checkpoint-latest.pth", weights_only=True)
    assert saved["step"] == 2
