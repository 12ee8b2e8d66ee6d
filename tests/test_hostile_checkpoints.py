"""Hostile checkpoints, weights and model.json files, table-driven: each row builds one bad file and names the
fragment of the one-line UserError its loader must give (never a traceback, never a block on a FIFO, never an
allocation the file's tensors do not justify)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from masterocr.charset import Charset
from masterocr.cli import main
from masterocr.errors import UserError
from masterocr.formats.load import load_model
from masterocr.formats.onnx_layout import export_meta, read_meta
from masterocr.model import build_model
from masterocr.model.presets import get_preset

TINY = get_preset("tiny", max_len=4)
CHARSET = Charset.default()


@pytest.fixture(scope="module")
def tiny() -> dict:
    """A tiny model's checkpoint contents: state dict, config and charset."""
    torch.manual_seed(0)
    model = build_model(TINY, CHARSET)
    return {"model_state_dict": model.state_dict(), "model_config": TINY.to_dict(),
            "charset": {"keys": CHARSET.keys, "case_sensitive": True}}


Build = Callable[[Path, dict], Path]


def pth(**change) -> Build:
    """A .pth of the tiny checkpoint with top-level keys replaced."""
    def build(folder: Path, ckpt: dict) -> Path:
        path = folder / "c.pth"
        torch.save({**ckpt, **change}, path)
        return path
    return build


def config(**change) -> Build:
    """A .pth of the tiny checkpoint whose model_config has fields replaced (the tensors stay the tiny ones)."""
    def build(folder: Path, ckpt: dict) -> Path:
        return pth(model_config={**ckpt["model_config"], **change})(folder, ckpt)
    return build


def state(edit: Callable[[dict], None]) -> Build:
    def build(folder: Path, ckpt: dict) -> Path:
        sd = dict(ckpt["model_state_dict"])
        edit(sd)
        return pth(model_state_dict=sd)(folder, ckpt)
    return build


def special(make: Callable[[Path], Path]) -> Build:
    return lambda folder, ckpt: make(folder)


def fifo(name: str) -> Build:
    def make(folder: Path) -> Path:
        os.mkfifo(folder / name)
        return folder / name
    return special(make)


def safetensors(**meta_change) -> Build:
    def build(folder: Path, ckpt: dict) -> Path:
        meta = {"format": "masterocr", "model_config": json.dumps(ckpt["model_config"]),
                "charset": json.dumps(ckpt["charset"]), **meta_change}
        path = folder / "w.safetensors"
        save_file({k: v.contiguous() for k, v in ckpt["model_state_dict"].items()}, str(path), metadata=meta)
        return path
    return build


HUGE = dict(widths=[8, 16, 32, 32, 64, 4096], d_model=4096, nhead=64, d_ff=16384, num_decoder_layers=48)

