"""Hostile LMDBs, table-driven: each row damages a freshly written LMDB one way and says what the reader must do
(a one-line UserError naming the LMDB and its fragment, or samples skipped and counted), directly, through
`masterocr test`, and for a page damaged under a training run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from _robust_util import tiny_weights
from test_lmdb import COMMON, make_lmdb, set_key

from masterocr.cli import main
from masterocr.data import LmdbDataset
from masterocr.data.lmdb import DAMAGED_RECORD
from masterocr.errors import UserError

PAGE = 4096
WORDS = [f"w{i}" for i in range(30)]


def _rewrite(cut: Callable[[bytearray], bytes]) -> Callable[[Path], None]:
    def mutate(db: Path) -> None:
        f = db / "data.mdb"
        f.write_bytes(cut(bytearray(f.read_bytes())))
    return mutate


def _overwrite(start: int, count: int, byte: bytes = b"\xff") -> Callable[[Path], None]:
    def cut(data: bytearray) -> bytes:
        data[start:start + count] = byte * count
        return bytes(data)
    return _rewrite(cut)


def _replace_data(make: Callable[[Path], None]) -> Callable[[Path], None]:
    def mutate(db: Path) -> None:
        (db / "data.mdb").unlink()
        make(db / "data.mdb")
    return mutate


def _key(key: bytes, value: bytes | None) -> Callable[[Path], None]:
    return lambda db: set_key(db, key, value)


# name -> (how the LMDB is damaged, fragment of the UserError; None: it loads and `skipped` is as given)
CASES: dict[str, tuple[Callable[[Path], None], str | dict | None]] = {
    "truncated_half": (_rewrite(lambda d: bytes(d[: len(d) // 2])), "is truncated"),
    "truncated_to_meta": (_rewrite(lambda d: bytes(d[: 2 * PAGE])), "is truncated"),
    "page2_garbage": (_overwrite(2 * PAGE, 16), "is damaged (CorruptedError"),
    "page3_garbage": (_overwrite(3 * PAGE, 16), "is damaged (CorruptedError"),
    "all_pages_random": (_rewrite(lambda d: bytes(d[: 2 * PAGE]) + os.urandom(len(d) - 2 * PAGE)), "is damaged"),
    "meta_pages_zeroed": (_overwrite(0, 2 * PAGE, b"\0"), "not an LMDB or is damaged"),
    "empty_data_file": (_rewrite(lambda d: b""), "cannot open LMDB"),
    "text_data_file": (_rewrite(lambda d: b"not an lmdb\n" * 900), "not an LMDB or is damaged"),
    "data_is_a_folder": (_replace_data(lambda p: p.mkdir()), "data.mdb is not a regular file"),
    "data_is_a_fifo": (_replace_data(lambda p: os.mkfifo(p)), "data.mdb is not a regular file"),
    "data_is_a_dangling_link": (_replace_data(lambda p: p.symlink_to(p.with_name("gone"))), "cannot open LMDB"),
    "no_num_samples": (_key(b"num-samples", None), "no 'num-samples' key"),
    "num_samples_word": (_key(b"num-samples", b"thirty"), "not a non-negative integer"),
    "num_samples_negative": (_key(b"num-samples", b"-3"), "not a non-negative integer"),
    "num_samples_float": (_key(b"num-samples", b"3.5"), "not a non-negative integer"),
    "num_samples_binary": (_key(b"num-samples", b"\xff\xfe"), "not a non-negative integer"),
    "num_samples_too_big": (_key(b"num-samples", b"40"), {"missing record": 10}),
    "num_samples_huge": (_key(b"num-samples", b"999999999999"), {"missing record": 999999999999 - 30}),
    "label_not_utf8": (_key(b"label-000000003", b"\xff\xfe"), {"label not UTF-8": 1}),
    "image_missing": (_key(b"image-000000004", None), {"missing record": 1}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_lmdb(name: str, tmp_path: Path) -> None:
    mutate, expect = CASES[name]
    db = make_lmdb(tmp_path / name, WORDS)
    mutate(db)
    if isinstance(expect, str):
        with pytest.raises(UserError) as info:
            LmdbDataset(db, **COMMON)
        msg = str(info.value)
        assert expect in msg and str(db) in msg and "\n" not in msg, msg
        assert "masterocr lmdb" in msg or "check the path" in msg, msg
    else:
        ds = LmdbDataset(db, **COMMON)
        assert dict(ds.skipped) == expect
        assert all(ds[i] is not None for i in range(len(ds)))


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return tiny_weights(tmp_path_factory.mktemp("w") / "tiny.safetensors")


TEST_CASES = ["truncated_half", "page3_garbage", "num_samples_word", "data_is_a_fifo"]


@pytest.mark.parametrize("name", TEST_CASES)
def test_masterocr_test_on_a_damaged_lmdb(name: str, weights: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "bench"
    make_lmdb(root / "good", WORDS[:3])
    db = make_lmdb(root / "bad", WORDS)
    CASES[name][0](db)
    argv = ["test", "--checkpoint", str(weights), "--backend", "torch", "--data-root", str(root)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(db) in err and CASES[name][1] in err, err


def test_masterocr_test_subprocess_has_no_traceback(weights: Path, tmp_path: Path) -> None:
    db = make_lmdb(tmp_path / "bench" / "bad", WORDS)
    CASES["page2_garbage"][0](db)
    proc = subprocess.run([sys.executable, "-m", "masterocr", "test", "--checkpoint", str(weights), "--backend",
                           "torch", "--data-root", str(tmp_path / "bench")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "is damaged" in proc.stderr, proc.stderr


def test_a_page_damaged_under_training_is_skipped_and_counted(tmp_path: Path) -> None:
    """The dataset is built, then a page is damaged in place (the same inode, so the open environment maps the
    damaged bytes): reading a sample whose page is gone is skipped and counted, never raised."""
    db = make_lmdb(tmp_path / "db", WORDS)
    ds = LmdbDataset(db, **COMMON)
    assert len(ds) == len(WORDS)
    with open(db / "data.mdb", "r+b") as f:
        for page in (2, 3):  # the B-tree's branch and leaf pages: every lookup passes through one of them
            f.seek(page * PAGE)
            f.write(b"\xff" * 16)
    items = [ds[i] for i in range(len(ds))]
    assert ds.skipped[DAMAGED_RECORD] == sum(item is None for item in items) > 0

