"""Close the class with generated tests (issue 27 item 7): every option of every subcommand and every field of the
config schema gets each hostile value (zero, negative, huge, NaN, inf, wrong type, empty, a FIFO, /dev/zero, a
folder, a dangling symlink, non-UTF-8 bytes) and must end in one line of error or be accepted: never a
traceback, never a hang.

The default suite stops each command where its work would begin (model loading with the default model,
rendering, writing LMDBs, the training loop, uvicorn): everything before that, which is where a bad value must
be refused, runs for real; `--checkpoint` values are loaded for real. The hand-written hostile suites stay.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures import write_word_set
from pydantic import BaseModel

from masterocr.cli import build_parser, main
from masterocr.data.lmdb import lmdb_from_labels
from masterocr.errors import UserError
from masterocr.train.schema import ValidatedConfig
from masterocr.train.schema_data import DATASET_ARGS
from masterocr.train.schema_optim import OPTIMIZER_ARGS, SCHEDULER_ARGS

CASE_SECONDS = 30.0  # one case, on a loaded 2-core machine; a hang (a FIFO opened for reading) never ends


class Reached(Exception):
    """The command got past its checks to the work itself: the value was accepted."""


def _reached(*_: Any, **__: Any) -> None:
    raise Reached


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("walk")
    write_word_set(root / "set", ["cab", "bad", "ace", "dab"])
    lmdb_from_labels(root / "set" / "gt.txt", root / "set" / "images", root / "lmdbs" / "one")
    os.mkfifo(root / "fifo")
    (root / "folder").mkdir()
    os.symlink(root / "nowhere", root / "dangling")
    (root / "preds.json").write_text(json.dumps([{"filename": "000.png", "result": "cab", "pred_score": 1.0}]))
    cfg = {"name": "walk", "run_id": "r", "distributed": False, "model_arch": {"args": {"preset": "tiny"}},
           "charset": {"keys": "abcde"},
           "train_dataset": {"type": "TextDataset", "args": {"txt_file": str(root / "set" / "gt.txt"),
                                                             "img_root": str(root / "set" / "images")}},
           "train_loader": {"args": {"batch_size": 2, "num_workers": 0}},
           "trainer": {"epochs": 1, "max_steps": 1, "save_dir": str(root / "runs"), "progress": False,
                       "do_validation": False}}
    (root / "config.json").write_text(json.dumps(cfg))
    return {"root": root, "fifo": root / "fifo", "folder": root / "folder", "dangling": root / "dangling"}


def hostile_strings(w: dict[str, Path]) -> list[str]:
    return ["0", "-1", "99999999999999999999", "1e30", "nan", "inf", "abc", "", str(w["fifo"]), "/dev/zero",
            str(w["folder"]), str(w["dangling"]), os.fsdecode(b"\xff\xfe.txt")]


def base_argv(command: str, w: dict[str, Path], out: Path) -> list[str]:
    """A command line of `command` that passes every check."""
    root = w["root"]
    return {
        "train": ["-c", str(root / "config.json"), "--check"],
        "predict": ["--img-folder", str(root / "set" / "images"), "--output-folder", str(out / "pred")],
        "eval": ["--predict-path", str(root / "preds.json"), "--label-path", str(root / "set" / "gt.txt")],
        "test": ["--data-root", str(root / "lmdbs")],
        "synth": ["--out", str(out / "synth"), "--count", "1"],
        "lmdb": ["--labels", str(root / "set" / "gt.txt"), "--img-root", str(root / "set" / "images"), "--out",
                 str(out / "lmdb")],
        "export": ["--out", str(out / "onnx")],
        "serve": [],
        "init": ["finetune", "--out", str(out / "init.json")],
        "page": [str(sorted((root / "set" / "images").iterdir())[0]), "--out", str(out / "page")],
    }[command]


def cli_cases(w: dict[str, Path]) -> Iterator[tuple[str, str, str | None]]:
    """(command, option, value) for every option of every subcommand (flags without a value: value None)."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command, parser in sub.choices.items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction) or not action.option_strings:
                continue
            option = action.option_strings[0]
            if action.nargs == 0:
                yield command, option, None
                continue
            for value in hostile_strings(w):
                yield command, option, value


