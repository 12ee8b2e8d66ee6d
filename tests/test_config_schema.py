"""The config schema: every shipped and original config passes; each bad value is one line naming the file, the
dotted path, the value and what is allowed; unknown keys are warnings with the closest name; any JSON value at
any path gives a valid config or such an error (never another exception), and what it lets through the
settings readers take without a traceback."""

from __future__ import annotations

import copy
import inspect
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from masterocr.errors import UserError
from masterocr.metrics import Counts
from masterocr.train import optim
from masterocr.train.config import TrainSettings, charset_from_config, model_config, train_settings
from masterocr.train.schema import METRICS, SCHEMA_PATH, Trainer, ValidatedConfig, schema_text, validate_config
from masterocr.train.schema_optim import OPTIMIZER_ARGS, SCHEDULER_ARGS

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.json"))
SOURCE = "configs/x.json"


def load(name: str) -> dict:
    return json.loads((REPO / "configs" / f"{name}.json").read_text())


def mutate(cfg: dict, path: str, value: Any) -> dict:
    """A copy of `cfg` with the dotted `path` set to `value` (sections created as needed; `...` deletes)."""
    cfg = copy.deepcopy(cfg)
    node, parts = cfg, path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is ...:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return cfg


def original_config(tmp_path: Path) -> dict:
    """The original's config.json (configs/paper.json) with only its paths changed, as a user would."""
    cfg = load("paper")
    for key in ("train_dataset", "val_dataset"):
        cfg[key]["args"]["txt_file"] = str(tmp_path / "gt.txt")
        cfg[key]["args"]["img_root"] = str(tmp_path / "images")
    cfg["trainer"]["save_dir"] = str(tmp_path / "saved")
    return cfg


RICH = {  # one config that sets most of the optional keys, so that the property below reaches them
    "name": "rich", "run_id": "r1", "seed": "5", "deterministic": "false", "distributed": 0, "local_world_size": 1,
    "finetune": False, "augment": True, "n_gpu": 1,
    "model_arch": {"type": "MASTER", "args": {
        "preset": "tiny", "img_h": 32, "img_w": 128, "keep_ratio": False, "max_len": 20, "d_ff": 256,
        "widths": [8, 16, 32, 32, 64, 64], "blocks": [1, 1, 1, 1],
        "common_kwargs": {"with_encoder": "false", "model_size": 64, "multiheads": 4, "max_len": 20, "n_class": -1},
        "backbone_kwargs": {"in_channels": 1, "gcb_kwargs": {"ratio": 0.0625, "headers": 1, "att_scale": True,
                                                             "fusion_type": "channel_add",
                                                             "layers": [False, True, True, True], "all_blocks": 0}},
        "encoder_kwargs": {"stacks": 1, "dropout": 0.1, "feed_forward_size": 256, "share_parameter": False},
        "decoder_kwargs": {"stacks": 2, "dropout": 0.1, "feed_forward_size": 256, "share_parameter": "false"}}},
    "charset": {"keys": "abcdefghijklmnopqrstuvwxyz0123456789", "case_sensitive": "false", "normalize": True},
    "train_dataset": {"type": "LmdbDataset", "args": {"root": "data/lmdb", "img_w": 128, "img_h": 32,
                                                      "keep_ratio": False, "case_sensitive": False}},
    "val_dataset": {"type": "hierarchy_dataset", "args": {"lmdb_dir_root": "data", "select_data": "MJ-ST"}},
    "train_loader": {"type": "DataLoader", "args": {"batch_size": "8", "num_workers": 0, "shuffle": True}},
    "val_loader": {"args": {"batch_size": 8, "num_workers": "0", "drop_last": False, "pin_memory": "false"}},
    "optimizer": {"type": "SGD", "args": {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4}},
    "lr_scheduler": {"type": "OneCycleLR", "args": {"max_lr": 0.1, "pct_start": 0.25, "anneal_strategy": "linear"}},
    "trainer": {"epochs": "2", "max_len_step": 10, "max_steps": 0, "do_validation": "true", "validation_start_epoch": 1,
                "log_step_interval": 5, "val_step_interval": 10, "save_dir": "runs", "save_period": 1,
                "save_step_interval": 10, "monitor": "max edit_acc", "early_stop": 3, "tensorboard": False,
                "sync_batch_norm": False, "train_batch_size": 8, "val_batch_size": 8, "train_num_workers": 0,
                "val_num_workers": 0, "grad_clip": "1.0", "label_smoothing": 0.1, "amp": None, "grad_accum_steps": 2,
                "compile": False, "auto_resume": True, "nan_patience": 5, "val_max_samples": 100,
                "progress": False, "max_len": 20, "log_verbosity": 2},
}  # fmt: skip

