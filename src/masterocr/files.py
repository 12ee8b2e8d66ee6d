"""The one guarded reader of files a user names: configs, charsets, label files, model.json, card files.

Every read goes through `read_bytes`: the path is judged by os.stat before it is opened (a regular file, or a
symlink to one; a FIFO would block the open and a device can stream forever), its size is checked against a
cap before a byte is read, and it is read once with the cap enforced again (a file that grows while it is read
is refused too). `read_text` adds a decode with a clear error for bad bytes; `read_json` adds the JSON parse
with a nesting-depth cap checked before parsing (a 100,000-deep array is one line, not a RecursionError).
Each error is a UserError of one line naming the file, its role and the fix.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from masterocr.errors import UserError, require_regular_file

MiB = 1024 * 1024
MAX_TEXT_BYTES = 64 * MiB  # a config, keys or model.json file: far above any real one
MAX_LABEL_BYTES = 2048 * MiB  # a label file of tens of millions of lines
MAX_JSON_DEPTH = 64  # a training config nests 6 deep
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def read_bytes(path: str | os.PathLike, what: str, fix: str, max_bytes: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of the regular file `path`, at most `max_bytes` of them; UserError (one line) otherwise.

    `what` names the file's role in messages ("config"), `fix` says what to pass instead."""
    require_regular_file(path, what, fix)
    try:
        size = os.stat(path).st_size
        if size > max_bytes:
            raise UserError(f"{what} {path} is {size:,} bytes, over the {max_bytes:,}-byte limit; {fix}")
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read ({exc.strerror}); {fix}") from exc
    if len(data) > max_bytes:
        raise UserError(f"{what} {path} grew past the {max_bytes:,}-byte limit while it was read; {fix}")
    return data


def decode(data: bytes, path: str | os.PathLike, what: str) -> str:
    """UTF-8 text of `data` (a byte-order mark dropped); UserError naming the byte offset of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} {path} is not UTF-8 text (bad byte at offset {exc.start}); "
                        "re-save it as UTF-8") from None


def read_text(path: str | os.PathLike, what: str, fix: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """UTF-8 text of a guarded file (see read_bytes and decode)."""
    return decode(read_bytes(path, what, fix, max_bytes), path, what)


def json_depth(data: bytes | str) -> int:
    """The deepest nesting of [ and { in a JSON text, brackets inside strings not counted; nothing parsed.

    Strings go first (one regex pass), then every byte but the brackets (bytes.translate), and numpy sums the
    rest, so 20 MB of brackets cost milliseconds. An unterminated string leaves its brackets counted: the depth
    can only be overstated for a text json.loads refuses anyway."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    opening = brackets.count(b"[") + brackets.count(b"{")
    if opening <= 1:
        return opening
    codes = np.frombuffer(brackets, dtype=np.uint8)
    # "[" (0x5B) and "{" (0x7B) have bit 1 set, "]" (0x5D) and "}" (0x7D) have it clear: +1 or -1 per byte
    steps = ((codes & 2) >> 1).astype(np.int8) * 2 - 1
    return int(np.cumsum(steps, dtype=np.int32).max())


def parse_json(text: str, path: str | os.PathLike, what: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads(text) with the depth cap checked first; UserError naming the line and column of a syntax error."""
    depth = json_depth(text)
    if depth > max_depth:
        raise UserError(f"{what} {path} nests {depth} levels deep, over the limit of {max_depth}; "
                        "a real file nests a few levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} {path} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer past Python's digit limit
        raise UserError(f"{what} {path} cannot be read as JSON: {str(exc).splitlines()[0][:200]}") from None


def read_json(path: str | os.PathLike, what: str, fix: str, max_bytes: int = MAX_TEXT_BYTES,
              max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The parsed JSON of a guarded UTF-8 file (see read_bytes, decode and parse_json)."""
    return parse_json(read_text(path, what, fix, max_bytes), path, what, max_depth)


def as_path(value: str | os.PathLike, what: str) -> Path:
    """Path(value), refusing a NUL character (which no file name can hold) in one line."""
    text = os.fspath(value)
    if "\0" in str(text):
        raise UserError(f"{what} {str(text)!r} holds a NUL character, which no file name can; check the path")
    return Path(text)