def with_option(argv: list[str], option: str, value: str | None, aliases: list[str]) -> list[str]:
    """`argv` with `option` set to `value` (an existing value of it, under any alias, replaced)."""
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in aliases and i + 1 < len(argv) and value is not None:
            skip = True
            continue
        out.append(arg)
    return [*out, option] if value is None else [*out, option, value]


@pytest.fixture()
def stop_at_work(monkeypatch):
    """Stub where each command's work begins (see the module docstring); a --checkpoint is still loaded."""
    import masterocr.data.lmdb as lmdb
    import masterocr.data.synth as synth
    import masterocr.data.synth.linedataset as linedataset
    import masterocr.export.onnx as onnx_export
    import masterocr.export.quantize as quantize
    import masterocr.page.reader as page_reader
    import masterocr.train.launch as launch
    import masterocr.train.loop as loop
    import masterocr.train.preflight as preflight
    from masterocr.runtime import select

    real_torch, real_onnx = select.Recognizer.from_checkpoint, select.OnnxRecognizer.from_path

    def torch_or_reach(checkpoint: Any = None, *a: Any, **k: Any) -> Any:
        return real_torch(checkpoint, *a, **k) if checkpoint is not None else _reached()

    def onnx_or_reach(path: Any = None, *a: Any, **k: Any) -> Any:
        return real_onnx(path, *a, **k) if path is not None else _reached()

    monkeypatch.setattr(select.Recognizer, "from_checkpoint", staticmethod(torch_or_reach))
    monkeypatch.setattr(select.OnnxRecognizer, "from_path", staticmethod(onnx_or_reach))
    for module, name in ((synth, "generate"), (linedataset, "generate_lines"), (lmdb, "lmdb_from_labels"),
                         (onnx_export, "export_model"), (quantize, "export_onnx_int8"), (loop, "train"),
                         (launch, "launch_local"), (preflight, "dataset_sizes"), (page_reader, "PageReader")):
        monkeypatch.setattr(module, name, _reached)
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", _reached)


def run_case(argv: list[str], capsys) -> tuple[str, str]:
    """Run one command line; ('accepted'|'refused', stderr). Fails on a traceback or a second error line."""
    started = time.monotonic()
    try:
        code = main(argv)
    except Reached:
        code = 0
    except SystemExit as exc:  # argparse: usage, then one error line
        code = exc.code
    err = capsys.readouterr().err
    assert time.monotonic() - started < CASE_SECONDS, f"{argv}: took {time.monotonic() - started:.0f} s"
    assert "Traceback" not in err, f"{argv}: {err}"
    errors = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(errors) <= 1, f"{argv}: {err}"
    assert code in (0, 1, 2), f"{argv}: exit {code}"
    return ("refused" if errors else "accepted"), err


def test_every_cli_option_with_every_hostile_value_is_one_line_or_accepted(world, tmp_path, capsys, stop_at_work,
                                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)  # an accepted relative output (`init --out 0`) lands here, not in the checkout
    parser_aliases = {}
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command, parser in sub.choices.items():
        for action in parser._actions:
            for opt in action.option_strings:
                parser_aliases[(command, opt)] = list(action.option_strings)
    seen = {"accepted": 0, "refused": 0}
    cases = list(cli_cases(world))
    for n, (command, option, value) in enumerate(cases):
        out = tmp_path / str(n)
        argv = [command, *with_option(base_argv(command, world, out), option, value,
                                      parser_aliases[(command, option)])]
        outcome, _ = run_case(argv, capsys)
        seen[outcome] += 1
        if outcome == "accepted" and os.environ.get("WALK_SHOW"):  # a file to read what was accepted
            with open(os.environ["WALK_SHOW"], "a", encoding="utf-8", errors="backslashreplace") as f:
                f.write(f"{command} {option} {value!r}\n")
    print(f"\nCLI walk: {len(cases)} cases, {seen}")
    assert len(cases) > 500 and seen["refused"] > seen["accepted"]


