"""Seeding the line preset from word weights (scripts/seed_line_weights.py, model.grow.carry_classes)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from masterocr.data.build import build_dataset
from masterocr.errors import UserError
from masterocr.formats.weights import load_weights
from masterocr.model.grow import carry_classes

REPO = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("seed_line_weights", REPO / "scripts" / "seed_line_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_carry_classes_moves_shared_rows_and_keeps_fresh_ones():
    d = 3
    src = {"embed.weight": torch.arange(6 * d, dtype=torch.float).view(6, d),
           "generator.weight": torch.arange(6 * d, dtype=torch.float).view(6, d) + 100,
           "generator.bias": torch.arange(6, dtype=torch.float)}  # fmt: skip
    fresh = {"embed.weight": -torch.ones(7, d), "generator.weight": -torch.ones(7, d), "generator.bias": -torch.ones(7)}
    out = carry_classes(src, "ab", "xba", fresh)  # specials 0-3, then x (new), b (src id 5), a (src id 4)
    assert torch.equal(out["embed.weight"][:4], src["embed.weight"][:4])
    assert torch.equal(out["embed.weight"][4], -torch.ones(d))
    assert torch.equal(out["embed.weight"][5], src["embed.weight"][5])
    assert torch.equal(out["generator.weight"][6], src["generator.weight"][4])
    assert out["generator.bias"].tolist() == [0, 1, 2, 3, -1, 5, 4]


def test_seeded_line_weights_keep_the_word_models_tensors(tmp_path):
    word = REPO / "weights" / "master_medium.safetensors"
    out = tmp_path / "seed.safetensors"
    carried = _script().seed_file(word, REPO / "src/masterocr/charsets/zh_latin.txt", out)
    src, dst = load_weights(word), load_weights(out)
    assert carried == 4 + 95  # the specials and every printable ASCII character
    assert dst["model_config"]["variable_width"] and dst["model_config"]["blocks"] == [1, 1, 2, 2]
    s, t = src["model_state_dict"], dst["model_state_dict"]
    assert torch.equal(s["decoder.0.ffn.0.weight"], t["decoder.0.ffn.0.weight"])
    a_src, a_dst = 4 + src["charset"]["keys"].index("a"), 4 + dst["charset"]["keys"].index("a")
    assert torch.equal(s["generator.weight"][a_src], t["generator.weight"][a_dst])
    # an added backbone block starts as an identity: its last BatchNorm is zeroed
    assert not t["backbone.stages.2.2.bn2.weight"].any()


@pytest.mark.parametrize(
    "extra, fragment", [({"max_len": 41}, "max_len 41 exceeds"), ({"max_width": 512}, "max_width 512 exceeds")]
)
def test_line_dataset_refuses_limits_above_the_models(extra, fragment):
    from masterocr.charset import Charset

    spec = {"type": "SynthLineDataset", "args": {"length": 4, **extra}}
    with pytest.raises(UserError, match=fragment):
        build_dataset(
            spec,
            charset=Charset.default(),
            img_h=32,
            img_w=256,
            in_channels=1,
            keep_ratio=True,
            variable_width=True,
            max_len=40,
            training=True,
        )


def test_line_dataset_takes_shorter_limits():
    from masterocr.charset import Charset

    spec = {"type": "SynthLineDataset", "args": {"length": 4, "max_len": 12, "max_width": 200,
                                                 "kinds": {"latin": 1.0}}}  # fmt: skip
    ds = build_dataset(
        spec,
        charset=Charset.default(),
        img_h=32,
        img_w=256,
        in_channels=1,
        keep_ratio=True,
        variable_width=True,
        max_len=40,
        training=True,
    )
    for i in range(4):
        img, label = ds[i]
        assert img.size(-1) <= 200 and 0 < len(label) <= 12
