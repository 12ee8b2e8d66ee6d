"""What the weights were shown goes on counting when a run finetunes from them: from a checkpoint and from
shipped weights (scripts/ship_weights.py writes the counters into the safetensors metadata)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fixtures import tiny_word_config
from safetensors.torch import load_file, save_file

from masterocr.errors import UserError
from masterocr.formats.weights import read_header
from masterocr.train.config import run_settings
from masterocr.train.loop import train

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, name: str, finetune: str | None = None) -> dict:
    config = tiny_word_config(tmp_path, validate=False)
    config["trainer"].update(max_steps=2, save_dir=str(tmp_path / name))
    summary = train(run_settings(config), device="cpu", finetune=finetune)
    return torch.load(Path(summary["run_dir"]) / "checkpoint-latest.pth", weights_only=True)


def test_counters_go_on_through_shipped_weights(tmp_path):
    first = _run(tmp_path, "first")
    assert first["lines_seen"] == 4 and first["chars_seen"] == sum(first["char_views"].values()) > 0
    run_dir = next((tmp_path / "first" / "cb").iterdir())
    subprocess.run([sys.executable, str(ROOT / "scripts" / "ship_weights.py"), str(run_dir / "checkpoint-latest.pth"),
                    "--name", "x", "--out-dir", str(tmp_path), "--cpu-hours", "0.5", "--decode", "joint"], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    shipped = tmp_path / "x.safetensors"
    meta = read_header(shipped)["metadata"]
    assert (meta["lines_seen"], meta["chars_seen"], meta["cpu_hours"]) == (4, first["chars_seen"], 0.5)
    assert read_header(shipped)["model_config"]["decode"] == "joint"
    second = _run(tmp_path, "second", finetune=str(shipped))
    assert second["lines_seen"] == 8 and second["chars_seen"] == 2 * first["chars_seen"]
    assert second["char_views"] == {c: 2 * n for c, n in first["char_views"].items()}
    assert second["step"] == 2 and second["train_seconds"] > first["train_seconds"]


def test_a_weights_file_with_bad_counters_is_refused_in_one_line(tmp_path):
    good = tmp_path / "good.safetensors"
    first = _run(tmp_path, "first")
    from masterocr.formats.weights import save_weights

    save_weights(first["model_state_dict"], first["model_config"], first["charset"]["keys"], good)
    header = read_header(good)
    meta = {"format": "masterocr", "model_config": json.dumps(header["model_config"]),
            "charset": json.dumps(header["charset"]), "lines_seen": json.dumps("many")}
    bad = tmp_path / "bad.safetensors"
    save_file(load_file(str(good)), str(bad), metadata=meta)
    with pytest.raises(UserError, match="lines_seen.*not numbers"):
        _run(tmp_path, "third", finetune=str(bad))