# configs the rest of the suite and the demo train with
SUITE = {
    "e2e": {"name": "t",
            "model_arch": {"type": "MASTER", "args": {"preset": "tiny", "decoder_kwargs": {"dropout": 0.0}}},
            "train_dataset": {"type": "TextDataset", "args": {"txt_file": "gt.txt", "img_root": "images"}},
            "train_loader": {"args": {"batch_size": 12, "num_workers": 0}},
            "optimizer": {"type": "Adam", "args": {"lr": 0.002}},
            "lr_scheduler": {"type": "WarmupCosine",
                             "args": {"warmup_steps": 20, "total_steps": 400, "min_ratio": 0.05}},
            "trainer": {"epochs": 10_000, "max_steps": 250, "val_step_interval": 100, "log_step_interval": 20,
                        "save_dir": "saved", "save_step_interval": 100, "save_period": 1000, "progress": False,
                        "monitor": "max word_acc"}},
    "ddp": {"name": "ddp", "run_id": "tiny", "seed": 11, "distributed": True, "augment": False,
            "model_arch": {"type": "MASTER", "args": {"preset": "tiny", "max_len": 8}},
            "train_dataset": {"type": "JsonlDataset", "args": {"jsonl_file": "l.jsonl"}},
            "trainer": {"epochs": 100, "max_steps": 6, "monitor": "off", "grad_accum_steps": 2, "auto_resume": True}},
    "demo": {"model_arch": {"args": {"preset": "tiny"}}, "trainer": {"epochs": 2}},
}  # fmt: skip


# good configs -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_shipped_config_validates_without_a_warning(path, caplog):
    with caplog.at_level(logging.WARNING):
        cfg = validate_config(json.loads(path.read_text()), path, training=True)
    assert cfg.train_dataset is not None
    assert not caplog.records


def test_the_originals_config_with_its_paths_changed_validates_without_a_warning(tmp_path, caplog):
    cfg = original_config(tmp_path)
    cfg["model_arch"]["args"]["decoder_kwargs"]["share_parameter"] = "false"  # the original's string boolean
    cfg["_path"] = str(tmp_path / "config.json")  # what load_config adds
    with caplog.at_level(logging.WARNING):
        checked = validate_config(cfg, tmp_path / "config.json")
    assert checked.trainer.epochs == 600 and checked.optimizer.args.lr == 0.0004
    assert not caplog.records


@pytest.mark.parametrize("name", [*SUITE, "rich"])
def test_the_configs_the_suite_trains_with_validate(name, caplog):
    cfg = SUITE.get(name, RICH)
    with caplog.at_level(logging.WARNING):
        validate_config(cfg, f"{name}.json")
    assert not caplog.records
    readers_accept(cfg)


