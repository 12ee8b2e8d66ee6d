"""Config: the original's schema maps onto typed settings; overrides; defects of the original fixed."""

import json
from pathlib import Path

import pytest

from masterocr.errors import UserError
from masterocr.train.config import apply_overrides, charset_from_config, load_config, model_config, train_settings

ORIGINAL_MODEL_ARCH = {
    "type": "MASTER",
    "args": {
        "common_kwargs": {"n_class": -1, "with_encoder": False, "model_size": 512, "multiheads": 8},
        "backbone_kwargs": {"in_channels": 3, "gcb_kwargs": {"ratio": 0.0625, "headers": 1, "att_scale": True,
                                                             "fusion_type": "channel_concat",
                                                             "layers": [False, True, True, True]}},
        "encoder_kwargs": {"stacks": 3, "dropout": 0.2, "feed_forward_size": 2048},
        "decoder_kwargs": {"stacks": 3, "dropout": 0.2, "feed_forward_size": 2048},
    },
}


def test_original_model_arch_gives_the_paper_config_without_shared_layers():
    cfg = {"model_arch": ORIGINAL_MODEL_ARCH,
           "train_dataset": {"type": "TextDataset", "args": {"txt_file": "l.txt", "img_w": 160, "img_h": 48}}}
    mc = model_config(cfg)
    assert (mc.d_model, mc.nhead, mc.d_ff, mc.num_decoder_layers, mc.img_h, mc.img_w) == (512, 8, 2048, 3, 48, 160)
    assert mc.share_parameter is False  # the original's missing key became the truthy string 'false'
    assert mc.with_encoder is False


def test_string_booleans_are_parsed_not_truthy():
    arch = json.loads(json.dumps(ORIGINAL_MODEL_ARCH))
    arch["args"]["decoder_kwargs"]["share_parameter"] = "false"
    assert model_config({"model_arch": arch}).share_parameter is False


def test_preset_and_overrides(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"model_arch": {"args": {"preset": "tiny"}}, "trainer": {"epochs": 2}}))
    cfg = apply_overrides(load_config(p), ["trainer.epochs=5", "trainer.amp=bf16", "name=run"])
    s = train_settings(cfg)
    assert (s.epochs, s.amp, s.name) == (5, "bf16", "run")
    assert model_config(cfg).d_model == 64


def test_bad_configs_give_one_clear_error(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text("{ not json")
    with pytest.raises(UserError, match="broken.json"):
        load_config(p)
    with pytest.raises(UserError, match="missing.json"):
        load_config(tmp_path / "missing.json")
    with pytest.raises(UserError, match="amp"):
        train_settings({"trainer": {"amp": "int4"}})
    with pytest.raises(UserError, match="seed"):
        train_settings({"seed": "abc"})
    assert train_settings({"seed": "7", "trainer": {"epochs": "3"}}).seed == 7
    with pytest.raises(UserError, match="key=value"):
        apply_overrides({}, ["novalue"])


def test_charset_section_reads_keys_file_relative_to_config(tmp_path):
    (tmp_path / "keys.txt").write_text("abc")
    cs = charset_from_config({"charset": {"keys_file": "keys.txt", "case_sensitive": False}}, tmp_path)
    assert cs.keys == "abc" and cs.case_sensitive is False
    assert len(charset_from_config({})) == 99


@pytest.mark.parametrize("name", ["synth_cpu", "synth_cpu_medium", "synth_gpu_medium"])
def test_the_recipes_of_the_shipped_weights_build_their_presets(name):
    """Each shipped model's recipe in configs/ gives the architecture of the weights shipped beside it."""
    repo = Path(__file__).resolve().parents[1]
    cfg = load_config(repo / "configs" / f"{name}.json")
    shipped = json.loads((repo / "weights" / f"master_{cfg['run_id']}.config.json").read_text())
    assert model_config(cfg).to_dict() == shipped
    s = train_settings(cfg)
    assert s.max_steps == cfg["lr_scheduler"]["args"]["total_steps"]  # one cosine over the whole run
