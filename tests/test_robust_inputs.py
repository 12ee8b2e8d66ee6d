"""Every bad-input case through every entry point: `masterocr predict`, `Recognizer.predict`, the datasets.

The tiny model is untrained (garbage text): these tests assert structure and error reasons, never text.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from _robust_util import BAD_FILES, GOOD_FILES, encode, tiny_weights, word, write_files
from PIL import Image

from masterocr.charset import Charset
from masterocr.cli import main
from masterocr.data.datasets import TextLineDataset, collate
from masterocr.data.images import load_image
from masterocr.data.labels import (
    EMPTY_LABEL,
    MISSING_IMAGE,
    NO_SEPARATOR,
    OUTSIDE_ROOT,
    TOO_LONG,
    UNREADABLE,
    WHITESPACE_LABEL,
)
from masterocr.errors import UserError
from masterocr.runtime.torch import Recognizer

ALL_FILES = {**BAD_FILES, **GOOD_FILES}


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    return tiny_weights(tmp_path_factory.mktemp("weights") / "tiny.safetensors")


@pytest.fixture(scope="module")
def rec(tiny_ckpt) -> Recognizer:
    return Recognizer.from_checkpoint(tiny_ckpt)


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory) -> Path:
    return write_files(tmp_path_factory.mktemp("mixed"), ALL_FILES)


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text and "Error:" not in text.replace("error:", "")


# predict folder (CLI) --------------------------------------------------------------------------------------------
def test_cli_predict_writes_one_entry_per_file_with_reasons(tiny_ckpt, mixed_folder, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["predict", "--checkpoint", str(tiny_ckpt), "--img-folder", str(mixed_folder),
               "--output-folder", str(out), "--batch-size", "32"])
    captured = capsys.readouterr()
    assert rc == 0
    _no_traceback(captured.err)
    entries = json.loads((out / "predict_result.json").read_text(encoding="utf-8"))
    by_name = {e["filename"]: e for e in entries}
    assert len(entries) == len(by_name) == len(ALL_FILES)
    assert set(by_name) == set(ALL_FILES)
    for name, (_, reason) in BAD_FILES.items():
        e = by_name[name]
        assert e["result"] is None and e["pred_score"] is None, name
        assert reason in e["error"] and name in e["error"], (name, e["error"])
    for name in GOOD_FILES:
        e = by_name[name]
        assert e["error"] is None and e["text"] == e["result"] and e["score"] == e["pred_score"], (name, e)
        assert isinstance(e["result"], str) and 0.0 <= e["pred_score"] <= 1.0, name
    assert f"({len(GOOD_FILES)} read, {len(BAD_FILES)} unreadable)" in captured.err
    # stdout: one line per file, errors marked
    lines = captured.out.strip().splitlines()
    assert len(lines) == len(ALL_FILES)
    assert sum("\tERROR\t" in line for line in lines) == len(BAD_FILES)


def test_cli_predict_all_unreadable_exits_nonzero(tiny_ckpt, tmp_path, capsys):
    folder = write_files(tmp_path / "bad", BAD_FILES)
    out = tmp_path / "out"
    rc = main(["predict", "--checkpoint", str(tiny_ckpt), "--img-folder", str(folder), "--output-folder", str(out)])
    captured = capsys.readouterr()
    assert rc != 0
    assert f"(0 read, {len(BAD_FILES)} unreadable)" in captured.err
    _no_traceback(captured.err)
    entries = json.loads((out / "predict_result.json").read_text())
    assert len(entries) == len(BAD_FILES) and all(e["error"] for e in entries)


@pytest.mark.parametrize("setup, fragment", [
    (lambda d: None, "not exist"),  # missing folder
    (lambda d: d.mkdir(), "holds no image files"),  # empty folder
])
def test_cli_predict_bad_folder_is_one_line_error(tiny_ckpt, tmp_path, capsys, setup, fragment):
    folder = tmp_path / "imgs"
    setup(folder)
    rc = main(["predict", "--checkpoint", str(tiny_ckpt), "--img-folder", str(folder),
               "--output-folder", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and fragment in err and str(folder) in err
    _no_traceback(err)


# Python API --------------------------------------------------------------------------------------------------------
def test_api_paths_and_bytes(rec, mixed_folder):
    names = sorted(ALL_FILES)
    sources = [mixed_folder / n for n in names] + [(mixed_folder / n).read_bytes() for n in names]
    preds = rec.predict(sources, batch_size=64)  # bad inputs do not spoil the batch
    assert len(preds) == 2 * len(names)
    for i, (name, pred) in enumerate(zip(names + names, preds)):
        kind = "path" if i < len(names) else "bytes"
        if name in BAD_FILES:
            assert pred.text is None and pred.score is None, name
            assert BAD_FILES[name][1] in pred.error, (name, pred.error)
            assert (name if kind == "path" else "<bytes>") in pred.error
            assert pred.to_json(name)["error"] == pred.error
        else:
            assert pred.error is None and isinstance(pred.text, str) and 0.0 <= pred.score <= 1.0, name
    assert [p.text for p in preds[: len(names)]] == [p.text for p in preds[len(names):]]  # same image, same text
    # a single (non-list) input gives one prediction too
    bad, good = rec.predict(sources[names.index("bomb.png")]), rec.predict(sources[names.index("word.png")])
    assert len(bad) == len(good) == 1 and "pixels" in bad[0].error and good[0].error is None


def test_api_pil_images(rec, mixed_folder):
    opened = [Image.open(mixed_folder / name) for name in sorted(GOOD_FILES)]  # lazily decoded
    opened.append(Image.open(io.BytesIO(BAD_FILES["truncated.jpg"][0])))  # header ok, fails when decoded
    try:
        preds = rec.predict(opened)
    finally:
        for img in opened:
            img.close()
    assert all(p.error is None and isinstance(p.text, str) for p in preds[:-1])
    assert preds[-1].text is None and "truncated or corrupt" in preds[-1].error


ARRAYS = [
    (np.zeros((0, 10), np.uint8), "zero size"),
    (np.zeros((10, 0, 3), np.uint8), "zero size"),
    (np.zeros((5,), np.uint8), "unsupported array shape"),
    (np.zeros((4, 4, 2), np.uint8), "unsupported array shape"),
    (np.zeros((4, 4), np.complex64), "unsupported array dtype"),
    (np.broadcast_to(np.zeros(1, np.bool_), (30000, 30000)), "more than the limit of 40000000"),
    (np.ones((1, 1), np.uint8), None),
    (np.ones((1, 4000), np.uint8), None),
    (np.ones((4000, 1, 3), np.uint8), None),
    (np.arange(64 * 16, dtype=np.uint16).reshape(16, 64), None),
    (np.full((16, 64, 4), 0.5, np.float32), None),
    (np.full((16, 64), np.nan, np.float64), None),
    (np.ones((16, 64), np.bool_), None),
]


def test_api_numpy_arrays(rec):
    preds = rec.predict([a for a, _ in ARRAYS])
    for (array, fragment), pred in zip(ARRAYS, preds):
        if fragment is None:
            assert pred.error is None and isinstance(pred.text, str), (array.shape, array.dtype)
        else:
            assert pred.text is None and fragment in pred.error and "<array>" in pred.error, pred.error


def test_api_unsupported_type(rec):
    [pred] = rec.predict([{"not": "an image"}])
    assert "cannot read an image from dict" in pred.error


def test_loaded_images_are_what_the_file_means(mixed_folder):
    """The first frame of animations/multi-page files; EXIF orientation applied; 16-bit scaled, not clipped."""
    gif = load_image(mixed_folder / "animated.gif")
    with Image.open(mixed_folder / "animated.gif") as im:
        assert gif.size == im.size and np.array_equal(np.asarray(gif), np.asarray(im.convert("RGB")))
    rotated = load_image(mixed_folder / "exif_rotated.jpg")
    stored = word("rot").size
    assert rotated.size == (stored[1], stored[0])
    deep = np.asarray(load_image(mixed_folder / "deep16.png"))
    assert deep.min() < 50 and deep.max() > 200  # black text on white survives the 16 -> 8 bit mapping
    rgba = np.asarray(load_image(encode(Image.new("RGBA", (4, 4), (0, 0, 0, 0)), "PNG")))
    assert (rgba == 255).all()  # transparent -> white
    for name in GOOD_FILES:
        assert load_image(mixed_folder / name).mode == "RGB"


# training datasets ---------------------------------------------------------------------------------------------------
def _dataset(tmp_path: Path, text: str | bytes, **kw) -> TextLineDataset:
    label = tmp_path / "gt.txt"
    label.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    kw.setdefault("charset", Charset.default())
    return TextLineDataset(label, kw.pop("img_root", tmp_path / "imgs"), img_h=32, img_w=128, in_channels=1,
                           max_len=25, **kw)


def test_dataset_skips_and_counts_bad_images(tmp_path):
    write_files(tmp_path / "imgs", ALL_FILES)
    lines = [f"{name},word" for name in ALL_FILES]
    ds = _dataset(tmp_path, "\n".join(lines) + "\n")
    assert len(ds) == len(ALL_FILES)  # images are read lazily, so all lines are kept at first
    items = [ds[i] for i in range(len(ds))]
    names = [Path(p).name for p in ds.paths]
    assert {n for n, it in zip(names, items) if it is None} == set(BAD_FILES)
    assert ds.skipped[UNREADABLE] == len(BAD_FILES)
    for item in items:
        if item is not None:
            assert item[0].shape == (1, 32, 128) and item[1] == "word"
    batch = collate(items)
    assert batch.skipped == len(BAD_FILES) and batch.images.shape[0] == len(GOOD_FILES)


def test_dataset_label_file_cases(tmp_path, caplog):
    write_files(tmp_path / "imgs", GOOD_FILES)
    charset = Charset.default()
    lines = [
        "word.png,cat",  # good
        "word.png,cat again",  # duplicated file name: kept and counted
        "missing.png,ghost",  # missing image file
        "one_pixel.png,",  # empty label
        "palette.png,    ",  # label of only spaces
        "rgba.png," + "x" * 26,  # longer than max_len 25
        "no separator here",  # missing separator
        "cmyk.jpg,caf\u00e9\u4e2d",  # unknown characters: kept, encoded as UNK
        "../../etc/passwd,root",  # escapes img_root
        "/etc/passwd,root",  # absolute path
        "deep16.png, spaced label ",  # spaces inside a label are kept
        "",  # blank line: ignored, not counted
    ]
    text = "\ufeff" + "\r\n".join(lines) + "\r\n"  # BOM + CRLF
    with caplog.at_level("WARNING"):
        ds = _dataset(tmp_path, text, charset=charset)
    assert ds.total == len(lines) - 1
    assert ds.duplicates == 1
    assert dict(ds.skipped) == {MISSING_IMAGE: 1, EMPTY_LABEL: 1, WHITESPACE_LABEL: 1, TOO_LONG: 1,
                                NO_SEPARATOR: 1, OUTSIDE_ROOT: 2}
    assert [Path(p).name for p in ds.paths] == ["word.png", "word.png", "cmyk.jpg", "deep16.png"]
    assert ds.labels == ["cat", "cat again", "caf\u00e9\u4e2d", " spaced label "]  # no BOM, no \r
    assert "skipped 7 of 11 samples" in caplog.text and "1 duplicate file name" in caplog.text
    # unknown characters become UNK and are counted
    from masterocr.charset import UNK

    ids = charset.encode(ds.labels[2])
    assert ids.count(UNK) == 2 and charset.unknown == {"\u00e9": 1, "\u4e2d": 1}


def test_dataset_non_utf8_label_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=r"gt.txt is not UTF-8 \(bad byte on line 2\)"):
        _dataset(tmp_path, b"a.png,ok\nb.png,caf\xe9\n")


def test_dataset_missing_label_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        TextLineDataset(tmp_path / "nope.txt", tmp_path, charset=Charset.default(), img_h=32, img_w=128)


def test_training_refuses_a_set_with_no_usable_sample(tmp_path, capsys):
    """Through the trainer: paths escaping img_root and missing files are skipped, then a one-line error."""
    write_files(tmp_path / "imgs", GOOD_FILES)
    (tmp_path / "gt.txt").write_text("../../etc/passwd,root\n/etc/passwd,root\nmissing.png,x\n")
    data = {"type": "TextDataset", "args": {"txt_file": str(tmp_path / "gt.txt"), "img_root": str(tmp_path / "imgs")}}
    cfg = {"name": "r", "model_arch": {"type": "MASTER", "args": {"preset": "tiny"}}, "train_dataset": data,
           "trainer": {"max_steps": 1, "save_dir": str(tmp_path / "saved"), "progress": False}}
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    rc = main(["train", "-c", str(tmp_path / "c.json"), "-d", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "no usable samples" in err and "path outside img_root" in err
    _no_traceback(err)
    assert not (tmp_path / "saved").exists()


def test_cli_predict_skips_label_and_document_files_and_says_so(tiny_ckpt, tmp_path, caplog):
    folder = tmp_path / "crops"
    write_files(
        folder,
        {
            "a.png": encode(word("one"), "PNG"),
            "labels.jsonl": b"{}",
            "gt.txt": b"a.png,one\n",
            "README.md": b"# crops",
            "no_suffix": encode(word("two"), "PNG"),
        },
    )
    out = tmp_path / "out"
    assert (
        main(["predict", "--checkpoint", str(tiny_ckpt), "--img-folder", str(folder), "--output-folder", str(out)]) == 0
    )
    entries = json.loads((out / "predict_result.json").read_text(encoding="utf-8"))
    assert sorted(e["filename"] for e in entries) == ["a.png", "no_suffix"]  # a file with no suffix is still tried
    assert all(e["result"] is not None for e in entries)
    assert "skipped 3 label/document files" in caplog.text and "labels.jsonl" in caplog.text
    only_labels = tmp_path / "labels_only"
    write_files(only_labels, {"gt.txt": b"a.png,one\n"})
    assert main(["predict", "--checkpoint", str(tiny_ckpt), "--img-folder", str(only_labels)]) != 0
