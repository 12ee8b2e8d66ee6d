"""Training a variable-width (line) model: batches of mixed widths are padded, and the padding is masked."""

from __future__ import annotations

import torch
from conftest import write_word_set

from masterocr.data import collate
from masterocr.data.transforms import pad_batch
from masterocr.train.config import run_settings
from masterocr.train.loop import Trainer


def _config(tmp_path, data: dict) -> dict:
    return {
        "name": "lines", "run_id": "tiny", "seed": 5, "distributed": False, "augment": False,
        "model_arch": {"type": "MASTER", "args": {"preset": "tiny", "img_w": 256, "keep_ratio": True,
                                                   "variable_width": True, "max_len": 16}},
        "train_dataset": data, "train_loader": {"args": {"batch_size": 3, "num_workers": 0}},
        "trainer": {"epochs": 10, "max_steps": 2, "save_dir": str(tmp_path / "saved"), "save_step_interval": 1,
                    "progress": False, "do_validation": False},
    }  # fmt: skip


def _loss_alone(trainer: Trainer, img: torch.Tensor, label: str) -> torch.Tensor:
    padded, widths = pad_batch([img])
    return trainer._loss(padded, [label], widths)


def test_padded_batch_loss_matches_each_line_alone(tmp_path):
    words = ["a", "elephants", "cat"]
    root = write_word_set(tmp_path / "words", words)
    data = {"type": "TextDataset", "args": {"txt_file": str(root / "gt.txt"), "img_root": str(root / "images")}}
    trainer = Trainer(run_settings(_config(tmp_path, data)), device="cpu")
    try:
        trainer.model.eval()  # no dropout: the losses are comparable
        items = [trainer.data.train_ds[i] for i in range(len(words))]
        assert len({img.size(-1) for img, _ in items}) > 1, "the fixture must give lines of different widths"
        batch = collate(items)
        assert batch.widths is not None
        with torch.no_grad():
            # alone = as the recognizers read one line: padded to the backbone's stride, its width passed
            alone = [_loss_alone(trainer, img, label) for img, label in items]
            lengths = [trainer.charset.label_length(label) + 1 for _, label in items]  # text + EOS
            expected = sum(loss * n for loss, n in zip(alone, lengths)) / sum(lengths)
            padded = trainer._loss(batch.images, batch.labels, batch.widths)
            unmasked = trainer._loss(batch.images, batch.labels)
        assert torch.allclose(padded, expected, atol=1e-4), (padded, expected)
        assert not torch.allclose(unmasked, expected, atol=1e-4)  # without the widths the padding leaks in
    finally:
        trainer.close()


def test_line_model_trains_two_steps(tmp_path):
    root = write_word_set(tmp_path / "words", ["a", "elephants", "cat", "go"])
    data = {"type": "TextDataset", "args": {"txt_file": str(root / "gt.txt"), "img_root": str(root / "images")}}
    trainer = Trainer(run_settings(_config(tmp_path, data)), device="cpu")
    try:
        summary = trainer.fit()
    finally:
        trainer.close()
    assert summary["step"] == 2 and summary["bad_samples"] == 0


def test_pooled_ctc_run_counts_what_it_showed_and_resumes_it(tmp_path):
    """Width pools, the CTC branch and the run's counts of lines, characters and views per character: kept in
    the checkpoint and restored on resume."""
    words = ["a", "elephants", "cat", "go", "tiger", "bee"]
    root = write_word_set(tmp_path / "words", words)
    data = {"type": "TextDataset", "args": {"txt_file": str(root / "gt.txt"), "img_root": str(root / "images")}}
    config = _config(tmp_path, data)
    config["model_arch"]["args"]["ctc_weight"] = 0.5
    config["train_loader"]["args"]["batch_size"] = 1
    config["trainer"].update({"bucket_pool": 3, "max_steps": 4, "auto_resume": True})
    trainer = Trainer(run_settings(config), device="cpu")
    try:
        trainer.fit()
        state = trainer.state
    finally:
        trainer.close()
    assert state.lines_seen == 4 and state.chars_seen > 0
    assert sum(state.char_views.values()) == state.chars_seen  # no spaces in these labels
    assert state.train_seconds > 0
    config["trainer"]["max_steps"] = 6
    resumed = Trainer(run_settings(config), device="cpu")
    try:
        assert resumed.state.step == 4 and resumed.state.char_views == state.char_views
        resumed.fit()
        assert resumed.state.lines_seen == 6  # one epoch of 6 words: every word shown once
        assert sorted(resumed.state.char_views.items()) == sorted(
            {c: sum(w.count(c) for w in words) for c in set("".join(words))}.items())
    finally:
        resumed.close()
