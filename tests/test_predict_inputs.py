"""`predict` as people use it (files, globs, folders with --recursive, --json, no default result file), one result
shape across the CLI's JSON, HTTP and Python, and `eval` matching label paths with folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _robust_util import tiny_weights
from fixtures import render_word, write_word_set

from masterocr.cli import main
from masterocr.data.matching import AMBIGUOUS, NO_PREDICTION, UNREADABLE, match_predictions
from masterocr.runtime.base import Prediction

SHAPE = {"text", "score", "char_scores", "error"}


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    return tiny_weights(tmp_path_factory.mktemp("weights") / "tiny.safetensors")


@pytest.fixture
def tree(tmp_path) -> Path:
    """root/images/00N.png (three words), root/images/sub/000.png, root/gt.txt with `images/...` paths."""
    root = write_word_set(tmp_path / "crops", ["cat", "Dog", "tree"])
    sub = root / "images" / "sub"
    sub.mkdir()
    shutil.copy(root / "images" / "000.png", sub / "000.png")
    (root / "gt.txt").write_text("images/000.png,cat\nimages/001.png,Dog\nimages/002.png,tree\n")
    return root


def _json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_files_globs_and_folders_print_one_json_line_per_image_and_write_nothing(tiny_ckpt, tree, capsys,
                                                                                   monkeypatch):
    monkeypatch.chdir(tree)
    ck = ["--checkpoint", str(tiny_ckpt), "--json"]
    assert main(["predict", "images/000.png", *ck]) == 0
    (one,) = _json_lines(capsys.readouterr().out)
    assert set(one) == {"filename", *SHAPE} and one["filename"] == "images/000.png" and one["error"] is None
    assert len(one["char_scores"]) == len(one["text"])

    assert main(["predict", "images/*.png", *ck]) == 0  # a quoted glob, expanded by predict
    assert [e["filename"] for e in _json_lines(capsys.readouterr().out)] == [f"images/00{i}.png" for i in range(3)]
    assert main(["predict", "images", *ck]) == 0  # a folder: names relative to it, subfolder passed over
    assert [e["filename"] for e in _json_lines(capsys.readouterr().out)] == ["000.png", "001.png", "002.png"]
    assert main(["predict", ".", "--recursive", *ck]) == 0
    names = [e["filename"] for e in _json_lines(capsys.readouterr().out)]
    assert names == ["images/000.png", "images/001.png", "images/002.png", "images/sub/000.png"]
    assert main(["predict", "images/000.png", "images/*.png", *ck]) == 0  # one file named twice: read once
    assert len(_json_lines(capsys.readouterr().out)) == 3
    assert not list(tree.rglob("predict_result.json"))  # no --output-folder: nothing written


def test_missing_inputs_are_one_line_errors(tiny_ckpt, tmp_path, capsys):
    for argv, said in ((["nope.png"], "nope.png does not exist"), (["*.nothing"], "no file matches *.nothing"),
                       ([], "name the images to read")):
        assert main(["predict", *argv, "--checkpoint", str(tiny_ckpt)]) == 2
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1, err


def test_an_unreadable_file_comes_back_with_its_error_in_the_same_shape(tiny_ckpt, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["predict", str(bad), "--checkpoint", str(tiny_ckpt), "--json"]) == 1  # nothing read
    (entry,) = _json_lines(capsys.readouterr().out)
    assert entry["text"] is None and entry["score"] is None and entry["char_scores"] == []
    assert "not an image" in entry["error"]


def test_output_folder_keeps_the_originals_keys_and_says_when_it_replaces(tiny_ckpt, tree, tmp_path, capsys,
                                                                           caplog):
    out = tmp_path / "out"
    for _ in range(2):
        assert main(["predict", str(tree / "images"), "--checkpoint", str(tiny_ckpt), "--output-folder",
                     str(out)]) == 0
    entries = json.loads((out / "predict_result.json").read_text())
    assert all({"filename", "result", "pred_score", *SHAPE} <= set(e) for e in entries)
    assert all(e["result"] == e["text"] and e["pred_score"] == e["score"] for e in entries)
    assert "replacing the older" in caplog.text


def test_one_result_shape_in_python_and_over_http(tiny_ckpt):
    from masterocr.runtime.torch import Recognizer

    rec = Recognizer.from_checkpoint(tiny_ckpt)
    good, bad = rec.predict([render_word("cat"), b"junk"])
    assert set(good.to_dict()) == SHAPE and good.to_dict()["char_scores"] == good.char_scores
    assert bad.to_dict() == {"text": None, "score": None, "char_scores": [], "error": bad.error}
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from masterocr.serve.app import create_app

    with TestClient(create_app(rec, max_wait_ms=5)) as client:
        r = client.post("/v1/recognize", files=[("file", ("a.png", b"junk", "image/png"))])
    (entry,) = r.json()["results"]
    assert set(entry) == SHAPE and entry["char_scores"] == [] and entry["text"] is None
    assert Prediction(None, None, error="x").to_dict()["char_scores"] == []


def test_label_paths_with_folders_match_predictions_made_from_those_folders():
    labels = ["images/a.png", "images/b.png", "c.png", "images/d.png", "x/e.png", "./images/f.png"]
    preds = {"a.png": "A", "data/images/b.png": "B", "sub/c.png": "C", "images/d.png": None, "one/e.png": "E1",
             "two/e.png": "E2", "images\\f.png": "F"}
    m = match_predictions(labels, preds)
    assert m.texts == ["A", "B", "C", None, None, "F"]
    assert dict(m.unmatched) == {NO_PREDICTION: ["x/e.png"], UNREADABLE: ["images/d.png"]}
    m2 = match_predictions(["e.png"], preds)
    assert m2.texts == [None] and dict(m2.unmatched) == {AMBIGUOUS: ["e.png"]} and m2.num_matched == 0
    assert match_predictions(["ab.png"], {"b.png": "B"}).texts == [None]  # whole components only


def test_eval_on_the_readmes_layout_matches_and_says_what_it_left(tiny_ckpt, tree, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", str(tree / "images"), "--checkpoint", str(tiny_ckpt), "--output-folder",
                 str(out)]) == 0
    capsys.readouterr()
    labels = tree / "gt.txt"
    labels.write_text(labels.read_text() + "images/999.png,gone\n")
    assert main(["eval", "--predict-path", str(out / "predict_result.json"), "--label-path", str(labels),
                 "--json"]) == 0
    std = capsys.readouterr()
    metrics = json.loads(std.out)
    assert metrics["num_labels"] == 4 and metrics["num_matched"] == 3 and metrics["num_missing"] == 1
    assert "1 of 4 labels unscored: no prediction has this path (e.g. images/999.png)" in std.err

    other = tmp_path / "other.txt"
    other.write_text("elsewhere/zzz.png,cat\n")
    assert main(["eval", "--predict-path", str(out / "predict_result.json"), "--label-path", str(other)]) == 1
    err = capsys.readouterr().err
    assert "no label matched a prediction (predictions are named like 000.png)" in err