# bad configs: (base, dotted path, value, fragment of the message after "path = value: ") ------------------------------
BAD = [
    ("synth_cpu", "train_loader.args.batch_size", "abc", "must be an integer"),
    ("synth_cpu", "train_loader.args.batch_size", 0, "must be an integer from 1 to 4096"),
    ("synth_cpu", "train_loader.args.batch_size", -4, "must be an integer from 1 to 4096"),
    ("synth_cpu", "train_loader.args.batch_size", 10**30, "must be an integer from 1 to 4096"),
    ("synth_cpu", "train_loader.args.batch_size", 6.5, "must be an integer"),
    ("synth_cpu", "train_loader.args.num_workers", "abc", "must be an integer"),
    ("synth_cpu", "train_loader.args.num_workers", -1, "must be an integer from 0 to 64"),
    ("synth_cpu", "train_loader.args", "batch 8", "must be an object"),
    ("synth_cpu", "train_loader.type", "MyLoader", "must be 'DataLoader'"),
    ("synth_cpu", "optimizer.args.lr", -1, "must be > 0"),
    ("synth_cpu", "optimizer.args.lr", "fast", "must be a number"),
    ("synth_cpu", "optimizer.args.lr", True, "must be a number"),
    ("synth_cpu", "optimizer.args.lr", float("nan"), "must be a finite number"),
    ("synth_cpu", "optimizer.args.betaz", [0.9, 0.99], 'unknown argument of AdamW (did you mean "betas"?)'),
    ("synth_cpu", "optimizer.args.betas", [0.9], "must have at least 2 entries"),
    ("synth_cpu", "optimizer.type", "Adamax", "optimizer must be one of Adam, AdamW, SGD"),
    ("synth_cpu", "optimizer", [1], "must be an object"),
    ("synth_cpu", "lr_scheduler", {"type": "StepLR"}, "required by StepLR"),
    ("synth_cpu", "lr_scheduler", {"type": "MultiStepLR", "args": {}}, "required by MultiStepLR"),
    ("synth_cpu", "lr_scheduler", {"type": "OneCycleLR", "args": None}, "required by OneCycleLR"),
    ("synth_cpu", "lr_scheduler.type", "Cosine", "lr_scheduler must be one of null, StepLR"),
    ("synth_cpu", "lr_scheduler.args.warmup", 100, 'unknown argument of WarmupCosine (did you mean "warmup_steps"?)'),
    ("synth_cpu", "lr_scheduler.args.min_ratio", 2, "must be a number from 0 to 1"),
    ("synth_cpu", "trainer.max_steps", "100", "must be an integer"),
    ("synth_cpu", "trainer.max_steps", [100], "must be an integer"),
    ("synth_cpu", "trainer.max_steps", -1, "must be an integer from 0 to 1000000000"),
    ("synth_cpu", "trainer.log_step_interval", 0, "must be an integer from 1 to 1000000000"),
    ("synth_cpu", "trainer.val_step_interval", 0, "must be an integer from 1 to"),
    ("synth_cpu", "trainer.save_step_interval", 0, "must be an integer from 1 to"),
    ("synth_cpu", "trainer.epochs", -1, "must be an integer from 1 to"),
    ("synth_cpu", "trainer.epochs", "many", "must be an integer"),
    ("synth_cpu", "trainer.epochs", None, "must be an integer"),
    ("synth_cpu", "trainer.amp", "int4", "must be 'bf16' or 'fp16'"),
    ("synth_cpu", "trainer.grad_clip", "big", "must be a number"),
    ("synth_cpu", "trainer.label_smoothing", 1, "must be < 1"),
    ("synth_cpu", "trainer.tensorboard", "maybe", "must be true or false"),
    ("synth_cpu", "trainer.monitor", "max loss", 'must be "off" or "max"/"min" and a metric: word_acc'),
    ("synth_cpu", "trainer.save_dir", "configs/paper.json", "configs/paper.json is a file; give a folder"),
    ("synth_cpu", "trainer.save_dir", "configs/paper.json/sub", "configs/paper.json is a file; give a folder"),
    ("synth_cpu", "trainer.save_dir", "", "must not be empty"),
    ("synth_cpu", "trainer", "fast", "must be an object"),
    ("synth_cpu", "trainer", None, "must be an object"),
    ("synth_cpu", "train_dataset", ["a.txt"], 'must be an object {"type": ..., "args": {...}}'),
    ("synth_cpu", "train_dataset.type", "CsvDataset", "dataset type must be one of TextDataset"),
    ("synth_cpu", "train_dataset.args", "big", "must be an object"),
    ("synth_cpu", "train_dataset.args.length", 0, "must be an integer from 1 to"),
    ("synth_cpu", "train_dataset.args.fonts", "test", "must be 'train', 'heldout' or 'all'"),
    ("synth_cpu", "train_dataset.args.img_w", "wide", "must be an integer"),
    ("synth_cpu", "train_dataset.args.training", "false", "must be true or false"),
    ("synth_cpu", "train_dataset.args.lenght", 5, 'unknown argument of SynthDataset (did you mean "length"?)'),
    ("synth_cpu", "charset", 5, "must be an object"),
    ("synth_cpu", "charset", "", "must not be empty"),
    ("synth_cpu", "charset.keys", "", "must not be empty"),
    ("synth_cpu", "charset.keys", ["a", "b"], "must be a string"),
    ("synth_cpu", "charset.keys_file", "a\0b", "a path cannot contain a NUL character"),
    ("synth_cpu", "model_arch.args", "small", "must be an object"),
    ("synth_cpu", "model_arch.args.preset", "huge", "must be 'paper', 'medium', 'large', 'small', 'tiny' or 'line'"),
    ("synth_cpu", "model_arch.args.img_w", "wide", "must be an integer"),
    ("synth_cpu", "model_arch.args.img_h", 50, "must be a multiple of 8"),
    ("synth_cpu", "model_arch.args.widths", [1, 2, 3], "must have at least 6 entries"),
    ("synth_cpu", "model_arch.args.max_len", None, "must be an integer"),
    ("synth_cpu", "model_arch.args.common_kwargs.multiheads", 0, "must be an integer from 1 to 64"),
    ("synth_cpu", "model_arch.args.common_kwargs.model_size", "big", "must be an integer"),
    ("synth_cpu", "model_arch.type", "CRNN", "must be 'MASTER'"),
    ("synth_cpu", "seed", "abc", "must be an integer"),
    ("synth_cpu", "name", 5, "must be a string"),
    ("synth_cpu", "augment", "false", "must be true or false"),
    ("paper", "train_dataset.args.txt_file", ..., "is missing (required by TextDataset)"),
    ("paper", "train_dataset.args.split", "", "must not be empty"),
    ("paper", "train_dataset.type", ..., "dataset type must be one of"),
    ("paper", "model_arch.args.backbone_kwargs.gcb_kwargs.layers", [True], "must have at least 4 entries"),
    ("paper", "model_arch.args.backbone_kwargs.gcb_kwargs.fusion_type", "sum", "must be 'channel_concat'"),
    ("paper", "model_arch.args.decoder_kwargs.dropout", 1.5, "must be < 1"),
    ("paper", "model_arch.args.decoder_kwargs.share_parameter", "sometimes", "must be true or false"),
    ("paper", "local_world_size", 0, "must be an integer from 1 to 64"),
    ("paper", "val_dataset", {"type": "LmdbDataset", "args": {}}, "LmdbDataset needs root (or lmdb_dir_root)"),
]


