"""LMDB: write_lmdb round trip, damaged LMDBs, hierarchy_dataset selection, lmdb_from_labels, workers."""

from __future__ import annotations

import io
import logging
import os
import pickle
from pathlib import Path

import lmdb
import pytest
import torch
from PIL import Image, ImageDraw
from torch.utils.data import DataLoader, Dataset

import masterocr.data.lmdb as lmdb_module
from masterocr.charset import Charset
from masterocr.data import (
    Augment,
    ConcatTextDataset,
    LmdbDataset,
    build_dataset,
    collate,
    hierarchy_dataset,
    lmdb_from_labels,
    write_lmdb,
)
from masterocr.errors import UserError

H, W = 32, 100
COMMON = dict(charset=Charset.default(case_sensitive=False), img_h=H, img_w=W, max_len=10)
MAP = 1 << 26  # 64 MiB is plenty for tests


def word_png(text: str) -> bytes:
    img = Image.new("L", (100, 32), 255)
    ImageDraw.Draw(img).text((4, 8), text, fill=0)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def make_lmdb(path: Path, labels: list[str], broken: frozenset[int] = frozenset()) -> Path:
    samples = [(word_png(t)[:40] if i in broken else word_png(t), t) for i, t in enumerate(labels)]
    assert write_lmdb(samples, path, map_size=MAP, commit_every=2, progress=False) == len(labels)
    return path


def set_key(path: Path, key: bytes, value: bytes | None) -> None:
    env = lmdb.open(str(path), map_size=MAP)
    with env.begin(write=True) as txn:
        if value is None:
            txn.delete(key)
        else:
            txn.put(key, value)
    env.close()


