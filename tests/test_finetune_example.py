"""configs/finetune_example.json, as the README's "Train on your own data" runs it: a folder of labelled crops in
the original's txt format, the shipped model finetuned on it through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from masterocr import Recognizer
from masterocr.cli import main
from masterocr.model import get_preset

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "configs" / "finetune_example.json"
SHIPPED = REPO / "weights" / "master_medium.safetensors"  # the path the README's command names


def test_the_template_reads_txt_labels_and_starts_from_the_shipped_model():
    cfg = json.loads(EXAMPLE.read_text())
    preset = cfg["model_arch"]["args"]["preset"]
    assert get_preset(preset) == Recognizer.from_checkpoint(SHIPPED).cfg  # every tensor of the shipped model fits
    for which in ("train_dataset", "val_dataset"):
        assert cfg[which]["type"] == "TextDataset"
        assert {"txt_file", "img_root"} <= set(cfg[which]["args"])


def test_two_finetuning_steps_on_a_labelled_folder_write_a_checkpoint(word_set, tmp_path, capsys):
    cfg = json.loads(EXAMPLE.read_text())
    for which in ("train_dataset", "val_dataset"):  # the two paths a user edits
        cfg[which]["args"].update(txt_file=str(word_set / "gt.txt"), img_root=str(word_set / "images"))
    cfg["trainer"]["save_dir"] = str(tmp_path / "runs")
    path = tmp_path / "finetune.json"
    path.write_text(json.dumps(cfg))
    quick = ["trainer.max_steps=2", "train_loader.args.num_workers=0", "val_loader.args.num_workers=0",
             "trainer.progress=false"]  # fmt: skip
    assert main(["train", "-c", str(path), "-r", str(SHIPPED), "--finetune", "-d", "cpu", "--set", *quick]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    run_dir = Path(summary["run_dir"])
    assert summary["step"] == 2 and run_dir.is_relative_to(tmp_path / "runs")
    assert (run_dir / "checkpoint-latest.pth").exists() and (run_dir / "model_best.pth").exists()
    tuned = Recognizer.from_checkpoint(run_dir / "model_best.pth")
    assert tuned.cfg == get_preset("medium")
    assert len(tuned.predict([word_set / "images" / "000.png"])) == 1

    # model_best.pth: what predicting and finetuning need, without the optimizer's state (a third of the size);
    # resuming reads checkpoint-latest.pth, and model_best.pth says so
    best = torch.load(run_dir / "model_best.pth", weights_only=True)
    latest = torch.load(run_dir / "checkpoint-latest.pth", weights_only=True)
    assert not {"optimizer", "lr_scheduler", "scaler", "rng"} & set(best) and isinstance(latest["optimizer"], dict)
    assert {"model_state_dict", "model_config", "charset", "config", "step"} <= set(best)
    size = (run_dir / "model_best.pth").stat().st_size
    assert size < (run_dir / "checkpoint-latest.pth").stat().st_size / 2
    capsys.readouterr()
    assert main(["train", "-c", str(path), "-r", str(run_dir / "model_best.pth"), "--set", *quick]) == 2
    assert "holds weights only" in capsys.readouterr().err
    assert main(["train", "-c", str(path), "-r", str(run_dir / "model_best.pth"), "--finetune", "--set",
                 *quick]) == 0
