"""Hostile training configs through the command line (`masterocr train -c CONFIG [--check]`, cli.main in-process).

Each case is one row: how the config (or the command line) is changed, the exit code, and a fragment of the one
line on stderr. A bad config exits 2 with exactly one line `masterocr train: error: FILE: path = value: what is
allowed`, before any run folder is made; never a traceback. tests/test_config_schema.py covers the schema
itself; this file covers the command end to end: the file checks before anything is built (dataset paths,
save_dir, checkpoint, a meta-device build of the model), the `--check` summary, the unknown-key warnings, the
out-of-vocabulary warning and a 2-step run.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import typing
from pathlib import Path
from typing import Any

import pytest
from fixtures import write_word_set
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from masterocr.cli import main
from masterocr.data.lmdb import lmdb_from_labels

WORDS = ["cab", "bad", "ace", "dab"]
DELETE = object()  # a mutation value: remove the key


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A 4-word set (gt.txt, labels.jsonl, images/), a plain file, an empty folder and a FIFO."""
    root = tmp_path_factory.mktemp("hostile_train")
    write_word_set(root, WORDS)
    (root / "plain.txt").write_text("not a folder\n")
    (root / "empty").mkdir()
    (root / "empty_keys.txt").write_text("\n")
    os.mkfifo(root / "fifo")
    lmdb_from_labels(root / "gt.txt", root / "images", root / "lmdbs" / "one")
    return root


def base(root: Path, out: Path) -> dict[str, Any]:
    """A valid config that trains the tiny preset on the 4 words of `root` (2 steps of batch 2) into out/runs."""
    return {
        "name": "hostile", "run_id": "r", "distributed": False, "seed": 1,
        "model_arch": {"type": "MASTER", "args": {"preset": "tiny"}},
        "charset": {"keys": "abcde"},
        "train_dataset": {"type": "TextDataset", "args": {"txt_file": str(root / "gt.txt"),
                                                          "img_root": str(root / "images")}},
        "train_loader": {"type": "DataLoader", "args": {"batch_size": 2, "num_workers": 0}},
        "optimizer": {"type": "Adam", "args": {"lr": 0.001}},
        "lr_scheduler": {"type": "WarmupCosine", "args": {"warmup_steps": 1}},
        "trainer": {"epochs": 1, "max_steps": 2, "save_dir": str(out / "runs"), "progress": False,
                    "do_validation": True, "monitor": "off", "log_step_interval": 1, "save_step_interval": 10},
    }  # fmt: skip


def mutate(cfg: dict, path: str, value: Any) -> dict:
    """A copy of `cfg` with dotted `path` set to `value` (DELETE removes it); sections are created as needed."""
    cfg = copy.deepcopy(cfg)
    node, parts = cfg, path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is DELETE:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
    return cfg


def run_cli(root: Path, cfg: Any, *extra: str, name: str = "config.json", text: str | None = None) -> list[str]:
    path = root / name
    path.write_text(json.dumps(cfg) if text is None else text, encoding="utf-8")
    return ["train", "-c", str(path), *extra]