@pytest.mark.parametrize(("base", "path", "value", "fragment"), BAD, ids=[f"{p}={v!r}"[:60] for _, p, v, _ in BAD])
def test_a_bad_value_is_one_line_naming_the_file_the_path_and_what_is_allowed(base, path, value, fragment):
    with pytest.raises(UserError) as exc:
        validate_config(mutate(load(base), path, value), SOURCE)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{SOURCE}: ")
    assert fragment in msg
    assert msg.split(": ", 1)[1].startswith(path.rsplit(".", 1)[0])  # the path (or its section, for a section)


def test_the_message_has_the_value_and_counts_the_other_errors():
    cfg = mutate(mutate(load("synth_cpu"), "optimizer.args.lr", -1), "trainer.epochs", 0)
    with pytest.raises(UserError, match=r"^configs/x.json: optimizer.args.lr = -1: must be > 0 \(and 1 more\)$"):
        validate_config(cfg, SOURCE)
    with pytest.raises(UserError, match=r"trainer.log_step_interval = 0: must be an integer from 1 to 1000000000$"):
        validate_config(mutate(load("synth_cpu"), "trainer.log_step_interval", 0), SOURCE)


def test_a_config_that_is_not_an_object_or_has_no_training_set_is_one_line():
    with pytest.raises(UserError, match="must be a JSON object"):
        validate_config([1, 2], SOURCE)
    with pytest.raises(UserError, match="train_dataset is missing"):
        validate_config(SUITE["demo"], SOURCE, training=True)


# unknown keys ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "hint"), [
    ("trainer.epoch", 'unknown key trainer.epoch (did you mean "epochs"?)'),
    ("trainer.max_step", 'unknown key trainer.max_step (did you mean "max_steps"?)'),
    ("optimiser", 'unknown key optimiser (did you mean "optimizer"?)'),
    ("model_arch.args.common_kwargs.multihead", 'common_kwargs.multihead (did you mean "multiheads"?)'),
    ("train_loader.args.batchsize", 'train_loader.args.batchsize (did you mean "batch_size"?)'),
    ("charset.zzz", "unknown key charset.zzz: nothing reads it"),
])  # fmt: skip
def test_an_unknown_key_is_an_error_with_the_closest_name(path, hint):
    with pytest.raises(UserError) as exc:
        validate_config(mutate(load("synth_cpu"), path, 3), SOURCE)
    assert str(exc.value).startswith(f"{SOURCE}: unknown key ") and hint in str(exc.value)
    assert "\n" not in str(exc.value)


# the schema against its readers -----------------------------------------------------------------------------------
def test_optimizer_and_scheduler_arguments_are_the_torch_constructors_arguments():
    for kind, args in OPTIMIZER_ARGS.items():
        params = set(inspect.signature(optim.OPTIMIZERS[kind]).parameters) - {"params"}
        assert set(args.model_fields) == params, kind
    for kind, args in SCHEDULER_ARGS.items():
        if kind in ("StepLR", "MultiStepLR", "OneCycleLR"):
            params = set(inspect.signature(getattr(torch.optim.lr_scheduler, kind)).parameters) - {"optimizer"}
            assert set(args.model_fields) == params, kind