# the config schema ------------------------------------------------------------------------------------------
def json_values(w: dict[str, Path]) -> list[Any]:
    return [0, -1, 10**30, 1e30, math.nan, math.inf, -math.inf, "abc", "", None, [], {}, True, str(w["fifo"]),
            "/dev/zero", str(w["folder"]), str(w["dangling"]), os.fsdecode(b"\xff\xfe")]


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation may hold (through Optional, Annotated and unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def field_paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every dotted path of a model's fields, into the sections it holds (tagged sections apart)."""
    for name, info in model.model_fields.items():
        yield prefix + name
        for sub in _models(info.annotation):
            if sub.__name__.endswith("Section"):
                continue  # a tagged section: walked per type by section_cases
            yield from field_paths(sub, f"{prefix}{name}.")


def section_cases(w: dict[str, Path]) -> Iterator[tuple[str, dict, str]]:
    """(where, a valid section of one type, path of one of its arguments) for every type of every tagged section."""
    root = w["root"]
    valid = {"txt_file": str(root / "set" / "gt.txt"), "jsonl_file": str(root / "set" / "labels.jsonl"),
             "img_root": str(root / "set" / "images"), "root": str(root / "lmdbs" / "one"),
             "lmdb_dir_root": str(root / "lmdbs"), "step_size": 1, "milestones": [1], "max_lr": 0.01}
    for where, kinds in (("train_dataset", DATASET_ARGS), ("optimizer", OPTIMIZER_ARGS),
                         ("lr_scheduler", SCHEDULER_ARGS)):
        for kind, args in kinds.items():
            if not (isinstance(args, type) and issubclass(args, BaseModel)):
                continue
            required = {k: valid[k] for k, f in args.model_fields.items() if f.is_required()}
            if kind == "JSONDataset":
                required = {"txt_file": valid["jsonl_file"]}
            if kind == "LmdbDataset":
                required = {"root": valid["root"]}
            section = {"type": kind, "args": required}
            for name in args.model_fields:
                yield where, section, f"{where}.args.{name}"


def mutate(cfg: dict, path: str, value: Any) -> dict:
    cfg = json.loads(json.dumps(cfg))
    node, parts = cfg, path.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value
    return cfg


def check_config(cfg: dict, source: str, full: bool) -> str:
    """What `train --check` does before reading the label files (`full`: with the run checks, which build the
    model on the meta device; else the schema and the settings); 'accepted' or 'refused' (one line)."""
    from masterocr.train.config import run_settings
    from masterocr.train.preflight import check_run

    started = time.monotonic()
    try:
        settings = run_settings(cfg, source, training=True)
        if full:
            check_run(settings, source)
        outcome = "accepted"
    except UserError as exc:
        assert "\n" not in str(exc), str(exc)
        outcome = "refused"
    assert time.monotonic() - started < CASE_SECONDS, f"{source}: took {time.monotonic() - started:.0f} s"
    return outcome


@pytest.mark.parametrize("full", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_every_config_field_with_every_hostile_value_is_one_line_or_accepted(world, full):
    base = json.loads((world["root"] / "config.json").read_text())
    cases = [(base, path) for path in field_paths(ValidatedConfig)]
    cases += [(mutate(base, where, section), path) for where, section, path in section_cases(world)]
    seen = {"accepted": 0, "refused": 0}
    values = json_values(world)
    for cfg, path in cases:
        for value in values:
            seen[check_config(mutate(cfg, path, value), f"walk.json ({path} = {value!r})", full)] += 1
    print(f"\nconfig walk: {len(cases)} fields x {len(values)} values = {len(cases) * len(values)} cases, {seen}")
    assert len(cases) > 150 and seen["refused"] > seen["accepted"]
