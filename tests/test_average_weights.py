"""scripts/average_weights.py: the mean of checkpoints of one architecture, written as shipped weights."""

from __future__ import annotations

import json

import torch
from safetensors import safe_open

from masterocr.charset import Charset
from masterocr.formats.weights import load_weights, save_weights
from masterocr.model import build_model

CHARSET = Charset.default()


def _saved(path, seed: int, preset: str = "tiny"):
    torch.manual_seed(seed)
    model = build_model(preset, CHARSET).eval()
    save_weights(model.state_dict(), model.cfg.to_dict(), CHARSET.keys, path, dtype=None, metadata={"step": seed})
    return model.state_dict()


def test_average_is_the_mean_and_loads(tmp_path, average_weights):
    a, b = _saved(tmp_path / "a.safetensors", 1), _saved(tmp_path / "b.safetensors", 2)
    out = tmp_path / "soup" / "avg.safetensors"
    rc = average_weights.main(
        [str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors"), "--out", str(out), "--dtype", "fp32"]
    )
    assert rc == 0
    got = load_weights(out)
    for k, v in a.items():
        if v.is_floating_point():
            torch.testing.assert_close(got["model_state_dict"][k], (v + b[k]) / 2)
    assert any(not torch.equal(v, b[k]) for k, v in a.items() if v.is_floating_point())  # a real mean
    with safe_open(str(out), framework="pt") as f:
        sources = json.loads(f.metadata()["averaged_from"])
    assert [s["file"] for s in sources] == ["a.safetensors", "b.safetensors"] and [s["step"] for s in sources] == [1, 2]
    assert json.loads((tmp_path / "soup" / "avg.config.json").read_text()) == got["model_config"]
    assert (tmp_path / "soup" / "avg.keys.txt").read_text() == CHARSET.keys
    # the averaged file is a working recognizer
    model = build_model("tiny", CHARSET)
    model.load_state_dict(got["model_state_dict"])


def test_average_refuses_other_architectures(tmp_path, average_weights, capsys):
    _saved(tmp_path / "tiny.safetensors", 1)
    _saved(tmp_path / "small.safetensors", 1, preset="small")
    rc = average_weights.main(
        [
            str(tmp_path / "tiny.safetensors"),
            str(tmp_path / "small.safetensors"),
            "--out",
            str(tmp_path / "x.safetensors"),
        ]
    )
    assert rc == 2
    assert "small.safetensors has another model config" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()
    rc = average_weights.main([str(tmp_path / "tiny.safetensors"), "--out", str(tmp_path / "x.safetensors")])
    assert rc == 2 and "two or more" in capsys.readouterr().err