def test_every_key_the_settings_read_is_in_the_schema():
    assert TrainSettings is Trainer  # the loop reads the schema's model itself
    top = {"name", "run_id", "seed", "deterministic", "distributed", "local_world_size"}  # train_settings' top keys
    assert top <= set(ValidatedConfig.model_fields)
    assert set(METRICS) == {k for k, v in Counts().metrics().items() if isinstance(v, float)}  # what monitor names


def test_the_committed_json_schema_is_current():
    """Regenerate with `python -m masterocr.train.schema > docs/config.schema.json`."""
    assert (REPO / SCHEMA_PATH).read_text(encoding="utf-8") == schema_text()
    schema = json.loads(schema_text())
    assert schema["properties"]["trainer"]["$ref"] == "#/$defs/Trainer"
    assert "description" in schema["$defs"]["Trainer"]["properties"]["log_step_interval"]


# property: any JSON value at any path ---------------------------------------------------------------------------------
def paths(node: Any, prefix: str = "") -> list[str]:
    """Every dotted path of `node`'s dict keys (lists are leaves)."""
    out = []
    for key, value in node.items() if isinstance(node, dict) else ():
        out.append(prefix + key)
        out += paths(value, f"{prefix}{key}.")
    return out


BASES = {"synth_cpu": load("synth_cpu"), "paper": load("paper"), "rich": RICH}
TARGETS = [(name, p) for name, cfg in BASES.items() for p in paths(cfg)]
SCALARS = (st.none() | st.booleans() | st.integers(-3, 3) | st.integers() | st.floats(allow_nan=True)
           | st.sampled_from(["", "abc", "0", "-1", "7", "1e-3", "true", "false", "off", "max word_acc", "tiny",
                              "bf16", "configs", "Adam", "StepLR", "TextDataset"]) | st.text(max_size=8))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=8)


def readers_accept(cfg: dict) -> None:
    """What the settings code does with a config before it builds the model and the data."""
    train_settings(cfg)
    model_config(cfg)
    charset_from_config(cfg)
    s = train_settings(cfg)
    opt = optim.build_optimizer(torch.nn.Linear(2, 2), s.optimizer)
    optim.build_scheduler(opt, s.lr_scheduler, 100)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=st.sampled_from(TARGETS), value=JSON, key=st.none() | st.sampled_from(["extra", "type", "args", "lr"]))
def test_any_json_value_at_any_path_is_valid_or_one_line_user_error(target, value, key):
    name, path = target
    if key is not None and isinstance(_get(BASES[name], path), dict):
        path = f"{path}.{key}"  # a key inside a section: a new one or one it has
    cfg = mutate(BASES[name], path, value)
    try:
        validate_config(cfg, SOURCE)
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(SOURCE)
        return
    try:
        readers_accept(cfg)
    except UserError as exc:  # checks across fields (d_model % nhead, a keys file to read) stay with the readers
        assert "\n" not in str(exc)


def _get(cfg: dict, path: str) -> Any:
    for part in path.split("."):
        cfg = cfg[part]
    return cfg


def test_train_check_validates_and_exits_without_training(tmp_path, capsys):
    from masterocr.cli import main

    assert main(["train", "-c", "configs/synth_cpu.json", "--check"]) == 0
    assert "the config is valid" in capsys.readouterr().out
    bad = json.loads(Path("configs/synth_cpu.json").read_text())
    bad["trainer"]["save_dir"] = str(tmp_path / "runs")
    bad["train_loader"]["args"]["batch_size"] = "abc"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert main(["train", "-c", str(path), "--check"]) == 2
    err = capsys.readouterr().err.strip()
    assert "train_loader.args.batch_size" in err and "\n" not in err and not (tmp_path / "runs").exists()


def test_the_trainer_keys_in_docs_training_md_are_current():
    """Regenerate with `python -m masterocr.train.schema_doc`: every trainer key documented, with its bounds."""
    from masterocr.train.schema_doc import DOC_PATH, doc_text

    text = (REPO / DOC_PATH).read_text(encoding="utf-8")
    assert text == doc_text(text)
    for key in Trainer.model_fields:
        assert f"| `{key}` |" in text
    assert "| `train_batch_size` | integer >= 1 and <= 4096 | 64 |" in text
