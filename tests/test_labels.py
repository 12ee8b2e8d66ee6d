"""The one label parser: a line means the same to every reader; training skips malformed lines, evaluation stops."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from masterocr.charset import Charset
from masterocr.data.datasets import TextLineDataset
from masterocr.data.labels import (
    BAD_JSON,
    EMPTY_NAME,
    NO_SEPARATOR,
    BadLine,
    parse_label_file,
    parse_line,
    read_labels,
)
from masterocr.errors import UserError


@pytest.mark.parametrize(
    ("line", "fmt", "expected"),
    [
        ("a.png,x,y", "txt", ("a.png", "x,y")),  # the label is everything after the first separator
        (" a.png , two words ", "txt", ("a.png", " two words ")),  # names stripped, labels kept as written
        (json.dumps({"ImageFile": " b.png", "Label": "hi"}), "jsonl", ("b.png", "hi")),
    ],
)
def test_parse_line_splits_name_and_label(line: str, fmt: str, expected: tuple[str, str]) -> None:
    assert parse_line(line, fmt, ",") == expected


@pytest.mark.parametrize(
    ("line", "fmt", "reason"),
    [
        ("no-separator", "txt", NO_SEPARATOR),
        (" ,label", "txt", EMPTY_NAME),
        ("{not json", "jsonl", BAD_JSON),
        (json.dumps({"ImageFile": "a.png", "Label": 7}), "jsonl", BAD_JSON),
        (json.dumps(["a.png", "x"]), "jsonl", BAD_JSON),
    ],
)
def test_parse_line_names_the_reason_of_a_malformed_line(line: str, fmt: str, reason: str) -> None:
    with pytest.raises(BadLine) as info:
        parse_line(line, fmt, ",")
    assert info.value.reason == reason


def test_training_skips_and_counts_malformed_lines_and_names_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    gt = tmp_path / "gt.txt"
    gt.write_text("a.png,hello\n\nbroken line\na.png,again\n,empty name\n", encoding="utf-8")
    parsed = parse_label_file(gt, tmp_path)
    assert [label for _, label in parsed.records] == ["hello", "again"]
    assert parsed.skipped == {NO_SEPARATOR: 1, EMPTY_NAME: 1}
    assert parsed.bad_lines == [3, 5] and parsed.total == 4 and parsed.duplicates == 1
    with caplog.at_level(logging.WARNING):
        TextLineDataset(gt, tmp_path, charset=Charset.default(), img_h=32, img_w=100)
    message = " ".join(r.getMessage() for r in caplog.records)
    assert str(gt) in message and "malformed lines 3, 5" in message


def test_evaluation_refuses_the_first_malformed_line_with_file_and_line(tmp_path: Path) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text("a.png,hello\n\nbroken line\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"gt\.txt:3: missing separator"):
        read_labels(gt)
    jl = tmp_path / "gt.jsonl"
    jl.write_text(json.dumps({"ImageFile": "a.png", "Label": "x"}) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"gt\.jsonl:2: bad JSON line"):
        read_labels(jl)


def test_auto_format_reads_json_lines_by_content(tmp_path: Path) -> None:
    path = tmp_path / "labels.data"
    path.write_text(json.dumps({"ImageFile": "a.png", "Label": "A"}) + "\n", encoding="utf-8")
    assert [label for _, label in parse_label_file(path, None, fmt="auto").records] == ["A"]
    assert read_labels(path) == {"a.png": "A"}
    with pytest.raises(UserError, match="'txt', 'jsonl' or 'auto'"):
        parse_label_file(path, None, fmt="csv")
