"""Hostile inputs to `masterocr eval`, one row each: the label file, the predictions file, the exit code and a
fragment of the one-line error (or the metrics of a run that must be scored).

Every refusal names the file (and the line or entry) and the reason; nothing is scored as something it is not
(a null label as "None", an empty file as 100 %), and Unicode line separators stay inside their label.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from masterocr.cli import main

DIR, FIFO = "<folder>", "<fifo>"
DEEP = "[" * 100_000 + "]" * 100_000


def jl(*objs) -> bytes:
    """JSON lines of `objs` (strings are written as they are: raw lines)."""
    return "".join((o if isinstance(o, str) else json.dumps(o, ensure_ascii=False)) + "\n" for o in objs).encode()


def preds(*pairs) -> bytes:
    return json.dumps([{"filename": n, "result": r, "pred_score": 0.5} for n, r in pairs]).encode()


A = {"ImageFile": "a.png", "Label": "cat"}
GOOD_PREDS = preds(("a.png", "cat"))

# (id, label file name, label file, predictions file, exit code, fragment of stderr or expected metrics)
CASES = [
    ("null-label", "l.jsonl", jl(A, {"ImageFile": "b.png", "Label": None}), GOOD_PREDS, 2,
     'l.jsonl:2: bad JSON line: "Label" is null'),
    ("list-label", "l.jsonl", jl({"ImageFile": "a.png", "Label": ["c", "a"]}), GOOD_PREDS, 2, '"Label" is a list'),
    ("number-label", "l.jsonl", jl({"ImageFile": "a.png", "Label": 42}), GOOD_PREDS, 2, '"Label" is a number'),
    ("object-label", "l.jsonl", jl({"ImageFile": "a.png", "Label": {"t": "x"}}), GOOD_PREDS, 2,
     '"Label" is an object'),
    ("bool-label", "l.jsonl", jl({"ImageFile": "a.png", "Label": True}), GOOD_PREDS, 2, '"Label" is a boolean'),
    ("missing-label", "l.jsonl", jl({"ImageFile": "a.png"}), GOOD_PREDS, 2, '"Label" is missing'),
    ("number-imagefile", "l.jsonl", jl({"ImageFile": 7, "Label": "x"}), GOOD_PREDS, 2, '"ImageFile" is a number'),
    ("line-is-list", "l.jsonl", jl(A, ["a.png", "cat"]), GOOD_PREDS, 2, "l.jsonl:2: bad JSON line: the line is a list"),
    ("broken-json", "l.jsonl", jl(A, '{"ImageFile": "b.png", "Label": '), GOOD_PREDS, 2,
     "l.jsonl:2: bad JSON line: not valid JSON"),
    ("deep-label-line", "l.jsonl", jl(A, DEEP), GOOD_PREDS, 2, "l.jsonl:2: bad JSON line: JSON nested too deeply"),
    ("empty-label-file", "l.txt", b"", GOOD_PREDS, 2, "holds no labels"),
    ("blank-label-file", "l.txt", b"\n \r\n\n", GOOD_PREDS, 2, "holds no labels"),
    ("bom-only-label-file", "l.jsonl", b"\xef\xbb\xbf\n", GOOD_PREDS, 2, "holds no labels"),
    ("txt-no-separator", "l.txt", b"a.png,cat\nb.png cat\n", GOOD_PREDS, 2, "l.txt:2: missing separator"),
    ("txt-empty-name", "l.txt", b",cat\n", GOOD_PREDS, 2, "l.txt:1: empty image name"),
    ("label-not-utf8", "l.txt", b"a.png,caf\xe9\n", GOOD_PREDS, 2, "not UTF-8 (bad byte on line 1)"),
    ("label-is-folder", "l.txt", DIR, GOOD_PREDS, 2, "label file"),
    ("label-is-fifo", "l.txt", FIFO, GOOD_PREDS, 2, "is a FIFO"),
    ("preds-is-fifo", "l.txt", b"a.png,cat\n", FIFO, 2, "predictions file"),
    ("preds-is-folder", "l.txt", b"a.png,cat\n", DIR, 2, "is a folder"),
    ("preds-missing", "l.txt", b"a.png,cat\n", None, 2, "not found"),
    ("preds-object", "l.txt", b"a.png,cat\n", b'{"a.png": "cat"}', 2, "the file holds an object"),
    ("preds-entry-string", "l.txt", b"a.png,cat\n", b'["a.png"]', 2, "entry 0 is a string, not an object"),
    ("preds-entry-null", "l.txt", b"a.png,cat\n", b'[{"filename": "a.png", "result": "cat"}, null]', 2,
     "entry 1 is null"),
    ("preds-result-number", "l.txt", b"a.png,cat\n", preds(("a.png", 3)), 2, '"result" is a number'),
    ("preds-result-list", "l.txt", b"a.png,cat\n", preds(("a.png", ["c"])), 2, '"result" is a list'),
    ("preds-result-object", "l.txt", b"a.png,cat\n", preds(("a.png", {})), 2, '"result" is an object'),
    ("preds-filename-null", "l.txt", b"a.png,cat\n", b'[{"filename": null, "result": "x"}]', 2,
     '"filename" is null'),
    ("preds-filename-missing", "l.txt", b"a.png,cat\n", b'[{"result": "x"}]', 2, '"filename" is missing'),
    ("preds-duplicate-filename", "l.txt", b"a.png,cat\n", preds(("a.png", "cat"), ("a.png", "dog")), 2,
     "entry 1: filename 'a.png' appears twice"),
    ("preds-deep", "l.txt", b"a.png,cat\n", DEEP.encode(), 2, "JSON nested too deeply"),
    ("preds-not-json", "l.txt", b"a.png,cat\n", b"not json", 2, "is not a predict_result.json"),
    ("preds-not-utf8", "l.txt", b"a.png,cat\n", b'[{"filename": "\xff"}]', 2, "is not a predict_result.json"),
    # scored: separators inside labels stay inside them, a null result counts as missing
    ("u2028-in-json-label", "l.jsonl", jl({"ImageFile": "a.png", "Label": "ca\u2028t"}, '{"ImageFile": "b.png", '
     '"Label": "d\u2029g"}'), preds(("a.png", "ca\u2028t"), ("b.png", "d\u2029g")), 0,
     {"num_labels": 2, "word_acc": 1.0}),
    ("formfeed-vt-nel-in-txt-label", "l.txt", "a.png,c\x0ca\x0bt\n\ufeffb.png,d\x85o\x1cg\r\n".encode(),
     preds(("a.png", "c\x0ca\x0bt"), ("b.png", "d\x85o\x1cg")), 0, {"num_labels": 2, "word_acc": 0.5}),
    ("null-result-is-missing", "l.txt", b"a.png,cat\nb.png,dog\n", preds(("a.png", "cat"), ("b.png", None)), 0,
     {"num_labels": 2, "num_missing": 1, "word_acc": 0.5}),
]


def _place(path: Path, content) -> None:
    if content == DIR:
        path.mkdir()
    elif content == FIFO:
        os.mkfifo(path)  # opening it for reading would block: the readers must stat first
    elif content is not None:
        path.write_bytes(content)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_eval(case, tmp_path, capsys):
    case_id, label_name, labels, predictions, want_rc, want = case
    label_path, pred_path = tmp_path / label_name, tmp_path / "predict_result.json"
    _place(label_path, labels)
    _place(pred_path, predictions)
    rc = main(["eval", "--predict-path", str(pred_path), "--label-path", str(label_path), "--json"])
    out, err = capsys.readouterr()
    assert rc == want_rc, err
    if isinstance(want, dict):
        metrics = json.loads(out)
        assert {k: metrics[k] for k in want} == want
    else:
        assert want in err and len(err.strip().splitlines()) == 1, err
        named = pred_path if case_id.startswith("preds-") else label_path  # the file at fault is named
        assert str(named) in err, err
        assert out == ""


def test_formfeed_label_is_one_label_not_two(tmp_path, capsys):
    """A txt label holding \\x0c is one line: str.splitlines would make "t" a line with no separator."""
    (tmp_path / "l.txt").write_bytes(b"a.png,ca\x0ct\n")
    (tmp_path / "p.json").write_bytes(preds(("a.png", "ca")))
    assert main(["eval", "--predict-path", str(tmp_path / "p.json"), "--label-path", str(tmp_path / "l.txt"),
                 "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["num_labels"] == 1 and metrics["word_acc"] == 0.0


@pytest.mark.parametrize("which", ["labels", "predictions"])
def test_deep_json_through_the_command_has_no_traceback(tmp_path, which):
    label = tmp_path / "l.jsonl"
    label.write_bytes(jl(DEEP) if which == "labels" else jl(A))
    pred = tmp_path / "p.json"
    pred.write_bytes(DEEP.encode() if which == "predictions" else GOOD_PREDS)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.run([sys.executable, "-m", "masterocr", "eval", "--predict-path", str(pred), "--label-path",
                           str(label)], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "nested too deeply" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
