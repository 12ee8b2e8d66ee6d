"""Step callbacks: called after every optimizer step, after the checkpoint that step was due to write."""

from __future__ import annotations

import torch
from conftest import write_word_set

from masterocr.train.config import run_settings
from masterocr.train.loop import StepState, train


def _tiny_config(tmp_path, validate: bool) -> dict:
    words = write_word_set(tmp_path / "words", ["cat", "dog", "sun", "tree"])
    data = {"type": "TextDataset", "args": {"txt_file": str(words / "gt.txt"), "img_root": str(words / "images")}}
    return {
        "name": "cb", "run_id": "tiny", "seed": 3, "distributed": False, "augment": False,
        "model_arch": {"type": "MASTER", "args": {"preset": "tiny", "max_len": 8}},
        "train_dataset": data, "train_loader": {"args": {"batch_size": 2, "num_workers": 0}},
        "trainer": {"epochs": 10_000, "save_dir": str(tmp_path / "saved"), "save_period": 1000, "progress": False,
                    "do_validation": validate},
    } | ({"val_dataset": data} if validate else {})  # fmt: skip


def test_callbacks_see_each_step_after_its_checkpoint(tmp_path):
    config = _tiny_config(tmp_path, validate=False)
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
    config = _tiny_config(tmp_path, validate=True)
    config["trainer"].update(max_steps=6, save_step_interval=100, val_step_interval=100)
    summary = train(run_settings(config), device="cpu", callbacks=[lambda state: state.step == 2])
    assert summary["step"] == 2 and summary["signal"] is None and "edit_acc" in summary["metrics"]
    saved = torch.load(summary["run_dir"] + "/checkpoint-latest.pth", weights_only=True)
    assert saved["step"] == 2