# name -> (builder, fragment of the error)
CASES: dict[str, tuple[Build, str]] = {
    "fifo_pth": (fifo("c.pth"), "is a FIFO (named pipe), not a regular file"),
    "fifo_safetensors": (fifo("w.safetensors"), "is a FIFO (named pipe), not a regular file"),
    "dev_zero": (special(lambda f: Path("/dev/zero")), "is a device, not a regular file"),
    "dev_null": (special(lambda f: Path("/dev/null")), "is a device, not a regular file"),
    "folder_without_latest": (special(lambda f: f), "without checkpoint-latest.pth"),
    "latest_is_a_folder": (special(lambda f: (f / "checkpoint-latest.pth").mkdir() or f), "is a folder"),
    "dangling_link": (special(lambda f: (f / "l.pth").symlink_to(f / "gone") or f / "l.pth"), "does not exist"),
    "state_dict_list": (pth(model_state_dict=[1, 2]), "model_state_dict is list, not a dict of tensors"),
    "state_dict_str": (pth(model_state_dict="weights"), "model_state_dict is str"),
    "state_dict_none": (pth(model_state_dict=None), "model_state_dict is NoneType"),
    "state_dict_int_value": (state(lambda sd: sd.update(x=3)), "entry 'x' is int, not a tensor"),
    "no_model_config": (pth(model_config=None), "model_config/charset cannot build a model"),
    "config_list": (pth(model_config=[1]), "must be a JSON object, not list"),
    "nhead_zero": (config(nhead=0), "nhead is 0; it must be an integer from 1 to 64"),
    "nhead_not_dividing": (config(nhead=3), "d_model 64 is not divisible by nhead 3"),
    "d_ff_huge": (config(d_ff=10**9), "d_ff is 1000000000; it must be an integer from 1 to 16384"),
    "d_model_over_cap": (config(d_model=8192, widths=[8, 16, 32, 32, 64, 8192]), "d_model is 8192"),
    "layers_over_cap": (config(num_decoder_layers=1000), "num_decoder_layers is 1000"),
    "max_len_negative": (config(max_len=-1), "max_len is -1"),
    "d_model_string": (config(d_model="big"), "d_model is 'big'"),
    "d_model_float": (config(d_model=64.0), "d_model is 64.0"),
    "dropout_two": (config(dropout=2), "dropout is 2; it must be a number from 0.0 to 1.0"),
    "widths_short": (config(widths=[8, 16]), "widths is [8, 16]; it must be a list of 6 integers"),
    "blocks_huge": (config(blocks=[1, 1, 1, 10**6]), "blocks[3] is 1000000"),
    "bool_as_string": (config(with_encoder="yes"), "with_encoder is 'yes'; it must be true or false"),
    "unknown_option": (config(d_mdoel=64), "unknown model option(s) ['d_mdoel']"),
    "charset_too_big": (pth(charset={"keys": "".join(map(chr, range(0x4E00, 0x4E00 + 100_001)))}),
                        "the charset has 100,001 distinct characters, over the limit of 100,000"),
    "huge_layers_tiny_file": (config(**HUGE), "weights do not match its model config: tensor"),
    "tensor_wrong_shape": (state(lambda sd: sd.update({"generator.weight": torch.zeros(3, 64)})),
                           "tensor generator.weight has shape [3, 64], its model config needs [99, 64]"),
    "tensor_missing": (state(lambda sd: sd.pop("generator.weight")),
                       "tensor generator.weight (shape [99, 64]) that its model config needs is missing"),
    "tensor_extra": (state(lambda sd: sd.update(stowaway=torch.zeros(2))),
                     "tensor stowaway (shape [2]) is not part of the model"),
    "safetensors_config_lies": (safetensors(model_config=json.dumps({**TINY.to_dict(), "d_ff": 512})),
                                "has shape [256, 64], its model config needs [512, 64]"),
    "safetensors_nhead_zero": (safetensors(model_config=json.dumps({**TINY.to_dict(), "nhead": 0})), "nhead is 0"),
    "safetensors_config_array": (safetensors(model_config="[]"), "must be JSON objects"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_checkpoint(name: str, tiny: dict, tmp_path: Path) -> None:
    build, fragment = CASES[name]
    path = build(tmp_path, tiny)
    with pytest.raises(UserError) as info:
        load_model(path)
    msg = str(info.value)
    assert fragment in msg and "\n" not in msg, msg
    if not str(path).startswith("/dev/"):
        assert str(tmp_path) in msg, msg


def meta_field(**change) -> Callable[[dict], object]:
    return lambda meta: {**meta, **change}


def drop(field: str) -> Callable[[dict], object]:
    return lambda meta: {k: v for k, v in meta.items() if k != field}


# name -> (model.json content from a good one (bytes: written as is), fragment of the error)
META_CASES: dict[str, tuple[Callable[[dict], object] | bytes, str]] = {
    "not_json": (b"{oops", "is not valid JSON (line 1, column 2)"),
    "not_utf8": (b"\xff\xfe{}", "is not UTF-8 text (bad byte at offset 0)"),
    "empty": (b"", "is not valid JSON (line 1, column 1)"),
    "top_level_list": (lambda m: [m], "holds list, not a JSON object"),
    "no_model_config": (drop("model_config"), "lacks the field 'model_config'"),
    "no_charset": (drop("charset"), "lacks the field 'charset'"),
    "model_config_list": (meta_field(model_config=[]), "field 'model_config' is list"),
    "charset_string": (meta_field(charset="abc"), "field 'charset' is str"),
    "charset_keys_int": (meta_field(charset={"keys": 5}), "field 'charset.keys' must be a non-empty string"),
    "case_sensitive_str": (meta_field(charset={"keys": "ab", "case_sensitive": "no"}), "charset.case_sensitive"),
    "opset_string": (meta_field(opset="17"), "field 'opset' is str"),
    "num_classes_bool": (meta_field(num_classes=True), "field 'num_classes' is bool"),
    "num_classes_wrong": (meta_field(num_classes=7), "field 'num_classes' is 7 but the charset has 99"),
    "source_number": (meta_field(source=3), "field 'source' is int"),
    "nhead_zero": (lambda m: {**m, "model_config": {**m["model_config"], "nhead": 0}},
                   "field 'model_config' cannot describe a model (model option nhead is 0"),
}


@pytest.mark.parametrize("name", sorted(META_CASES))
def test_hostile_model_json(name: str, tmp_path: Path) -> None:
    change, fragment = META_CASES[name]
    good = export_meta(TINY, CHARSET, len(CHARSET), 17, "tiny.safetensors")
    content = change if isinstance(change, bytes) else json.dumps(change(good)).encode()
    (tmp_path / "model.json").write_bytes(content)
    with pytest.raises(UserError) as info:
        read_meta(tmp_path)
    msg = str(info.value)
    assert fragment in msg and str(tmp_path / "model.json") in msg and "\n" not in msg, msg


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_model_json_not_a_regular_file(kind: str, tmp_path: Path) -> None:
    target = tmp_path / "model.json"
    os.mkfifo(target) if kind == "fifo" else target.mkdir()
    with pytest.raises(UserError, match="not a regular file"):
        read_meta(tmp_path)


def test_keys_file_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "keys.txt")
    with pytest.raises(UserError, match=r"charset file .*keys\.txt is a FIFO"):
        Charset.from_file(tmp_path / "keys.txt")


def test_good_files_still_load(tiny: dict, tmp_path: Path) -> None:
    """The builders above change one thing each: unchanged, the same files load."""
    for build in (pth(), safetensors()):
        model, charset, _ = load_model(build(tmp_path, tiny))
        assert len(charset) == len(CHARSET) and model.cfg.d_ff == TINY.d_ff


def test_safetensors_shapes_are_checked_from_the_header_before_tensors_are_read(tiny, tmp_path, monkeypatch):
    from masterocr.formats import weights

    path = safetensors(model_config=json.dumps({**TINY.to_dict(), **HUGE}))(tmp_path, tiny)

    def never(*args, **kw):
        raise AssertionError("tensors were read before the header was checked")

    monkeypatch.setattr(weights, "load_file", never)
    with pytest.raises(UserError, match="weights do not match its model config: tensor"):
        load_model(path)


PEAK = """
import sys, torch
from masterocr.formats.load import load_model
from masterocr.errors import UserError
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
before = status("VmRSS")
try:
    load_model(sys.argv[1])
except UserError as exc:
    print(exc, file=sys.stderr)
print(status("VmHWM") - before)
"""


def test_huge_config_in_a_1kb_file_allocates_nothing(tiny: dict, tmp_path: Path) -> None:
    """Every tensor of the file is 1x1 while the config asks for d_model 4096, 48 layers: the loader refuses
    before a module is built, so the process's peak memory barely moves (not gigabytes)."""
    cfg = {**TINY.to_dict(), **HUGE}
    path = tmp_path / "huge.pth"
    torch.save({"model_state_dict": {k: torch.zeros(1) for k in list(tiny["model_state_dict"])[:8]},
                "model_config": cfg, "charset": tiny["charset"]}, path)
    assert path.stat().st_size < 8 * 1024
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.run([sys.executable, "-c", PEAK, str(path)], capture_output=True, text=True, timeout=120,
                          env=env)
    assert "weights do not match its model config" in proc.stderr, proc.stderr
    assert int(proc.stdout.split()[-1]) < 100 * 2**20


def test_cli_fifo_checkpoint_is_one_line_and_never_blocks(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "c.pth")
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(b"")  # an image to read: the checkpoint is what gets refused
    proc = subprocess.run([sys.executable, "-m", "masterocr", "predict", "--checkpoint", str(tmp_path / "c.pth"),
                           "--backend", "torch", "--img-folder", str(tmp_path / "imgs"), "--output-folder",
                           str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "is a FIFO" in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


@pytest.mark.parametrize("name", ["state_dict_list", "nhead_zero", "tensor_wrong_shape", "dev_zero"])
def test_cli_export_refuses_hostile_checkpoints(name: str, tiny: dict, tmp_path: Path, capsys) -> None:
    path = CASES[name][0](tmp_path, tiny)
    assert main(["export", "--checkpoint", str(path), "--out", str(tmp_path / "onnx")]) == 2
    err = capsys.readouterr().err
    assert CASES[name][1] in err and err.count("\n") == 1, err
    assert not (tmp_path / "onnx").exists()


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
                    | st.text(max_size=8), lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(sorted(TINY.to_dict())), value=JSON)
def test_any_json_value_in_any_model_config_field_is_one_line_or_a_model(tiny, tmp_path, field, value):
    """A checkpoint whose model_config has any JSON value in any field: a one-line UserError, or a model."""
    path = tmp_path / "fuzz.pth"
    torch.save({**tiny, "model_config": {**tiny["model_config"], field: value}}, path)
    try:
        model, _, _ = load_model(path)
    except UserError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    else:
        assert model.cfg.d_model == TINY.d_model  # the tensors are the tiny model's, so only harmless values load
