"""End to end: train tiny on generated words until it reads them, resume, predict a folder, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from masterocr.cli import main
from masterocr.formats.checkpoint import load_checkpoint
from masterocr.runtime.torch import Recognizer


def tiny_config(word_set: Path, save_dir: Path, steps: int) -> dict:
    data = {"type": "TextDataset", "args": {"txt_file": str(word_set / "gt.txt"),
                                            "img_root": str(word_set / "images"), "split": ","}}
    return {
        "name": "e2e", "run_id": "tiny", "seed": 7, "distributed": False, "augment": False,
        "model_arch": {"type": "MASTER", "args": {"preset": "tiny", "decoder_kwargs": {"dropout": 0.0}}},
        "train_dataset": data, "val_dataset": data,
        "train_loader": {"args": {"batch_size": 12, "num_workers": 0}},
        "val_loader": {"args": {"batch_size": 12, "num_workers": 0}},
        "optimizer": {"type": "Adam", "args": {"lr": 0.002}},
        "lr_scheduler": {"type": "WarmupCosine", "args": {"warmup_steps": 20, "total_steps": 400, "min_ratio": 0.05}},
        "trainer": {"epochs": 10_000, "max_steps": steps, "val_step_interval": 100, "log_step_interval": 20,
                    "save_dir": str(save_dir), "save_step_interval": 100, "save_period": 1000, "train_num_workers": 0,
                    "val_num_workers": 0, "progress": False, "monitor": "max word_acc"},
    }


def test_tiny_learns_its_words_then_resumes_predicts_and_evaluates(word_set, tmp_path, capsys):
    cfg_path = tmp_path / "tiny.json"
    cfg_path.write_text(json.dumps(tiny_config(word_set, tmp_path / "saved", steps=250)))
    assert main(["train", "-c", str(cfg_path), "-d", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    run_dir = Path(summary["run_dir"])
    assert summary["step"] == 250
    latest = load_checkpoint(run_dir / "checkpoint-latest.pth")
    for key in ("arch", "epoch", "model_state_dict", "optimizer", "monitor_best", "config", "lr_scheduler", "rng"):
        assert key in latest
    assert (run_dir / "config.json").exists() and (run_dir / "model_best.pth").exists()
    # every checkpoint loads under weights_only=True
    for p in run_dir.glob("*.pth"):
        torch.load(p, weights_only=True)

    # resume: continues from step 250 in the same run folder
    assert main(["train", "-c", str(cfg_path), "-r", str(run_dir / "checkpoint-latest.pth"),
                 "--set", "trainer.max_steps=400"]) == 0
    summary2 = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary2["step"] == 400 and summary2["run_dir"] == str(run_dir)
    assert summary2["metrics"]["word_acc"] == 1.0

    # predict the training images and evaluate: it reads them all
    out_dir = tmp_path / "pred"
    assert main(["predict", "--checkpoint", str(run_dir / "model_best.pth"), "--img_folder",
                 str(word_set / "images"), "--output_folder", str(out_dir), "--batch_size", "5"]) == 0
    results = json.loads((out_dir / "predict_result.json").read_text())
    assert len(results) == 12 and {"filename", "result", "pred_score"} <= set(results[0])
    capsys.readouterr()
    assert main(["eval", "--predict-path", str(out_dir / "predict_result.json"), "--label-path",
                 str(word_set / "labels.jsonl"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["word_acc"] == 1.0 and metrics["edit_acc"] == 1.0

    # the Python API agrees
    rec = Recognizer.from_checkpoint(run_dir / "model_best.pth")
    preds = rec.predict([word_set / "images" / "000.png", word_set / "images" / "003.png"])
    assert [p.text for p in preds] == ["cat", "HOUSE"]
    assert all(0 < p.score <= 1 and len(p.char_scores) == len(p.text) for p in preds)
