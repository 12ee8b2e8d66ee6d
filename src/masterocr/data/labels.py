"""The one reader of label files: the original MASTER's txt format (`ImageFile<split>Label`) and JSON lines.

Every reader of labels goes through `parse_line`, so a line means the same thing to training, LMDB building,
evaluation and the demo. Label files must be UTF-8 (a BOM is stripped, LF, CRLF and CR end lines, blank lines
ignored); a file that is not UTF-8 raises UserError rather than silently losing lines. Labels are kept exactly as
written after the first separator (no whitespace stripping: a space can be part of a label); image names are stripped.
A jsonl line is an object with string "ImageFile" and "Label".

Policy for malformed lines (no separator, bad JSON, empty image name), by purpose:
- training data and LMDB building (`parse_label_file`) skip them and count them by reason; the datasets log
  one warning per file naming the reasons and the first malformed line numbers. One bad line in a million
  should not stop a training run, and the count says how much was lost.
- evaluation (`read_labels`) is strict: the first malformed line raises UserError naming `file:line`. A score
  over a partly read label file would be wrong without anyone noticing.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from masterocr.errors import UserError, require_regular_file
from masterocr.files import MAX_LABEL_BYTES, read_bytes

log = logging.getLogger(__name__)

# why a sample was skipped (the keys of every dataset's `skipped` counter)
EMPTY_LABEL = "empty label"
WHITESPACE_LABEL = "whitespace-only label"
TOO_LONG = "longer than max_len"
NO_SEPARATOR = "missing separator"
BAD_JSON = "bad JSON line"
EMPTY_NAME = "empty image name"
OUTSIDE_ROOT = "path outside img_root"
MISSING_IMAGE = "missing image file"
MISSING_RECORD = "missing record"
BAD_LABEL_BYTES = "label not UTF-8"
UNREADABLE = "unreadable image"

_SHOWN_LINES = 5  # malformed line numbers named in a warning


class BadLine(ValueError):
    """A malformed label line; `reason` is one of NO_SEPARATOR, BAD_JSON, EMPTY_NAME (the counters' keys) and
    `detail` says what exactly is wrong, for the strict readers' messages."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or reason


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for messages: null, a list, a number, ..."""
    if value is None:
        return "null"
    kinds = ((bool, "a boolean"), ((int, float), "a number"), (str, "a string"), (list, "a list"), (dict, "an object"))
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)


def check_regular_file(path: Path, what: str) -> None:
    """UserError unless `path` is a regular file, found with stat before any open (a FIFO would block); a
    missing file is named as such (errors.require_regular_file judges the rest)."""
    if not os.path.exists(path):
        raise UserError(f"{what} {path} not found; check the path")
    require_regular_file(path, what, "give a regular file")


@dataclass
class LabelFile:
    """The usable lines of a label file: (absolute image path, raw label) plus what was skipped and why."""

    path: Path
    records: list[tuple[str, str]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    total: int = 0  # non-blank lines
    duplicates: int = 0  # lines naming an image already named above (kept)
    bad_lines: list[int] = field(default_factory=list)  # 1-based numbers of the malformed lines


def read_label_text(path: str | Path) -> str:
    """Text of a UTF-8 label file (BOM stripped); UserError naming the file if missing or not UTF-8."""
    path = Path(path)
    check_regular_file(path, "label file")
    raw = read_bytes(path, "label file", "check the path", MAX_LABEL_BYTES)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = len(_LINE_END.split(raw[: exc.start].decode("utf-8", "replace")))
        raise UserError(
            f"label file {path} is not UTF-8 (bad byte on line {line}); re-save it as UTF-8"
        ) from exc


def guess_format(path: str | Path, text: str) -> str:
    """'jsonl' for a .jsonl/.json file or one whose first non-blank character is '{', else 'txt'."""
    if Path(path).suffix.lower() in (".jsonl", ".json"):
        return "jsonl"
    return "jsonl" if text.lstrip().startswith("{") else "txt"


def _check_split(fmt: str, split: str) -> None:
    if fmt == "txt" and not split:  # str.split("") raises ValueError
        raise UserError("the label separator (split) is empty; use e.g. ',' or '\\t'")


def parse_line(line: str, fmt: str, split: str = ",") -> tuple[str, str]:
    """(image name, label) of one non-blank line (without its line ending); raises BadLine if malformed."""
    if fmt == "txt":
        if split not in line:
            raise BadLine(NO_SEPARATOR)
        name, label = line.split(split, 1)
    else:
        try:
            obj = json.loads(line)
        except ValueError:
            raise BadLine(BAD_JSON, "not valid JSON") from None
        except RecursionError:  # absurdly nested JSON
            raise BadLine(BAD_JSON, "JSON nested too deeply") from None
        if not isinstance(obj, dict):
            raise BadLine(BAD_JSON, f"the line is {json_type(obj)}, not an object")
        name, label = obj.get("ImageFile"), obj.get("Label")
        if not isinstance(name, str):
            raise BadLine(BAD_JSON, f'"ImageFile" is {json_type(name) if "ImageFile" in obj else "missing"}')
        if not isinstance(label, str):
            raise BadLine(BAD_JSON, f'"Label" is {json_type(label) if "Label" in obj else "missing"}')
    name = name.strip()
    if not name:
        raise BadLine(EMPTY_NAME)
    return name, label


_LINE_END = re.compile(r"\r\n|\r|\n")


def _lines(text: str):
    """(1-based line number, line) of the non-blank lines, line endings removed. "\n", "\r\n" and a lone "\r"
    (old Mac files) end a line, mixed in one file too; U+2028, U+2029, form feeds, \x85 and \v are part of a
    label, never line breaks (no str.splitlines)."""
    for lineno, line in enumerate(_LINE_END.split(text), 1):
        if line.strip():
            yield lineno, line


def parse_label_file(
    label_file: str | Path, img_root: str | Path | None, *, fmt: str = "txt", split: str = ","
) -> LabelFile:
    """Parse a txt or jsonl label file for training or LMDB building; malformed lines are skipped and counted.

    `fmt` is "txt", "jsonl" or "auto" (see `guess_format`). Image names are relative to `img_root`; names
    resolving outside it (`../x`, absolute paths) are refused. Without `img_root`, names are relative to the
    label file's folder and not confined. Image existence is not checked here (see `LabelFile.records`).
    """
    if fmt not in ("txt", "jsonl", "auto"):
        raise UserError(f"label file format must be 'txt', 'jsonl' or 'auto', got {fmt!r}")
    _check_split(fmt, split)
    out = LabelFile(Path(label_file))
    text = read_label_text(label_file)
    if fmt == "auto":
        fmt = guess_format(label_file, text)
        _check_split(fmt, split)
    confine = img_root is not None
    root = os.path.abspath(img_root if confine else out.path.parent)
    names: Counter[str] = Counter()
    for lineno, line in _lines(text):
        out.total += 1
        try:
            name, label = parse_line(line, fmt, split)
        except BadLine as bad:
            out.skipped[bad.reason] += 1
            out.bad_lines.append(lineno)
            continue
        full = os.path.normpath(os.path.join(root, name))
        # a lexical check: symlinks inside img_root pointing elsewhere stay allowed (common for datasets)
        if confine and (
            os.path.isabs(name) or not (full == root or full.startswith(root.rstrip(os.sep) + os.sep))
        ):
            out.skipped[OUTSIDE_ROOT] += 1
            continue
        names[full] += 1
        out.records.append((full, label))
    out.duplicates = sum(n - 1 for n in names.values() if n > 1)
    return out


def read_labels(path: str | Path, split: str = ",") -> dict[str, str]:
    """Image name (as written) -> label, for evaluation; the first malformed line raises UserError.

    The format is guessed per file (`guess_format`): JSON lines ({"ImageFile", "Label"}) or name<split>label.
    """
    path = Path(path)
    if not split:  # checked first: the format is only known once the file is read
        raise UserError("the label separator (split) is empty; use e.g. ',' or '\\t'")
    text = read_label_text(path)
    fmt = guess_format(path, text)
    labels: dict[str, str] = {}
    for lineno, line in _lines(text):
        try:
            name, label = parse_line(line, fmt, split)
        except BadLine as bad:
            if fmt == "jsonl":
                hint = 'expected {"ImageFile": ..., "Label": ...} with string values'
            else:
                hint = f"separator {split!r}; lines are name{split}label"
            detail = "" if bad.detail == bad.reason else f": {bad.detail}"
            raise UserError(f"{path}:{lineno}: {bad.reason}{detail} ({hint})") from None
        labels[name] = label
    return labels


def warn_skips(
    source: str | Path,
    total: int,
    skipped: Counter[str],
    duplicates: int = 0,
    max_len: int = 0,
    bad_lines: list[int] | None = None,
) -> None:
    """Log one warning line summarising what was skipped in `source` (nothing when nothing was)."""
    n = sum(skipped.values())
    if not n and not duplicates:
        return
    parts = [f"{c} {r}={max_len}" if r == TOO_LONG else f"{c} {r}" for r, c in skipped.most_common() if c]
    msg = f"skipped {n} of {total} samples in {source}"
    if parts:
        msg += ": " + ", ".join(parts)
    if bad_lines:
        shown = ", ".join(str(i) for i in bad_lines[:_SHOWN_LINES])
        more = ", ..." if len(bad_lines) > _SHOWN_LINES else ""
        msg += f" (malformed line{'s' if len(bad_lines) > 1 else ''} {shown}{more})"
    if duplicates:
        msg += f" ({duplicates} duplicate file name{'s' if duplicates > 1 else ''}, kept)"
    log.warning(msg)