def one_line_error(err: str, code: int) -> str:
    """The single error line on stderr (asserting there is exactly one and no traceback)."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith("masterocr train: error: "), lines[0]
    assert code == 2
    return lines[0]


# (name, dotted path, value, fragment of the error line)
W = "__world__"  # in string values: replaced by the world folder
CONFIG_CASES = [
    ("batch_size abc", "train_loader.args.batch_size",
     "abc", 'train_loader.args.batch_size = "abc": must be an integer'),
    ("batch_size 0", "train_loader.args.batch_size", 0, "train_loader.args.batch_size = 0: must be an integer from 1"),
    ("batch_size -4", "train_loader.args.batch_size", -4, "batch_size = -4: must be an integer from 1"),
    ("num_workers abc", "train_loader.args.num_workers", "abc",
     "train_loader.args.num_workers = \"abc\": must be an integer"),
    ("num_workers -1", "train_loader.args.num_workers", -1, "num_workers = -1: must be an integer from 0"),
    ("train_loader.args string", "train_loader.args", "batch 8", 'train_loader.args = "batch 8": must be an object'),
    ("lr negative", "optimizer.args.lr", -0.1, "optimizer.args.lr = -0.1: must be > 0"),
    ("lr zero", "optimizer.args.lr", 0, "optimizer.args.lr = 0: must be > 0"),
    ("lr text", "optimizer.args.lr", "fast", 'optimizer.args.lr = "fast": must be a number'),
    ("lr boolean", "optimizer.args.lr", True, "optimizer.args.lr = true: must be a number"),
    ("unknown optimizer argument", "optimizer.args.momentum", 0.9,
     "optimizer.args.momentum = 0.9: unknown argument of Adam"),
    ("misspelt optimizer argument", "optimizer.args.weight_decy", 0.1, 'did you mean "weight_decay"?'),
    ("optimizer type", "optimizer.type", "Adamax", "optimizer must be one of Adam, AdamW, SGD"),
    ("StepLR without step_size", "lr_scheduler", {"type": "StepLR"},
     "lr_scheduler.args.step_size is missing (required by StepLR)"),
    ("OneCycleLR without max_lr", "lr_scheduler", {"type": "OneCycleLR", "args": {}},
     "lr_scheduler.args.max_lr is missing (required by OneCycleLR)"),
    ("MultiStepLR without milestones", "lr_scheduler", {"type": "MultiStepLR", "args": {"gamma": 0.5}},
     "milestones is missing"),
    ("scheduler type", "lr_scheduler.type", "Cosine", "lr_scheduler must be one of"),
    ("max_steps string", "trainer.max_steps", "10", 'trainer.max_steps = "10": must be an integer'),
    ("max_steps list", "trainer.max_steps", [10], "trainer.max_steps = [10]: must be an integer"),
    ("log_step_interval 0", "trainer.log_step_interval", 0, "trainer.log_step_interval = 0: must be an integer from 1"),
    ("val_step_interval 0", "trainer.val_step_interval", 0, "trainer.val_step_interval = 0: must be an integer from 1"),
    ("save_step_interval 0", "trainer.save_step_interval", 0, "save_step_interval = 0: must be an integer from 1"),
    ("save_period 0", "trainer.save_period", 0, "trainer.save_period = 0: must be an integer from 1"),
    ("epochs -1", "trainer.epochs", -1, "trainer.epochs = -1: must be an integer from 1"),
    ("epochs 0", "trainer.epochs", 0, "trainer.epochs = 0: must be an integer from 1"),
    ("trainer string", "trainer", "fast", 'trainer = "fast": must be an object'),
    ("trainer list", "trainer", [1, 2], "trainer = [1, 2]: must be an object"),
    ("trainer null", "trainer", None, "trainer = null: must be an object"),
    ("train_dataset string", "train_dataset", "gt.txt", 'train_dataset = "gt.txt": must be an object {"type"'),
    ("train_dataset list", "train_dataset", [1], 'train_dataset = [1]: must be an object {"type"'),
    ("train_dataset type", "train_dataset.type", "CsvDataset", "dataset type must be one of TextDataset"),
    ("TextDataset without txt_file", "train_dataset.args.txt_file", DELETE,
     "txt_file is missing (required by TextDataset)"),
    ("charset number", "charset", 5, "charset = 5: must be an object"),
    ("charset list", "charset", ["a"], 'charset = ["a"]: must be an object'),
    ("empty keys", "charset.keys", "", 'charset.keys = "": must not be empty'),
    ("keys and keys_file", "charset.keys_file", "keys.txt", "give keys or keys_file, not both"),
    ("keys_file empty", "charset", {"keys_file": f"{W}/empty_keys.txt"}, "the charset is empty"),
    ("keys_file missing", "charset", f"{W}/no_keys.txt", "no_keys.txt cannot be read (No such file"),
    ("model_arch.args string", "model_arch.args", "tiny", 'model_arch.args = "tiny": must be an object'),
    ("model_arch.args list", "model_arch.args", [], "model_arch.args = []: must be an object"),
    ("multiheads 0", "model_arch.args.common_kwargs.multiheads", 0, "multiheads = 0: must be an integer from 1"),
    ("preset unknown", "model_arch.args.preset", "huge", "model_arch.args.preset = \"huge\": must be 'paper'"),
    ("model img_w wide", "model_arch.args.img_w", "wide", 'model_arch.args.img_w = "wide": must be an integer'),
    ("dataset img_w wide", "train_dataset.args.img_w", "wide", 'train_dataset.args.img_w = "wide": must be an integer'),
    ("img_h not a multiple of 8", "model_arch.args.img_h", 50, "model_arch.args.img_h = 50: must be a multiple of 8"),
    ("amp int4", "trainer.amp", "int4", "trainer.amp = \"int4\": must be 'bf16' or 'fp16'"),
    ("monitor loss", "trainer.monitor", "max loss", 'trainer.monitor = "max loss": must be "off"'),
    ("seed text", "seed", "abc", 'seed = "abc": must be an integer'),
    ("grad_clip text", "trainer.grad_clip", "big", 'trainer.grad_clip = "big": must be a number'),
    ("save_dir a file", "trainer.save_dir", f"{W}/plain.txt", "plain.txt is a file; give a folder"),
    ("save_dir under a file", "trainer.save_dir", f"{W}/plain.txt/runs", "plain.txt is a file; give a folder"),
    ("save_dir empty", "trainer.save_dir", "", 'trainer.save_dir = "": must not be empty'),
    ("no train_dataset", "train_dataset", DELETE, "train_dataset is missing"),
    # checks of the files the config names, before anything is built
    ("txt_file missing", "train_dataset.args.txt_file", f"{W}/nope.txt",
     "does not exist: TextDataset needs a label file there"),
    ("txt_file a folder", "train_dataset.args.txt_file", f"{W}/images",
     "is not a regular file: TextDataset needs a label file"),
    ("txt_file a FIFO", "train_dataset.args.txt_file", f"{W}/fifo", "is not a regular file"),
    ("img_root a file", "train_dataset.args.img_root", f"{W}/plain.txt", "is not a folder: TextDataset needs a folder"),
    ("LMDB without data.mdb", "train_dataset", {"type": "LmdbDataset", "args": {"root": f"{W}/empty"}},
     "holds no data.mdb"),
    ("LMDB root a file", "train_dataset", {"type": "LmdbDataset", "args": {"root": f"{W}/plain.txt"}},
     "is not a folder"),
    ("hierarchy root missing", "train_dataset", {"type": "hierarchy_dataset", "args": {"lmdb_dir_root": f"{W}/no"}},
     "does not exist"),
    ("jsonl_file missing", "train_dataset", {"type": "JsonlDataset", "args": {"jsonl_file": f"{W}/no.jsonl"}},
     "jsonl_file"),
    ("val txt_file missing", "val_dataset", {"type": "TextDataset", "args": {"txt_file": f"{W}/no.txt"}},
     "val_dataset.args.txt_file"),
    ("synth font_dirs missing", "train_dataset", {"type": "SynthDataset", "args": {"font_dirs": [f"{W}/nofonts"]}},
     "font_dirs"),
    ("synth lines font_dirs missing", "train_dataset",
     {"type": "SynthLineDataset", "args": {"font_dirs": [f"{W}/nofonts"]}}, "train_dataset.args.font_dirs"),
    # the model the config implies, built on the meta device
    ("nhead does not divide d_model", "model_arch.args.common_kwargs.multiheads", 3, "not divisible by nhead 3"),
    ("last width differs from d_model", "model_arch.args.widths", [8, 16, 32, 32, 64, 96], "must equal d_model"),
    ("image too small for the backbone", "model_arch.args", {"preset": "tiny", "img_h": 8, "img_w": 4},
     "model_arch: a 8x4 image does not fit the model"),
    ("context heads do not split the channels", "model_arch.args.backbone_kwargs",
     {"gcb_kwargs": {"headers": 64}}, "cannot be built: GCA: 32 channels do not split into 64 headers"),
    ("a layer over the size caps", "model_arch.args",
     {"preset": "tiny", "widths": [8, 16, 32, 32, 64, 100000],
      "common_kwargs": {"model_size": 100000, "multiheads": 1}},
     "model_arch.args.common_kwargs.model_size = 100000: must be an integer from 1 to 4096"),
    ("a model larger than any memory here", "model_arch.args",
     {"preset": "tiny", "widths": [8, 16, 32, 32, 64, 4096], "d_ff": 16384,
      "common_kwargs": {"model_size": 4096, "multiheads": 8}, "decoder_kwargs": {"stacks": 48}},
     "weights, gradients and optimizer state need"),
]  # fmt: skip


def _resolve(value: Any, root: Path) -> Any:
    if isinstance(value, str):
        return value.replace(W, str(root))
    if isinstance(value, dict):
        return {k: _resolve(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, root) for v in value]
    return value


@pytest.mark.parametrize("check", [True, False], ids=["check", "train"])
@pytest.mark.parametrize(("path", "value", "fragment"), [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_a_bad_config_is_one_line_naming_the_file_and_field_before_anything_is_built(
    world, tmp_path, capsys, path, value, fragment, check
):
    cfg = mutate(base(world, tmp_path), path, _resolve(value, world))
    argv = run_cli(tmp_path, cfg, *(["--check"] if check else []))
    code = main(argv)
    line = one_line_error(capsys.readouterr().err, code)
    assert fragment in line, line
    assert line.startswith(f"masterocr train: error: {tmp_path / 'config.json'}: ")  # the file is named
    assert not (tmp_path / "runs").exists()  # nothing was built


# command-line cases: (name, extra argv (with {W} for the world folder), fragment)
ARGV_CASES = [
    ("resume missing", ["-r", f"{W}/none.pth"], "does not exist"),
    ("resume a FIFO", ["-r", f"{W}/fifo"], "is not a regular file"),
    ("resume a folder without a checkpoint", ["-r", f"{W}/empty"], "checkpoint-latest.pth does not exist"),
    ("finetune missing", ["-r", f"{W}/none.pth", "--finetune"], "-r (--finetune)"),
    ("finetune without -r", ["--finetune"], "--finetune needs a checkpoint"),
    ("--set a bad value", ["--set", "trainer.epochs=0"], "with --set: trainer.epochs = 0: must be an integer from 1"),
    ("--set into a value", ["--set", "seed.x=1"], "seed is not a section"),
    ("--set without =", ["--set", "trainer.epochs"], "write key=value"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "fragment"), [c[1:] for c in ARGV_CASES], ids=[c[0] for c in ARGV_CASES])
def test_a_bad_command_line_is_one_line_before_anything_is_built(world, tmp_path, capsys, extra, fragment):
    cfg = base(world, tmp_path)
    code = main(run_cli(tmp_path, cfg, *[a.replace(W, str(world)) for a in extra]))
    line = one_line_error(capsys.readouterr().err, code)
    assert fragment in line, line
    assert not (tmp_path / "runs").exists()


# whole-file cases: (name, file text, fragment)
FILE_CASES = [
    ("not JSON", "{'trainer': 1}", "is not valid JSON (line 1, column 2)"),
    ("a JSON list", "[1, 2]", "must hold a JSON object"),
    ("not UTF-8", "\udcff", "is not UTF-8"),
    ("empty", "", "is not valid JSON"),
]


@pytest.mark.parametrize(("text", "fragment"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_a_config_file_that_is_not_a_json_object_is_one_line(tmp_path, capsys, text, fragment):
    path = tmp_path / "config.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    code = main(["train", "-c", str(path), "--check"])
    line = one_line_error(capsys.readouterr().err, code)
    assert fragment in line and str(path) in line, line


def test_a_missing_config_is_one_line(tmp_path, capsys):
    code = main(["train", "-c", str(tmp_path / "none.json"), "--check"])
    assert "none.json cannot be read (No such file or directory)" in one_line_error(capsys.readouterr().err, code)


# good configs -------------------------------------------------------------------------------------------------------
def test_check_prints_one_summary_line_with_the_model_and_the_dataset_sizes(world, tmp_path, capsys):
    cfg = base(world, tmp_path)
    cfg["val_dataset"] = {"type": "JsonlDataset", "args": {"jsonl_file": str(world / "labels.jsonl"),
                                                           "img_root": str(world / "images")}}
    cfg["trainer"]["do_validation"] = True
    assert main(run_cli(tmp_path, cfg, "--check")) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert "the config is valid: model 0." in out[0] and "M parameters" in out[0]
    assert "train_dataset 4 samples, val_dataset 4 samples" in out[0]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("path", "hint"), [
    ("trainer.epoch", 'unknown key trainer.epoch (did you mean "epochs"?)'),
    ("trainer.max_step", 'unknown key trainer.max_step (did you mean "max_steps"?)'),
    ("train_loader.args.batchsize", 'unknown key train_loader.args.batchsize (did you mean "batch_size"?)'),
    ("optimiser", 'unknown key optimiser (did you mean "optimizer"?)'),
])  # fmt: skip
@pytest.mark.parametrize("check", [True, False])
def test_an_unknown_key_is_one_line_with_the_closest_name_under_check_and_in_train(world, tmp_path, capsys, path,
                                                                                   hint, check):
    cfg = mutate(base(world, tmp_path), path, 3)
    code = main(run_cli(tmp_path, cfg, *(["--check"] if check else [])))
    assert f"{tmp_path / 'config.json'}: {hint}" in one_line_error(capsys.readouterr().err, code)
    assert not (tmp_path / "runs").exists()


SETS = {
    "txt": lambda w: {"type": "TextDataset", "args": {"txt_file": f"{w}/gt.txt", "img_root": f"{w}/images"}},
    "jsonl": lambda w: {"type": "JsonlDataset", "args": {"jsonl_file": f"{w}/labels.jsonl", "img_root": f"{w}/images"}},
    "lmdb": lambda w: {"type": "LmdbDataset", "args": {"root": f"{w}/lmdbs/one"}},
    "hierarchy": lambda w: {"type": "hierarchy_dataset", "args": {"lmdb_dir_root": f"{w}/lmdbs"}},
}


@pytest.mark.parametrize("kind", SETS)
def test_labels_entirely_outside_the_vocabulary_are_counted_in_one_warning(world, tmp_path, caplog, kind):
    cfg = mutate(base(world, tmp_path), "charset.keys", "xyz")
    cfg["train_dataset"] = SETS[kind](world)
    with caplog.at_level(logging.WARNING):
        assert main(run_cli(tmp_path, cfg, "--check")) == 0
    [line] = [r.getMessage() for r in caplog.records if "no character in the charset" in r.getMessage()]
    assert line.startswith("train_dataset: 4 of 4 labels have no character in the charset (3 symbols)")
    caplog.clear()
    cfg["charset"]["keys"] = "abc"  # "dab" and "ace" keep a known character: nothing to say
    with caplog.at_level(logging.WARNING):
        assert main(run_cli(tmp_path, cfg, "--check")) == 0
    assert not [r for r in caplog.records if "no character in the charset" in r.getMessage()]


def test_a_two_step_run_trains_warns_about_unknown_labels_and_writes_its_checkpoint(world, tmp_path, capsys, caplog):
    cfg = base(world, tmp_path)
    cfg["charset"]["keys"] = "bcd"  # "ace" still has c; write one label with no known character at all
    (tmp_path / "gt.txt").write_text((world / "gt.txt").read_text().replace("ace", "eee"))
    cfg["train_dataset"]["args"]["txt_file"] = str(tmp_path / "gt.txt")
    with caplog.at_level(logging.WARNING):
        assert main(run_cli(tmp_path, cfg)) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 2
    assert (Path(summary["run_dir"]) / "checkpoint-latest.pth").is_file()
    assert any(r.getMessage().startswith("train_dataset: 1 of 4 labels have no character") for r in caplog.records)


# property: any JSON value at any known path, through the command line -------------------------------------------------
def schema_paths() -> list[str]:
    """Dotted paths of the config schema's fields, down to the sections of the base config's types."""
    from masterocr.train.schema import ValidatedConfig
    from masterocr.train.schema_data import TextDatasetArgs
    from masterocr.train.schema_optim import AdamArgs, WarmupCosineArgs

    def models(annotation: Any) -> list[Any]:
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            return [annotation]
        return [m for a in typing.get_args(annotation) for m in models(a)]

    def walk(model: Any, prefix: str) -> list[str]:
        out = []
        for name, field in model.model_fields.items():
            out.append(prefix + name)
            for sub in models(field.annotation)[:1] if prefix.count(".") < 5 else ():
                out += walk(sub, f"{prefix}{name}.")
        return out

    paths = walk(ValidatedConfig, "")
    paths += [f"train_dataset.args.{k}" for k in TextDatasetArgs.model_fields]
    paths += [f"optimizer.args.{k}" for k in AdamArgs.model_fields]
    paths += [f"lr_scheduler.args.{k}" for k in WarmupCosineArgs.model_fields]
    return sorted(set(paths))


PATHS = schema_paths()
SCALARS = (st.none() | st.booleans() | st.integers(-3, 3) | st.integers() | st.floats(allow_nan=True)
           | st.sampled_from(["", "abc", "0", "-1", "7", "1e-3", "true", "off", "tiny", "Adam", "StepLR"])
           | st.text(max_size=6))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)


def test_the_property_reaches_deep_paths():
    assert {"trainer.epochs", "model_arch.args.common_kwargs.multiheads", "train_loader.args.batch_size",
            "optimizer.args.lr", "train_dataset.args.txt_file", "charset.keys"} <= set(PATHS)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), value=JSON)
def test_any_json_value_at_any_schema_path_checks_or_fails_in_one_line(world, capsys, path, value):
    cfg = mutate(base(world, world / "prop"), path, value)
    code = main(run_cli(world, cfg, "--check", name="prop.json"))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if code == 0:
        assert "the config is valid" in captured.out
    else:
        one_line_error(captured.err, code)
    assert not (world / "prop" / "runs").exists()
