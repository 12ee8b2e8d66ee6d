"""Hostile command lines for `masterocr test`, `export` and `lmdb`, table-driven: each row is an argv (with
placeholders for files made here) and the exit code and one-line message fragment it must give, before any work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _robust_util import tiny_weights
from conftest import write_word_set
from test_lmdb import make_lmdb

from masterocr.charset import Charset
from masterocr.cli import main
from masterocr.formats.onnx_layout import export_meta
from masterocr.model.presets import get_preset


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """Placeholder -> path: tiny weights, a folder of LMDBs, a word set, a plain file, a FIFO, an empty folder."""
    root = tmp_path_factory.mktemp("cli")
    make_lmdb(root / "bench" / "set1", ["cat", "dog"])
    write_word_set(root / "words", ["cat", "dog"])
    (root / "plain.txt").write_text("x")
    os.mkfifo(root / "fifo")
    (root / "empty").mkdir()
    (root / "full").mkdir()
    (root / "full" / "x").write_text("x")
    onnx = root / "onnx"
    onnx.mkdir()
    meta = export_meta(get_preset("tiny"), Charset.default(), len(Charset.default()), 17, None)
    (onnx / "model.json").write_text(json.dumps({**meta, "model_config": {**meta["model_config"], "nhead": 0}}))
    fifo_graph = root / "onnx_fifo"
    fifo_graph.mkdir()
    (fifo_graph / "model.json").write_text(json.dumps(meta))
    os.mkfifo(fifo_graph / "encoder.onnx")
    return {"W": str(tiny_weights(root / "tiny.safetensors")), "BENCH": str(root / "bench"),
            "WORDS": str(root / "words"), "FILE": str(root / "plain.txt"), "FIFO": str(root / "fifo"),
            "EMPTY": str(root / "empty"), "FULL": str(root / "full"), "NOWHERE": str(root / "nowhere"),
            "ONNX": str(onnx), "ONNXFIFO": str(fifo_graph), "DEEP": str(root / "plain.txt" / "such" / "out"),
            "ROOT": str(root)}


TEST = ["test", "--checkpoint", "W", "--backend", "torch", "--data-root", "BENCH"]
EXPORT = ["export", "--checkpoint", "W"]
LMDB = ["lmdb", "--labels", "WORDS/gt.txt", "--img-root", "WORDS/images"]

# name -> (argv with placeholders, exit code, fragment of stderr)
CASES: dict[str, tuple[list[str], int, str]] = {
    "test_batch_zero": (TEST + ["--batch-size", "0"], 2, "--batch-size must be a positive integer, got 0"),
    "test_batch_negative": (TEST + ["--batch-size", "-5"], 2, "--batch-size must be a positive integer, got -5"),
    "test_batch_word": (TEST + ["--batch-size", "abc"], 2, "invalid int value: 'abc'"),
    "test_threads_zero": (TEST + ["--threads", "0"], 2, "--threads must be a positive integer"),
    "test_batch_before_checkpoint": (["test", "--checkpoint", "NOWHERE", "--data-root", "BENCH", "--batch-size",
                                      "0"], 2, "--batch-size must be a positive integer"),
    "test_data_root_missing": (TEST[:-1] + ["NOWHERE"], 2, "--data-root ROOT/nowhere is not a folder"),
    "test_data_root_file": (TEST[:-1] + ["FILE"], 2, "--data-root ROOT/plain.txt is not a folder"),
    "test_data_root_before_checkpoint": (["test", "--checkpoint", "FIFO", "--data-root", "NOWHERE"], 2,
                                         "is not a folder"),
    "test_data_root_no_lmdb": (TEST[:-1] + ["EMPTY"], 2, "no LMDB (a folder with data.mdb) under"),
    "test_checkpoint_missing": (["test", "--checkpoint", "NOWHERE", "--data-root", "BENCH"], 2, "does not exist"),
    "test_checkpoint_fifo": (["test", "--checkpoint", "FIFO", "--backend", "torch", "--data-root", "BENCH"], 2,
                             "is a FIFO (named pipe), not a regular file"),
    "test_unknown_backend": (TEST + ["--backend", "tensorrt"], 2, "invalid choice: 'tensorrt'"),
    "test_int8_and_fp16": (TEST + ["--int8", "--dtype", "fp16"], 2, "int8 replaces the float dtype"),
    "test_onnx_model_json_bad_field": (["test", "--backend", "onnx", "--checkpoint", "ONNX", "--data-root", "BENCH"],
                                       2, "ROOT/onnx/model.json: field 'model_config' cannot describe a model"),
    "test_onnx_graph_is_a_fifo": (["test", "--backend", "onnx", "--checkpoint", "ONNXFIFO", "--data-root", "BENCH"],
                                  2, "model file ROOT/onnx_fifo/encoder.onnx is a FIFO"),
    "export_out_is_a_file": (EXPORT + ["--out", "FILE"], 2, "--out ROOT/plain.txt is an existing file"),
    "export_out_under_a_file": (EXPORT + ["--out", "DEEP"], 2, "lies under ROOT/plain.txt, an existing file"),
    "export_calib_count_zero": (EXPORT + ["--out", "NOWHERE", "--int8", "--calib-count", "0"], 2,
                                "--calib-count must be a positive integer, got 0"),
    "export_calib_count_word": (EXPORT + ["--out", "NOWHERE", "--calib-count", "many"], 2, "invalid int value"),
    "export_calib_without_int8": (EXPORT + ["--out", "NOWHERE", "--calib-images", "WORDS"], 2, "add --int8"),
    "export_calib_folder_missing": (EXPORT + ["--out", "NOWHERE", "--int8", "--calib-images", "NOWHERE"], 2,
                                    "--calib-images ROOT/nowhere is not a folder"),
    "export_checkpoint_fifo": (["export", "--checkpoint", "FIFO", "--out", "NOWHERE"], 2, "is a FIFO"),
    "export_checkpoint_folder": (["export", "--checkpoint", "EMPTY", "--out", "NOWHERE"], 2,
                                 "without checkpoint-latest.pth"),
    "export_unknown_format": (EXPORT + ["--out", "NOWHERE", "--format", "tflite"], 2, "invalid choice: 'tflite'"),
    "export_no_out": (EXPORT, 2, "the following arguments are required: --out"),
    "lmdb_labels_missing": (["lmdb", "--labels", "NOWHERE", "--img-root", "WORDS", "--out", "ROOT/o1"], 2,
                            "--labels ROOT/nowhere cannot be read (No such file or directory)"),
    "lmdb_labels_fifo": (["lmdb", "--labels", "FIFO", "--img-root", "WORDS", "--out", "ROOT/o2"], 2, "is a FIFO"),
    "lmdb_labels_folder": (["lmdb", "--labels", "WORDS", "--img-root", "WORDS", "--out", "ROOT/o3"], 2,
                           "is a folder, not a regular file"),
    "lmdb_img_root_missing": (["lmdb", "--labels", "WORDS/gt.txt", "--img-root", "NOWHERE", "--out", "ROOT/o4"], 2,
                              "--img-root ROOT/nowhere is not a folder"),
    "lmdb_out_is_a_file": (LMDB + ["--out", "FILE"], 2, "--out ROOT/plain.txt is an existing file"),
    "lmdb_out_under_a_file": (LMDB + ["--out", "DEEP"], 2, "lies under ROOT/plain.txt, an existing file"),
    "lmdb_out_not_empty": (LMDB + ["--out", "FULL"], 2, "already exists and is not empty"),
    "lmdb_split_empty": (LMDB + ["--out", "ROOT/o5", "--split", ""], 2, "--split must not be empty"),
}


def expand(argv: list[str], files: dict[str, str]) -> list[str]:
    out = []
    for arg in argv:
        head, sep, tail = arg.partition("/")
        out.append(files[head] + sep + tail if head in files else arg)
    return out


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """Exit code, stderr and stdout of main(argv) in this process."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.err, captured.out


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_command_line(name: str, files: dict[str, str], capsys) -> None:
    argv, want_code, fragment = CASES[name]
    code, err, _ = run(expand(argv, files), capsys)
    fragment = fragment.replace("ROOT", files["ROOT"])
    assert code == want_code and fragment in err, err
    assert "Traceback" not in err
    if "invalid" not in fragment and "required" not in fragment:  # argparse prints its usage first
        assert err.count("\n") == 1, err
    assert not Path(files["NOWHERE"]).exists()  # no work was done


def test_good_command_lines_still_run(files: dict[str, str], capsys, tmp_path: Path) -> None:
    """The rows above break one argument each of these, which work."""
    code, err, out = run(expand(TEST, files) + ["--json", "--batch-size", "1"], capsys)
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["total"]["num_labels"] == 2
    code, err, _ = run(expand(LMDB, files) + ["--out", str(tmp_path / "new" / "db")], capsys)
    assert code == 0 and (tmp_path / "new" / "db" / "data.mdb").is_file(), err  # missing folders are made


@pytest.mark.parametrize("name", ["test_batch_zero", "export_out_is_a_file", "lmdb_labels_fifo"])
def test_subprocess_has_no_traceback(name: str, files: dict[str, str]) -> None:
    argv, want_code, fragment = CASES[name]
    proc = subprocess.run([sys.executable, "-m", "masterocr", *expand(argv, files)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == want_code and "Traceback" not in proc.stderr, proc.stderr
    assert fragment.replace("ROOT", files["ROOT"]) in proc.stderr, proc.stderr
