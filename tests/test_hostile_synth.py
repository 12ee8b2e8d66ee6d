"""Hostile input to `masterocr synth`: each row one bad command line and the one-line error it gets, before any
font is read or image drawn (no output folder is created)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from masterocr.cli import main

# (id, extra arguments ({tmp} is the test's folder), message fragment; exit 2 and nothing written for each)
CASES = [
    ("count-zero", ["--count", "0"], "--count must be a positive integer"),
    ("count-negative", ["--count", "-5"], "--count must be a positive integer"),
    ("workers-zero", ["--count", "2", "--workers", "0"], "--workers must be a positive integer"),
    ("width-zero", ["--count", "2", "--width", "0"], "--width must be a positive integer"),
    ("height-tiny", ["--count", "2", "--height", "4"], "--height must be from 8 to 256"),
    ("height-huge", ["--count", "2", "--height", "100000"], "--height must be from 8 to 256"),
    ("shard-size-zero", ["--count", "2", "--lines", "--shard-size", "0"], "--shard-size must be a positive"),
    ("max-width-zero", ["--count", "2", "--lines", "--max-width", "0"], "--max-width must be a positive"),
    ("max-width-narrow", ["--count", "2", "--lines", "--max-width", "16"], "narrower than --height"),
    ("lines-workers", ["--count", "2", "--lines", "--workers", "2"], "renders in one process"),
    ("lines-folder", ["--count", "2", "--lines", "--format", "folder"], "drop --format/--width"),
    ("lines-width", ["--count", "2", "--lines", "--width", "100"], "drop --format/--width"),
    ("fonts-missing", ["--count", "2", "--fonts", "{tmp}/no-fonts"], "--fonts {tmp}/no-fonts does not exist"),
    ("charset-missing", ["--count", "2", "--charset", "{tmp}/none.txt"], "none.txt"),
    ("charset-folder", ["--count", "2", "--charset", "{tmp}"], "folder"),
]


@pytest.mark.parametrize("case_id, extra, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_synth_arguments(tmp_path, capsys, case_id, extra, fragment):
    out = tmp_path / "out"
    argv = ["synth", "--out", str(out), *[a.replace("{tmp}", str(tmp_path)) for a in extra]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment.replace("{tmp}", str(tmp_path)) in err, err
    assert not out.exists()


def test_out_is_a_file(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("mine")
    assert main(["synth", "--out", str(target), "--count", "2"]) == 2
    assert "is an existing file" in capsys.readouterr().err and target.read_text() == "mine"


def test_out_under_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["synth", "--out", str(tmp_path / "f" / "sub"), "--count", "2"]) == 2
    assert "lies under" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--count", "abc"], ["--height", "tall", "--count", "2"], []])
def test_argparse_refusals_have_no_traceback(tmp_path, argv):
    run = subprocess.run([sys.executable, "-m", "masterocr", "synth", "--out", str(tmp_path / "o"), *argv],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr and "error:" in run.stderr
