"""Every file a user names goes through one guarded reader (masterocr.files): regular files only, a size cap
before reading, a nesting cap for JSON, one line for bad bytes; an exported folder's model.json is checked
against its graphs at load."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from masterocr.charset import Charset
from masterocr.errors import UserError
from masterocr.files import json_depth, read_json, read_text
from masterocr.train.config import load_config

SHIPPED_ONNX = Path("weights/master_medium_int8")


@pytest.fixture()
def odd_files(tmp_path) -> dict[str, Path]:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    os.symlink(tmp_path / "folder", tmp_path / "link_to_folder")
    (tmp_path / "latin1.json").write_bytes(b'{"name": "caf\xe9"}')
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "big.json").write_text("{}" + " " * 2_000)
    return {p.name: p for p in tmp_path.iterdir()} | {"devzero": Path("/dev/zero"), "nul": Path("a\0b")}


@pytest.mark.parametrize(("name", "fragment"), [
    ("fifo", "is a FIFO (named pipe), not a regular file"),
    ("devzero", "is a device, not a regular file"),
    ("folder", "is a folder, not a regular file"),
    ("link_to_folder", "is a folder, not a regular file"),
    ("dangling", "cannot be read (No such file or directory)"),
    ("latin1.json", "is not UTF-8 text (bad byte at offset 13); re-save it as UTF-8"),
    ("deep.json", "nests 100000 levels deep, over the limit of 64"),
])  # fmt: skip
def test_the_config_reader_refuses_what_is_not_a_config_in_one_line(odd_files, name, fragment):
    with pytest.raises(UserError) as exc:
        load_config(odd_files[name])
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


def test_sizes_are_checked_before_reading(odd_files):
    with pytest.raises(UserError, match="is 2,002 bytes, over the 1,000-byte limit"):
        read_json(odd_files["big.json"], "config", "fix", max_bytes=1000)
    assert read_text(odd_files["big.json"], "config", "fix").startswith("{}")


def test_a_nul_in_a_path_is_one_line(odd_files):
    with pytest.raises(UserError, match="holds a NUL character"):
        load_config(odd_files["nul"])


@pytest.mark.parametrize("name", ["fifo", "devzero", "folder", "dangling", "latin1.json"])
def test_the_charset_reader_is_the_same_reader(odd_files, name):
    with pytest.raises(UserError, match="charset file"):
        Charset.from_file(odd_files[name])


def test_json_depth_skips_strings_and_counts_without_parsing():
    assert json_depth('{"a": "[[[[", "b": [[1]]}') == 3
    assert json_depth("[" * 100_000) == 100_000


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "onnx"
    shutil.copytree(SHIPPED_ONNX, folder)
    return folder


@pytest.mark.parametrize(("field", "value", "fragment"), [
    ("img_w", 160, "model_config.img_w is 160 but the graphs have 128"),
    ("img_h", 48, "model_config.img_h is 48 but the graphs have 32"),
    ("nhead", 4, "model_config.nhead is 4 but the graphs have 6"),
    ("num_decoder_layers", 2, "model_config.num_decoder_layers is 2 but the graphs have 3"),
    ("in_channels", 3, "model_config.in_channels is 3 but the graphs have 1"),
    ("keys", "abc", "charset (classes, specials included) is 7 but the graphs have 99"),
])  # fmt: skip
def test_an_exported_folder_whose_model_json_disagrees_with_its_graphs_is_one_line(tmp_path, field, value, fragment):
    from masterocr.runtime.onnx import OnnxRecognizer

    folder = _copy(tmp_path)
    meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    if field == "keys":
        meta["charset"]["keys"] = value
        meta.pop("num_classes", None)
    else:
        meta["model_config"][field] = value
    (folder / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(UserError) as exc:
        OnnxRecognizer(folder)
    assert fragment in str(exc.value) and str(exc.value).startswith(str(folder / "model.json"))


def test_an_untouched_exported_folder_loads(tmp_path):
    from masterocr.runtime.onnx import OnnxRecognizer

    assert OnnxRecognizer(_copy(tmp_path)).cfg.img_w == 128
