"""Property tests: parsers and the image loader raise nothing but UserError/ImageError on any input.

Default budget: ~100 examples per property. The mutation fuzz of `load_image` is `slow` (3000 examples).
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
from conftest import render_word
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from masterocr.charset import Charset
from masterocr.data.datasets import JsonlDataset, TextLineDataset
from masterocr.data.images import ImageError, load_image
from masterocr.data.labels import parse_label_file, read_labels
from masterocr.errors import UserError

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# text that looks like label files: separators, newlines, JSON punctuation, paths, BOMs, odd unicode
label_alphabet = st.sampled_from(list(",\t \r\n{}[]\":.\\/-_ab01") + ["../", "\ufeff", "\u00e9", "\u4e2d", "\x00",
                                                                      '{"ImageFile": ', '"Label": ', "\u2028"])
label_text = st.lists(label_alphabet, max_size=60).map("".join)
label_bytes = st.one_of(st.binary(max_size=200), label_text.map(lambda t: t.encode("utf-8")),
                        label_text.map(lambda t: t.encode("utf-16")))


def _write(data: bytes, suffix: str = ".txt") -> Path:
    fd, name = tempfile.mkstemp(suffix=suffix, dir=_tmp())
    with open(fd, "wb") as f:
        f.write(data)
    return Path(name)


_TMP: list[Path] = []


def _tmp() -> Path:
    if not _TMP:
        _TMP.append(Path(tempfile.mkdtemp(prefix="robust_fuzz_")))
    return _TMP[0]


@FAST
@given(data=label_bytes, fmt=st.sampled_from(["txt", "jsonl"]), split=st.sampled_from([",", "\t", " ", "::", ""]),
       confine=st.booleans())
def test_parse_label_file_raises_only_user_error(data, fmt, split, confine):
    path = _write(data)
    try:
        out = parse_label_file(path, _tmp() / "imgs" if confine else None, fmt=fmt, split=split)
    except UserError:
        return
    finally:
        path.unlink()
    assert out.total == len(out.records) + sum(out.skipped.values())
    for full, label in out.records:
        assert isinstance(full, str) and isinstance(label, str) and "\r" not in label[-1:]
        if confine:
            assert full.startswith(str(_tmp() / "imgs"))


@FAST
@given(data=label_bytes, kind=st.sampled_from(["txt", "jsonl"]))
def test_dataset_constructors_raise_only_user_error(data, kind):
    path = _write(data, ".jsonl" if kind == "jsonl" else ".txt")
    kw = dict(charset=Charset.default(), img_h=32, img_w=128, max_len=25)
    try:
        ds = TextLineDataset(path, _tmp(), **kw) if kind == "txt" else JsonlDataset(path, _tmp(), **kw)
    except UserError:
        return
    finally:
        path.unlink()
    assert len(ds) == len(ds.labels) == len(ds.paths)


@FAST
@given(data=label_bytes, split=st.sampled_from([",", "\t", ""]))
def test_evaluate_read_labels_raises_only_user_error(data, split):
    path = _write(data)
    try:
        labels = read_labels(path, split)
    except UserError:
        return
    finally:
        path.unlink()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())


def _encoded(fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img = render_word("Ab1", 24)
    if fmt == "GIF":
        img = img.convert("P")
        kw = dict(save_all=True, append_images=[img.copy()], **kw)
    img.save(buf, fmt, **kw)
    return buf.getvalue()


SEEDS = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "GIF", "TIFF", "BMP", "WEBP")}


def _load(data: bytes) -> None:
    try:
        img = load_image(data, max_pixels=4_000_000)
    except ImageError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert img.mode == "RGB" and img.width > 0 and img.height > 0


@FAST
@given(data=st.binary(max_size=512))
def test_load_image_random_bytes(data):
    _load(data)


@FAST
@given(prefix=st.sampled_from(list(SEEDS.values())), cut=st.integers(0, 4000), tail=st.binary(max_size=64))
def test_load_image_truncated_valid_files(prefix, cut, tail):
    _load(prefix[: cut % (len(prefix) + 1)] + tail)


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(sorted(SEEDS.values(), key=len))))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "byte", "cut", "dup", "insert"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            data[i] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80]))
        elif op == "cut":
            del data[i:]
        elif op == "dup":
            data[i:i] = data[i : i + draw(st.integers(1, 32))]
        else:
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@FAST
@given(data=mutated())
def test_load_image_mutated_files_quick(data):
    _load(data)


@pytest.mark.slow
@SLOW
@given(data=mutated())
def test_load_image_mutated_files_long(data):
    _load(data)


def test_mutation_seeds_are_valid():
    for fmt, data in SEEDS.items():
        assert load_image(data).size == Image.open(io.BytesIO(data)).size, fmt


# crashes the fuzzers found (kept as plain regression tests)
def test_regression_empty_separator_in_read_labels(tmp_path):
    (tmp_path / "gt.txt").write_bytes(b"\x00")
    with pytest.raises(UserError, match="separator"):
        read_labels(tmp_path / "gt.txt", "")


def test_regression_absurdly_nested_json_line(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text('{"ImageFile": ' + "[" * 100_000 + "\n" + '{"ImageFile": "a.png", "Label": "ok"}\n')
    out = parse_label_file(path, None, fmt="jsonl")
    assert out.skipped["bad JSON line"] == 1 and [label for _, label in out.records] == ["ok"]
    with pytest.raises(UserError, match="deep.jsonl:1"):
        read_labels(path)
