"""Metrics against hand-computed values; label/prediction readers; the eval CLI."""

import json

import pytest

from masterocr.cli import main
from masterocr.data.evaluation import evaluate_files
from masterocr.data.labels import read_labels
from masterocr.errors import UserError
from masterocr.metrics import score, str_protocol


def test_metrics_match_hand_computed_values():
    golds = ["BEACH", "Hello", "abc", "x-1"]
    preds = ["BEACH", "hello", "abd", None]
    m = score(preds, golds)
    assert m["word_acc"] == 1 / 4
    assert m["word_acc_ci"] == 2 / 4
    # edit distances: 0 + 1 + 1 + 3 (missing counts its whole label) over 5+5+3+3 characters
    assert m["edit_acc"] == pytest.approx(1 - 5 / 16)
    assert m["num_labels"] == 4 and m["num_missing"] == 1


def test_str_protocol_ignores_case_and_non_alphanumerics():
    assert str_protocol("Don't-Stop!") == "dontstop"
    m = score(["dont stop"], ["Don't-Stop!"])
    assert m["word_acc"] == 0 and m["word_acc_str"] == 1


def test_label_readers_take_jsonl_and_txt_with_separator_in_label(tmp_path):
    j = tmp_path / "l.jsonl"
    j.write_text('{"ImageFile": "a.png", "Label": "x,y"}\n\n', encoding="utf-8")
    t = tmp_path / "l.txt"
    t.write_text("a.png,x,y\r\nb.png,z\n", encoding="utf-8")
    assert read_labels(j) == {"a.png": "x,y"}
    assert read_labels(t) == {"a.png": "x,y", "b.png": "z"}
    bad = tmp_path / "bad.txt"
    bad.write_text("nosep\n", encoding="utf-8")
    with pytest.raises(UserError, match="bad.txt:1"):
        read_labels(bad)


def test_eval_cli_prints_json_with_the_originals_metrics(tmp_path, capsys):
    pred = tmp_path / "predict_result.json"
    pred.write_text(json.dumps([
        {"filename": "1.jpg", "result": "BEACH", "pred_score": 0.9},
        {"filename": "2.jpg", "result": None, "pred_score": None, "error": "unreadable"},
    ]))
    labels = tmp_path / "label.txt"
    labels.write_text('{"ImageFile": "1.jpg", "Label": "BEACH"}\n{"ImageFile": "2.jpg", "Label": "ab"}\n'
                      '{"ImageFile": "3.jpg", "Label": "cd"}\n')
    assert main(["eval", "--predict-path", str(pred), "--label-path", str(labels), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["num_labels"] == 3 and out["num_missing"] == 2
    assert out["word_acc"] == pytest.approx(1 / 3)
    assert out["edit_acc"] == pytest.approx(1 - 4 / 9)
    assert evaluate_files(pred, labels)["word_acc_ci"] == pytest.approx(1 / 3)


def test_eval_cli_reports_a_missing_file_as_one_line_error(tmp_path, capsys):
    code = main(["eval", "--predict-path", str(tmp_path / "nope.json"), "--label-path", str(tmp_path / "l.txt")])
    err = capsys.readouterr().err
    assert code == 2 and "l.txt" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
