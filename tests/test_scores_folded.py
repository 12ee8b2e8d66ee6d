"""Scores match training: eval, test and the benchmarks fold labels and predictions with normalize_text (NFKC),
say so, and label files with CR-only, CRLF and mixed line endings read as lines."""

from __future__ import annotations

import json

import pytest

from masterocr.cli import main
from masterocr.data.evaluation import evaluate_files
from masterocr.data.labels import read_labels
from masterocr.metrics import score

# (label as written, the prediction a model gives: the NFKC form its charset prints)
FOLDED = [
    ("ＡＢ１，", "AB1,"),  # full-width letters, digit and comma
    ("ﬁne", "fine"),  # a ligature
    ("cafe\u0301", "café"),  # a decomposed accent against the composed one
    ("中文，", "中文,"),  # a full-width Chinese comma
]


def test_word_scores_fold_both_sides_as_training_does():
    labels, preds = [g for g, _ in FOLDED], [p for _, p in FOLDED]
    assert score(preds, labels)["word_acc"] == 1.0
    assert score(labels, preds)["edit_acc"] == 1.0
    assert score(["x", None], ["y", "z"])["word_acc"] == 0.0  # still scores what differs


def test_eval_reads_folded_text_right_and_says_it_folds(tmp_path, capsys):
    names = [f"{i}.png" for i in range(len(FOLDED))]
    (tmp_path / "labels.txt").write_text("".join(f"{n},{g}\n" for n, (g, _) in zip(names, FOLDED)), encoding="utf-8")
    (tmp_path / "preds.json").write_text(json.dumps(
        [{"filename": n, "result": p, "pred_score": 1.0} for n, (_, p) in zip(names, FOLDED)]), encoding="utf-8")
    assert evaluate_files(tmp_path / "preds.json", tmp_path / "labels.txt")["word_acc"] == 1.0
    assert main(["eval", "--predict-path", str(tmp_path / "preds.json"), "--label-path",
                 str(tmp_path / "labels.txt"), "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["word_acc"] == 1.0
    assert "scores compare NFKC-folded labels and predictions, as training does" in out.err


@pytest.mark.parametrize(("name", "text"), [
    ("lf", b"a.png,one\nb.png,two\nc.png,three\n"),
    ("crlf", b"a.png,one\r\nb.png,two\r\nc.png,three\r\n"),
    ("cr-only", b"a.png,one\rb.png,two\rc.png,three\r"),
    ("mixed", b"a.png,one\r\nb.png,two\rc.png,three\n"),
    ("cr-only-no-final", b"a.png,one\rb.png,two\rc.png,three"),
    ("cr-blank-lines", b"a.png,one\r\r\rb.png,two\r\n\r\nc.png,three"),
])  # fmt: skip
def test_every_line_ending_reads_as_lines(tmp_path, name, text):
    path = tmp_path / "l.txt"
    path.write_bytes(text)
    assert read_labels(path) == {"a.png": "one", "b.png": "two", "c.png": "three"}


def test_a_bad_byte_after_cr_only_lines_names_its_line(tmp_path):
    from masterocr.errors import UserError

    path = tmp_path / "l.txt"
    path.write_bytes(b"a.png,one\rb.png,two\rc.png,\xff\r")
    with pytest.raises(UserError, match="bad byte on line 3"):
        read_labels(path)
