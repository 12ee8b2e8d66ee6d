"""Hostile inputs to `masterocr predict`, one row each: the folder's entries, extra arguments, the exit code, a
fragment of what it says, and the entries predict_result.json must hold (None: no result file at all).

The tiny model is untrained (garbage text): rows assert which entries exist and their errors, never the text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from _robust_util import encode, tiny_weights, word
from hypothesis import given, settings
from hypothesis import strategies as st

import masterocr.data.folders as folders
from masterocr.cli import main
from masterocr.runtime.base import BaseRecognizer

PNG = encode(word("cat"), "PNG")
NO_CKPT = ["--checkpoint", "/nonexistent/weights.safetensors"]  # an error about the folders proves it came first
OK = ""  # expected entry: read, a string result


def files(**named: bytes):
    """Setup writing name=bytes files into the image folder."""
    def setup(img: Path, out: Path) -> None:
        img.mkdir(exist_ok=True)
        for name, data in named.items():
            (img / name).write_bytes(data)
    return setup


def raw_name(name: bytes, data: bytes = PNG, base=None):
    """Setup adding a file whose name is the raw bytes `name` (not necessarily UTF-8), beside `base`'s files
    (default: one good image)."""
    def setup(img: Path, out: Path) -> None:
        (base or files(good=PNG))(img, out)
        with open(os.path.join(os.fsencode(img), name), "wb") as f:
            f.write(data)
    return setup


def plus(*steps):
    def setup(img: Path, out: Path) -> None:
        for step in steps:
            step(img, out)
    return setup


def link(name: str, target: str):
    return lambda img, out: os.symlink(target, img / name)


def fifo(name: str):
    return lambda img, out: os.mkfifo(img / name)


def subfolder(name: str):
    return lambda img, out: (img / name).mkdir()


def old_result(img: Path, out: Path) -> None:
    out.mkdir(exist_ok=True)
    (out / "predict_result.json").write_text(json.dumps([{"filename": "stale.png", "result": "old"}]))


def result_is_folder(img: Path, out: Path) -> None:
    (out / "predict_result.json").mkdir(parents=True)


def out_is_file(img: Path, out: Path) -> None:
    out.write_text("keep me")


GOOD = files(good=PNG)
# (id, setup, extra argv, exit code, fragment of stderr + log, entries: name -> error fragment (OK: read); None:
# no predict_result.json)
CASES = [
    ("batch-size-0", GOOD, ["--batch-size", "0"], 2, "must be at least 1, got 0", None),
    ("batch-size-negative", GOOD, ["--batch-size", "-1"], 2, "must be at least 1, got -1", None),
    ("batch-size-word", GOOD, ["--batch-size", "abc"], 2, "expected a whole number >= 1", None),
    ("output-folder-is-file", plus(GOOD, out_is_file), NO_CKPT, 2, "is an existing file", None),
    ("img-folder-missing", lambda img, out: None, NO_CKPT, 2, "does not exist", None),
    ("img-folder-is-file", lambda img, out: img.write_bytes(PNG), NO_CKPT, 2, "is not a folder", None),
    ("img-folder-empty", files(), [], 2, "holds no image files", None),
    ("only-label-files", files(**{"gt.txt": b"a,b\n", "l.jsonl": b"{}"}), [], 2, "skipped 2 label/document", None),
    ("only-a-subfolder", plus(files(), subfolder("sub")), [], 2, "skipped 1 subfolders", None),
    ("width-differs", GOOD, ["--width", "7"], 2, "--width 7 differs from the model's input size", None),
    ("non-utf8-name", raw_name(b"\xffbad.png"), [], 0, "", {"good": OK, "\\xffbad.png": OK}),
    ("non-utf8-unreadable", raw_name(b"caf\xe9.png", b"not an image at all"), [], 0, "",
     {"good": OK, "caf\\xe9.png": "caf\\xe9.png: not an image"}),
    ("non-utf8-only", raw_name(b"\x80\x81", base=files()), [], 0, "", {"\\x80\\x81": OK}),
    ("escape-sequence-name", files(**{"\x1b[2J\x1b[31mred.png": PNG}), [], 0, "", {"\x1b[2J\x1b[31mred.png": OK}),
    ("newline-name", files(**{"two\nlines.png": PNG}), [], 0, "", {"two\nlines.png": OK}),
    ("bidi-override-name", files(**{"gnp.\u202eexe": PNG}), [], 0, "", {"gnp.\u202eexe": OK}),
    ("dangling-symlink", plus(GOOD, link("gone.png", "/nonexistent/x.png")), [], 0, "gone.png: symbolic link to",
     {"good": OK, "gone.png": "symbolic link to a missing file"}),
    ("symlink-loop", plus(GOOD, link("loop.png", "loop.png")), [], 0, "symbolic link loop",
     {"good": OK, "loop.png": "symbolic link loop"}),
    ("symlink-to-image", plus(GOOD, link("alias.png", "good")), [], 0, "", {"good": OK, "alias.png": OK}),
    ("symlink-to-folder", plus(GOOD, subfolder("d"), link("d_link", "d")), [], 0, "skipped 2 subfolders",
     {"good": OK}),
    ("fifo", plus(GOOD, fifo("pipe.png")), [], 0, "not a regular file (FIFO)",
     {"good": OK, "pipe.png": "not a regular file (FIFO); not read"}),
    ("only-a-fifo", plus(files(), fifo("pipe")), [], 1, "(0 read, 1 unreadable)", {"pipe": "FIFO"}),
    ("subfolder", plus(GOOD, subfolder("nested")), [], 0, "skipped 1 subfolders in", {"good": OK}),
    ("hidden-file", files(good=PNG, **{".DS_Store": b"junk"}), [], 0, "skipped 1 hidden files", {"good": OK}),
    ("label-file-beside", files(good=PNG, **{"notes.md": b"#"}), [], 0, "skipped 1 label/document files",
     {"good": OK}),
    ("empty-file", files(good=PNG, **{"zero.png": b""}), [], 0, "", {"good": OK, "zero.png": "empty (0 bytes)"}),
    ("text-as-png", files(good=PNG, **{"t.png": b"hello\n" * 9}), [], 0, "", {"good": OK, "t.png": "not an image"}),
    ("batch-size-1", files(a=PNG, b=PNG, c=b""), ["--batch-size", "1"], 0, "(2 read, 1 unreadable)",
     {"a": OK, "b": OK, "c": "empty"}),
    ("stale-result-replaced", plus(GOOD, old_result), [], 0, "", {"good": OK}),
    ("result-path-is-folder", plus(GOOD, result_is_folder), [], 2, "cannot remove the older", None),
    ("output-folder-created", GOOD, ["--output-folder", "{out}/a/b"], 0, "", {"good": OK}),
    ("every-kind-at-once", plus(files(good=PNG, **{"gt.txt": b"", ".h": b"", "e.png": b""}), subfolder("s"),
                                link("gone", "/nonexistent"), link("loop", "loop"), fifo("f"),
                                raw_name(b"\xfe.png", base=files())), [], 0, "skipped 1 hidden files",
     {"good": OK, "e.png": "empty", "gone": "missing file", "loop": "loop", "f": "FIFO", "\\xfe.png": OK}),
]


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    return tiny_weights(tmp_path_factory.mktemp("weights") / "tiny.safetensors")


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse refuses its arguments itself
        return int(exc.code)


def read_result(out: Path) -> list[dict] | None:
    path = out / "predict_result.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_predict(case, tiny_ckpt, tmp_path, capsys, caplog):
    _, setup, extra, want_rc, fragment, want_entries = case
    img, out = tmp_path / "imgs", tmp_path / "out"
    setup(img, out)
    extra = [a.replace("{out}", str(out)) for a in extra]
    if "--output-folder" in extra:
        out = Path(extra[extra.index("--output-folder") + 1])
    rc = run_cli(["predict", "--checkpoint", str(tiny_ckpt), "--img-folder", str(img), "--output-folder", str(out),
                  *extra])
    std = capsys.readouterr()
    said = std.err + caplog.text
    assert rc == want_rc, said
    assert fragment in said, said
    assert "Traceback" not in said
    assert "\x1b" not in std.out + std.err and "\u202e" not in std.out  # names printed escaped
    if rc == 2:  # one error line (argparse puts its usage above it)
        assert [ln for ln in std.err.splitlines() if "error:" in ln] == [std.err.strip().split("\n")[-1]], std.err
    if want_entries is None:
        assert (out.is_file() and out.read_text() == "keep me") or read_result(out) is None
        return
    entries = read_result(out)
    by_name = {e["filename"]: e for e in entries}
    assert len(by_name) == len(entries) and set(by_name) == set(want_entries)
    assert len(std.out.splitlines()) == len(entries)  # one printed line per entry, whatever the name holds
    for name, error in want_entries.items():
        entry = by_name[name]
        assert entry.get("name_escaped", False) == ("\\x" in name), entry
        if error == OK:
            assert isinstance(entry["result"], str) and entry["error"] is None, entry
        else:
            assert entry["result"] is None and error in entry["error"], entry
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    umask = os.umask(0o022)
    os.umask(umask)
    assert (out / "predict_result.json").stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would make it


@pytest.mark.parametrize("make", [lambda p: None, lambda p: p.write_bytes(PNG), lambda p: p.mkdir()])
def test_folder_errors_print_the_path_escaped(tiny_ckpt, tmp_path, capsys, make):
    """Missing, a file, empty: the one-line error names the folder without its raw escape sequence."""
    img = tmp_path / "\x1b[31mred"
    make(img)
    assert main(["predict", "--checkpoint", str(tiny_ckpt), "--img-folder", str(img), "--output-folder",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b[31mred" in err and len(err.strip().splitlines()) == 1, err


def test_a_run_interrupted_during_inference_leaves_no_result(tiny_ckpt, tmp_path, monkeypatch, capsys):
    """Ctrl-C in the middle: the older result is gone (eval cannot score it as this run's) and no .tmp stays."""
    files(a=PNG, b=PNG)(tmp_path / "imgs", tmp_path / "out")
    old_result(tmp_path / "imgs", tmp_path / "out")

    def interrupted(self, images, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(BaseRecognizer, "predict", interrupted)
    rc = main(["predict", "--checkpoint", str(tiny_ckpt), "--img-folder", str(tmp_path / "imgs"),
               "--output-folder", str(tmp_path / "out")])
    assert rc == 130 and "interrupted" in capsys.readouterr().err
    assert list((tmp_path / "out").iterdir()) == []


def test_a_failed_write_removes_its_temporary_file(tiny_ckpt, tmp_path, monkeypatch, capsys):
    files(a=PNG)(tmp_path / "imgs", tmp_path / "out")

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(folders.os, "replace", disk_full)
    rc = main(["predict", "--checkpoint", str(tiny_ckpt), "--img-folder", str(tmp_path / "imgs"),
               "--output-folder", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "No space left on device" in err and "predict_result.json" in err
    assert list((tmp_path / "out").iterdir()) == []


def test_escapes_are_documented_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "older predict_result.json there is removed before inference starts" in text
    assert "name_escaped" in text


def test_through_the_command_no_traceback(tiny_ckpt, tmp_path):
    """A real process with a non-UTF-8 name holding an escape sequence: no traceback, nothing raw on stdout."""
    raw_name(b"\x1b]0;pwned\x07\xff.png")(tmp_path / "imgs", tmp_path / "out")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.run([sys.executable, "-m", "masterocr", "predict", "--checkpoint", str(tiny_ckpt),
                           "--img-folder", str(tmp_path / "imgs"), "--output-folder", str(tmp_path / "out")],
                          capture_output=True, timeout=120, env=env)
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr
    assert b"\x1b" not in proc.stdout + proc.stderr and b"\x07" not in proc.stdout
    names = {e["filename"] for e in read_result(tmp_path / "out")}
    assert names == {"good", "\x1b]0;pwned\x07\\xff.png"}
    assert b"\\x1b]0;pwned\\x07\\xff.png\t" in proc.stdout


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=24).filter(lambda b: b"/" not in b and b"\0" not in b))
def test_any_file_name_bytes_escape_to_valid_utf8_and_safe_terminal_text(raw):
    """Whatever bytes a name holds: the JSON text is valid UTF-8, flagged exactly when the bytes are not UTF-8,
    and the terminal text holds no control character."""
    name = os.fsdecode(raw)
    text, escaped = folders.escape_name(name)
    text.encode("utf-8")
    try:
        raw.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    assert escaped == (not valid) and (text == name) == valid
    shown = folders.terminal_safe(name)
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in shown), ascii(shown)
