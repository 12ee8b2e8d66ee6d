"""txt/jsonl datasets: filtering and counting of bad samples, warnings, unreadable images, augmentation
determinism; collate; build_dataset."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

import masterocr.data.build as build_module
from masterocr.charset import Charset
from masterocr.data import (
    Augment,
    JsonlDataset,
    TextLineDataset,
    build_dataset,
    collate,
)
from masterocr.errors import UserError

H, W = 32, 100
CHARSET = Charset.default(case_sensitive=False)
COMMON = dict(charset=CHARSET, img_h=H, img_w=W, max_len=25)


def word_png(text: str, size: tuple[int, int] = (120, 32)) -> bytes:
    img = Image.new("RGB", size, "white")
    ImageDraw.Draw(img).text((4, 8), text, fill="black")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    for name in ["a.png", "b.png", "c.png", "d.png", "e.png", "f.png", "sub/g.png"]:
        (root / name).write_bytes(word_png(name))
    data = word_png("truncated")
    (root / "trunc.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "outside.png").write_bytes(word_png("outside"))  # exists, but outside img_root
    return root


TXT_LINES = [
    "a.png,hello",
    "b.png,one,two",  # the label keeps the separator
    "c.png,",  # empty label
    "d.png,   ",  # whitespace-only label
    "e.png," + "x" * 26,  # longer than max_len=25
    "no separator here",
    "missing.png,word",  # missing image file
    "trunc.png,broken",  # kept; unreadable at __getitem__
    "../outside.png,evil",  # path traversal
    "/etc/passwd,evil",  # absolute path
    "",  # blank lines are ignored, not counted
    "   ",
    "a.png,Hello Again",  # duplicate name: kept, reported
    "f.png,ＨＥＬＬＯ",  # NFKC + lower-casing -> "hello"
    "sub/g.png,in a subfolder",
]
TXT_KEPT = ["hello", "one,two", "broken", "hello again", "hello", "in a subfolder"]
TXT_SKIPPED = {
    "empty label": 1,
    "whitespace-only label": 1,
    "longer than max_len": 1,
    "missing separator": 1,
    "missing image file": 1,
    "path outside img_root": 2,
}


def write_txt(path: Path, lines: list[str], *, crlf: bool = False, bom: bool = False) -> Path:
    text = ("\r\n" if crlf else "\n").join(lines) + "\n"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


@pytest.mark.parametrize("crlf,bom", [(False, False), (True, True)])
def test_txt_filtering_and_counts(
    tmp_path: Path, images: Path, caplog: pytest.LogCaptureFixture, crlf: bool, bom: bool
) -> None:
    gt = write_txt(tmp_path / "gt.txt", TXT_LINES, crlf=crlf, bom=bom)
    with caplog.at_level(logging.WARNING):
        ds = TextLineDataset(gt, images, **COMMON)
    assert len(ds) == len(TXT_KEPT)
    assert ds.labels == TXT_KEPT
    assert dict(ds.skipped) == TXT_SKIPPED
    summary = [r.getMessage() for r in caplog.records]
    assert len(summary) == 1
    line = summary[0]
    assert line.startswith(f"skipped 7 of 13 samples in {gt}: ")
    for part in [
        "1 empty label",
        "1 longer than max_len=25",
        "2 path outside img_root",
        "1 duplicate file name",
    ]:
        assert part in line
    assert "\n" not in line


def test_getitem_returns_tensors_and_none_for_unreadable(
    tmp_path: Path, images: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ds = TextLineDataset(write_txt(tmp_path / "gt.txt", TXT_LINES), images, **COMMON)
    img, label = ds[0]
    assert img.shape == (3, H, W) and img.dtype == torch.float32 and label == "hello"
    bad = ds.labels.index("broken")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert ds[bad] is None
        assert ds[bad] is None  # counted twice, warned once
    assert ds.skipped["unreadable image"] == 2
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "trunc.png" in warnings[0]


def test_custom_separator_and_no_img_root(tmp_path: Path, images: Path) -> None:
    gt = write_txt(images / "gt_tab.txt", ["a.png\tword one", "b.png\tx\ty", "c.png word"])
    ds = TextLineDataset(gt, None, split="\t", **COMMON)  # relative to the label file's folder
    assert ds.labels == ["word one", "x\ty"]
    assert ds.skipped == {"missing separator": 1}


def test_non_utf8_label_file_is_refused(tmp_path: Path, images: Path) -> None:
    gt = tmp_path / "latin1.txt"
    gt.write_bytes("a.png,hello\nb.png,café\n".encode("latin-1"))
    with pytest.raises(
        UserError, match=r"latin1\.txt is not UTF-8 \(bad byte on line 2\); re-save it as UTF-8"
    ):
        TextLineDataset(gt, images, **COMMON)
    with pytest.raises(UserError, match="nope.txt not found"):
        TextLineDataset(tmp_path / "nope.txt", images, **COMMON)


def test_jsonl(tmp_path: Path, images: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = [
        json.dumps({"ImageFile": "a.png", "Label": "hello, world"}),
        json.dumps({"ImageFile": "b.png", "Label": "Ünïcödé"}, ensure_ascii=False),
        "{not json",
        json.dumps({"ImageFile": "c.png"}),  # no label
        json.dumps({"ImageFile": "c.png", "Label": 7}),  # label not a string
        json.dumps(["a.png", "x"]),  # not an object
        json.dumps({"ImageFile": "d.png", "Label": ""}),
        json.dumps({"ImageFile": "../outside.png", "Label": "evil"}),
        json.dumps({"ImageFile": "gone.png", "Label": "gone"}),
    ]
    path = write_txt(tmp_path / "gt.jsonl", lines, crlf=True, bom=True)
    with caplog.at_level(logging.WARNING):
        ds = JsonlDataset(path, images, **COMMON)
    assert ds.labels == ["hello, world", "ünïcödé"]
    assert dict(ds.skipped) == {
        "bad JSON line": 4,
        "empty label": 1,
        "path outside img_root": 1,
        "missing image file": 1,
    }
    assert any(f"skipped 7 of 9 samples in {path}" in r.getMessage() for r in caplog.records)


def test_clean_file_logs_nothing(tmp_path: Path, images: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        ds = TextLineDataset(write_txt(tmp_path / "ok.txt", ["a.png,x", "b.png,y"]), images, **COMMON)
    assert len(ds) == 2 and not ds.skipped and not caplog.records


def test_set_epoch_makes_augmentation_deterministic(tmp_path: Path, images: Path) -> None:
    gt = write_txt(tmp_path / "gt.txt", ["a.png,hello", "b.png,world"])

    def make(seed: int = 0) -> TextLineDataset:
        return TextLineDataset(gt, images, training=True, augment=Augment(), seed=seed, **COMMON)

    ds = make()
    epoch0 = [ds[i][0] for i in range(2)]
    assert all(torch.equal(a, ds[i][0]) for i, a in enumerate(epoch0))  # same epoch: same output
    fresh = make()  # another process / worker layout: same (seed, epoch, index) -> same output
    assert all(torch.equal(a, fresh[i][0]) for i, a in enumerate(epoch0))
    ds.set_epoch(1)
    epoch1 = [ds[i][0] for i in range(2)]
    assert not all(torch.equal(a, b) for a, b in zip(epoch0, epoch1, strict=True))
    fresh.set_epoch(1)
    assert all(torch.equal(a, fresh[i][0]) for i, a in enumerate(epoch1))  # resume at epoch 1
    other_seed = make(seed=1)
    assert not all(torch.equal(a, other_seed[i][0]) for i, a in enumerate(epoch0))
    # no augmentation outside training
    plain = TextLineDataset(gt, images, training=False, augment=Augment(), **COMMON)
    plain.set_epoch(5)
    assert torch.equal(plain[0][0], TextLineDataset(gt, images, **COMMON)[0][0])


def test_collate_drops_none() -> None:
    a, b = torch.zeros(3, H, W), torch.ones(3, H, W)
    batch = collate([(a, "x"), None, (b, "y"), None])
    assert batch.images.shape == (2, 3, H, W) and batch.labels == ["x", "y"] and batch.skipped == 2
    assert torch.equal(batch.images[1], b)
    empty = collate([None, None])
    assert empty.images is None and empty.labels == [] and empty.skipped == 2


# build_dataset ------------------------------------------------------------------------------------
KW = dict(
    charset=CHARSET, img_h=H, img_w=W, in_channels=3, keep_ratio=False, max_len=25, training=False, seed=0
)


def test_build_text_dataset_with_original_config(tmp_path: Path, images: Path) -> None:
    gt = write_txt(tmp_path / "gt.txt", ["a.png HeLLo", "b.png two words"])
    spec = {
        "type": "TextDataset",
        "args": {"txt_file": str(gt), "img_root": str(images), "img_w": 160, "img_h": 48, "split": " "},
    }
    ds = build_dataset(spec, augment=None, **KW)
    img, label = ds[0]
    assert img.shape == (3, 48, 160) and label == "hello" and ds[1][1] == "two words"
    spec["args"]["case_sensitive"] = True
    assert build_dataset(spec, augment=None, **KW)[0][1] == "HeLLo"


def test_build_jsonl_and_original_json_name(tmp_path: Path, images: Path) -> None:
    path = write_txt(tmp_path / "gt.jsonl", [json.dumps({"ImageFile": "a.png", "Label": "hi"})])
    for spec in (
        {"type": "JsonlDataset", "args": {"jsonl_file": str(path), "img_root": str(images)}},
        {"type": "JSONDataset", "args": {"txt_file": str(path), "img_root": str(images), "training": True}},
    ):
        assert build_dataset(spec, augment=None, **KW)[0][1] == "hi"


def test_build_errors(tmp_path: Path, images: Path, caplog: pytest.LogCaptureFixture) -> None:
    gt = write_txt(tmp_path / "gt.txt", ["a.png,hello"])
    with pytest.raises(
        UserError, match=r"unknown argument\(s\) \['colour'\].*accepted: .*img_root.*txt_file"
    ):
        build_dataset({"type": "TextDataset", "args": {"txt_file": str(gt), "colour": 1}}, augment=None, **KW)
    with pytest.raises(UserError, match="unknown dataset type 'Nope'.*TextDataset.*hierarchy_dataset"):
        build_dataset({"type": "Nope", "args": {}}, augment=None, **KW)
    with pytest.raises(UserError, match="needs argument"):
        build_dataset({"type": "TextDataset", "args": {}}, augment=None, **KW)
    with pytest.raises(UserError, match="type"):
        build_dataset({"args": {}}, augment=None, **KW)
    with pytest.raises(UserError, match="img_w of dataset type TextDataset must be a positive integer"):
        build_dataset(
            {"type": "TextDataset", "args": {"txt_file": str(gt), "img_w": "wide"}}, augment=None, **KW
        )
    empty = write_txt(tmp_path / "empty.txt", ["a.png,"])
    with pytest.raises(UserError, match="no usable samples"):
        build_dataset({"type": "TextDataset", "args": {"txt_file": str(empty)}}, augment=None, **KW)
    with caplog.at_level(logging.WARNING):
        ds = build_dataset(
            {
                "type": "TextDataset",
                "args": {"txt_file": str(gt), "img_root": str(images), "convert_to_gray": True},
            },
            augment=None,
            **KW,
        )
    assert len(ds) == 1 and any("convert_to_gray" in r.getMessage() for r in caplog.records)


def test_build_synth_forwards_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    class FakeSynth:
        def __init__(self, **kwargs):
            calls.append(kwargs)

        def __len__(self) -> int:
            return 10

    monkeypatch.setattr(build_module, "SynthDataset", FakeSynth)
    aug = Augment()
    spec = {"type": "SynthDataset", "args": {"num_samples": 10, "fonts": ["x.ttf"], "img_w": 256}}
    ds = build_dataset(spec, augment=aug, **{**KW, "training": True, "seed": 7})
    assert isinstance(ds, FakeSynth)
    assert calls == [
        dict(
            num_samples=10,
            fonts=["x.ttf"],
            charset=CHARSET,
            img_h=H,
            img_w=256,
            in_channels=3,
            keep_ratio=False,
            max_len=25,
            training=True,
            seed=7,
            augment=aug,
        )
    ]


def test_variable_width_items_keep_their_width_and_collate_pads_them(tmp_path: Path) -> None:
    from masterocr.data.transforms import PAD_VALUE

    root = tmp_path / "lines"
    root.mkdir()
    for name, size in (("short.png", (60, 32)), ("long.png", (301, 32)), ("huge.png", (900, 16))):
        (root / name).write_bytes(word_png(name, size))
    gt = write_txt(tmp_path / "gt.txt", ["short.png,ab", "long.png,a longer line", "huge.png,squeezed"])
    ds = TextLineDataset(gt, root, charset=CHARSET, img_h=H, img_w=800, max_len=25, variable_width=True)
    items = [ds[i] for i in range(3)]
    assert [img.shape[-1] for img, _ in items] == [60, 301, 800]  # 900x16 is 1,800 px at height 32: squeezed
    batch = collate([items[0], None, items[1]])
    assert batch.images.shape == (2, 3, H, 304) and batch.widths.tolist() == [60, 301] and batch.skipped == 1
    assert torch.equal(batch.images[0, :, :, :60], items[0][0])
    assert (batch.images[0, :, :, 60:] == PAD_VALUE).all() and (batch.images[1, :, :, 301:] == PAD_VALUE).all()
    assert collate([items[0], items[0]]).widths is None  # one width: stacked as before


def test_out_of_vocabulary_label_characters_are_counted_and_reported_per_dataset(
    tmp_path: Path, images: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from masterocr.data.lmdb import lmdb_from_labels
    from masterocr.data.lmdb_datasets import LmdbDataset

    gt = write_txt(tmp_path / "gt.txt", ["a.png,café", "b.png,naïve café", "c.png,plain"])
    with caplog.at_level(logging.WARNING):
        ds = TextLineDataset(gt, images, **COMMON)
    assert ds.oov == {"é": 2, "ï": 1} and not CHARSET.unknown
    assert any(r.getMessage().startswith(f"{gt}: 3 label characters in 2 kinds") for r in caplog.records)
    lmdb_from_labels(gt, images, tmp_path / "db")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        lm = LmdbDataset(tmp_path / "db", **COMMON)
    assert lm.oov == ds.oov and any("not in the charset" in r.getMessage() for r in caplog.records)