def test_round_trip(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    labels = ["Hello", "world", "", "   ", "x" * 11, "ok", "broken"]
    out = make_lmdb(tmp_path / "db", labels, broken=frozenset({6}))
    assert not (tmp_path / "db.tmp").exists()
    env = lmdb.open(str(out), readonly=True, lock=False)
    with env.begin() as txn:
        assert txn.get(b"num-samples") == b"7"
        assert txn.get(b"label-000000001") == b"Hello"
        assert txn.get(b"image-000000002") == word_png("world")
    env.close()
    with caplog.at_level(logging.WARNING):
        ds = LmdbDataset(out, **COMMON)
    assert len(ds) == 4
    assert dict(ds.skipped) == {"empty label": 1, "whitespace-only label": 1, "longer than max_len": 1}
    assert [r.getMessage() for r in caplog.records] == [
        f"skipped 3 of 7 samples in {out}: 1 empty label, 1 whitespace-only label, 1 longer than max_len=10"
    ]
    img, label = ds[0]
    assert img.shape == (3, H, W) and label == "hello"
    assert [ds[i][1] for i in range(3)] == ["hello", "world", "ok"]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert ds[3] is None
    assert ds.skipped["unreadable image"] == 1
    assert "image-000000007" in caplog.records[0].getMessage()


def test_num_samples_bigger_than_real(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = make_lmdb(tmp_path / "db", ["a", "b", "c"])
    set_key(out, b"num-samples", b"5")
    set_key(out, b"image-000000002", None)  # a label without its image
    with caplog.at_level(logging.WARNING):
        ds = LmdbDataset(out, **COMMON)
    assert [ds[i][1] for i in range(len(ds))] == ["a", "c"]
    assert dict(ds.skipped) == {"missing record": 3}
    assert f"skipped 3 of 5 samples in {out}: 3 missing record" in caplog.records[0].getMessage()


def test_huge_num_samples_does_not_hang(tmp_path: Path) -> None:
    out = make_lmdb(tmp_path / "db", ["a"])
    set_key(out, b"num-samples", b"999999999999")
    ds = LmdbDataset(out, **COMMON)
    assert len(ds) == 1 and ds.skipped["missing record"] == 999999999998


@pytest.mark.parametrize(
    "value,match",
    [(None, "no 'num-samples' key"), (b"seven", "not a non-negative integer"), (b"-1", "non-negative")],
)
def test_bad_num_samples(tmp_path: Path, value: bytes | None, match: str) -> None:
    out = make_lmdb(tmp_path / "db", ["a"])
    set_key(out, b"num-samples", value)
    with pytest.raises(UserError, match=match) as info:
        LmdbDataset(out, **COMMON)
    assert str(out) in str(info.value)


def test_not_an_lmdb(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        LmdbDataset(tmp_path / "missing", **COMMON)
    (tmp_path / "plain").mkdir()
    with pytest.raises(UserError, match="no data.mdb"):
        LmdbDataset(tmp_path / "plain", **COMMON)
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "data.mdb").write_bytes(b"this is not an lmdb file" * 200)
    with pytest.raises(UserError, match="not an LMDB or is damaged") as info:
        LmdbDataset(fake, **COMMON)
    assert str(fake) in str(info.value)


def test_write_lmdb_refuses_existing_and_cleans_up_on_failure(tmp_path: Path) -> None:
    out = make_lmdb(tmp_path / "db", ["a"])
    with pytest.raises(UserError, match="already exists"):
        write_lmdb([(b"x", "y")], out, map_size=MAP, progress=False)

    def interrupted():
        yield word_png("a"), "a"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_lmdb(interrupted(), tmp_path / "half", map_size=MAP, progress=False)
    assert not (tmp_path / "half").exists() and not (tmp_path / "half.tmp").exists()
    (tmp_path / "empty_dir").mkdir()  # an empty target folder is fine
    assert write_lmdb([(word_png("a"), "a")], tmp_path / "empty_dir", map_size=MAP, progress=False) == 1
    with pytest.raises(TypeError):
        write_lmdb([("not bytes", "a")], tmp_path / "typed", map_size=MAP, progress=False)


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "training"
    make_lmdb(root / "MJ_train", ["mj1", "mj2"])
    make_lmdb(root / "MJ_test", ["mjt"])
    make_lmdb(root / "ST", ["st1", "st2", "st3"])
    make_lmdb(root / "extra" / "nested", ["n1"])
    (root / "not_lmdb").mkdir()
    return root


def labels_of(ds) -> list[str]:
    return [ds[i][1] for i in range(len(ds))]


@pytest.mark.parametrize(
    "select,expected",
    [
        ("MJ_train-ST", ["mj1", "mj2", "st1", "st2", "st3"]),
        ("ST-MJ_train", ["st1", "st2", "st3", "mj1", "mj2"]),
        ("MJ", ["mjt", "mj1", "mj2"]),
        ("extra", ["n1"]),
        ("/", ["mjt", "mj1", "mj2", "st1", "st2", "st3", "n1"]),  # sorted walk order
        ("", ["mjt", "mj1", "mj2", "st1", "st2", "st3", "n1"]),
    ],
)
def test_hierarchy_select(tree: Path, select: str, expected: list[str]) -> None:
    ds = hierarchy_dataset(tree, select, **COMMON)
    assert isinstance(ds, ConcatTextDataset)
    assert labels_of(ds) == expected


def test_hierarchy_errors_and_aggregates(tree: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no LMDB under .* matches select_data='SynthText'.*MJ_train"):
        hierarchy_dataset(tree, "SynthText", **COMMON)
    with pytest.raises(UserError, match="not found"):
        hierarchy_dataset(tmp_path / "nowhere", "/", **COMMON)
    make_lmdb(tree / "bad", ["", "ok", "y" * 20])
    ds = hierarchy_dataset(tree, "bad-ST", **COMMON)
    assert len(ds) == 4 and dict(ds.skipped) == {"empty label": 1, "longer than max_len": 1}
    ds.set_epoch(3)
    assert all(part.epoch == 3 for part in ds.datasets)
    spec = {"type": "hierarchy_dataset", "args": {"lmdb_dir_root": str(tree), "select_data": "MJ_train-ST"}}
    built = build_dataset(
        spec, **COMMON, in_channels=1, keep_ratio=True, training=False, seed=0, augment=None
    )
    assert len(built) == 5 and built[0][0].shape == (1, H, W)
    spec = {"type": "LmdbDataset", "args": {"lmdb_dir_root": str(tree / "ST")}}
    assert (
        len(
            build_dataset(
                spec, **COMMON, in_channels=3, keep_ratio=False, training=False, seed=0, augment=None
            )
        )
        == 3
    )


def test_concat_parts_get_distinct_augmentation(tree: Path) -> None:
    ds = hierarchy_dataset(tree, "MJ_train-ST", **COMMON, training=True, augment=Augment(), seed=1)
    first, second = ds.datasets
    assert first.rng_for(0).random() != second.rng_for(0).random()
    assert torch.equal(ds[0][0], ds[0][0])


class _EnvProbe(Dataset):
    """Wraps a dataset; also reports whether the worker re-opened LMDB handles for its own process."""

    def __init__(self, inner: LmdbDataset) -> None:
        self.inner = inner

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int):
        return self.inner[index], lmdb_module._envs_pid == os.getpid()


def test_workers_open_their_own_env(tree: Path) -> None:
    ds = LmdbDataset(tree / "ST", **COMMON, training=True, augment=Augment(), seed=5)
    ds.set_epoch(2)
    direct = collate([ds[i] for i in range(len(ds))])
    # the env is open in this process from here on: forked workers must not reuse it, a copy must share it
    restored = pickle.loads(pickle.dumps(ds))  # what a spawned worker gets
    assert restored[0][1] == "st1"
    assert LmdbDataset(tree / "ST", **COMMON)[1][1] == "st2"  # a second dataset on the same LMDB
    loader = DataLoader(_EnvProbe(ds), batch_size=3, num_workers=2, collate_fn=list)
    (batch,) = list(loader)
    assert all(own_env for _, own_env in batch)
    batch = collate([item for item, _ in batch])
    assert batch.labels == direct.labels
    assert torch.equal(batch.images, direct.images)  # same augmentation regardless of worker layout


def test_lmdb_from_labels(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    for name in ["a.png", "b.png"]:
        (root / name).write_bytes(word_png(name))
    data = word_png("c")
    (root / "broken.png").write_bytes(data[: len(data) // 2])
    (root / "text.png").write_text("hello")
    gt = tmp_path / "gt.txt"
    gt.write_text("a.png,Label, One\nb.png,two\nbroken.png,x\ntext.png,y\nmissing.png,z\nno-sep\n")
    with caplog.at_level(logging.WARNING):
        written, skipped = lmdb_from_labels(gt, root, tmp_path / "out")
    assert (written, skipped) == (2, 4)
    messages = " | ".join(r.getMessage() for r in caplog.records)
    for name in ["broken.png", "text.png", "missing.png", str(gt)]:
        assert name in messages
    env = lmdb.open(str(tmp_path / "out"), readonly=True, lock=False)
    with env.begin() as txn:
        assert txn.get(b"num-samples") == b"2"
        assert txn.get(b"label-000000001") == b"Label, One"  # stored as written
        assert txn.get(b"image-000000002") == (root / "b.png").read_bytes()  # original bytes
    env.close()

    jsonl = tmp_path / "labels.data"  # no telling extension: detected from the content
    jsonl.write_text('{"ImageFile": "a.png", "Label": "A"}\n{"ImageFile": "b.png", "Label": "B"}\n')
    assert lmdb_from_labels(jsonl, root, tmp_path / "out2") == (2, 0)
    assert labels_of(LmdbDataset(tmp_path / "out2", **{**COMMON, "charset": Charset.default()})) == ["A", "B"]
