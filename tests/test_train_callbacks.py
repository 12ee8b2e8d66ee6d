"""Step callbacks: called after every optimizer step, after the checkpoint that step was due to write."""

from __future__ import annotations

import torch
from conftest import write_word_set

from masterocr.train.config import run_settings
from masterocr.train.loop import StepState, train


def test_callbacks_see_each_step_after_its_checkpoint(tmp_path):
    words = write_word_set(tmp_path / "words", ["cat", "dog", "sun", "tree"])
    data = {"type": "TextDataset", "args": {"txt_file": str(words / "gt.txt"), "img_root": str(words / "images")}}
    config = {
        "name": "cb", "run_id": "tiny", "seed": 3, "distributed": False, "augment": False,
        "model_arch": {"type": "MASTER", "args": {"preset": "tiny", "max_len": 8}},
        "train_dataset": data, "train_loader": {"args": {"batch_size": 2, "num_workers": 0}},
        "trainer": {"epochs": 10_000, "max_steps": 3, "save_dir": str(tmp_path / "saved"), "save_step_interval": 1,
                    "save_period": 1000, "progress": False, "do_validation": False},
    }  # fmt: skip
    seen: list[StepState] = []

    def record(state: StepState) -> None:
        saved = torch.load(state.run_dir / "checkpoint-latest.pth", weights_only=True)
        assert saved["step"] == state.step
        seen.append(state)

    summary = train(run_settings(config), device="cpu", callbacks=[record])
    assert [s.step for s in seen] == [1, 2, 3] and summary["step"] == 3
    assert {(s.rank, s.world_size, str(s.run_dir)) for s in seen} == {(0, 1, summary["run_dir"])}
    assert [(s.epoch, s.batch_in_epoch) for s in seen] == [(1, 1), (1, 2), (2, 1)]  # 4 words, batch 2
