"""The one rule for "the images in a folder", shared by predict, the demo and int8 calibration, and the escapes
of file names that are not valid UTF-8 or hold control characters."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import stat
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from masterocr.errors import UserError

# suffixes of the files people keep beside their crops (labels, notes): not images, so they are skipped
NOT_IMAGES = frozenset({".txt", ".json", ".jsonl", ".csv", ".tsv", ".md", ".yaml", ".yml", ".mdb", ".lock", ".log"})

# why an entry of the folder is not read as an image (FolderScan.refused); none of them is opened
DANGLING_LINK = "symbolic link to a missing file"
LINK_LOOP = "symbolic link loop"
NOT_REGULAR = "not a regular file"


@dataclass
class FolderScan:
    """A folder's entries sorted by name: the images to read, the label/document files and hidden files passed
    over, the subfolders, and the entries refused without opening (path, reason)."""

    images: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    hidden: list[Path] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    refused: list[tuple[Path, str]] = field(default_factory=list)


def _kind(path: Path) -> str | None:
    """None for a regular file (or a link to one), else why it is refused; stat only, never open (a FIFO would
    block)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if os.path.islink(path):
            return LINK_LOOP if exc.errno == 40 else DANGLING_LINK  # 40: ELOOP
        return f"cannot stat ({exc.strerror})"
    if stat.S_ISDIR(mode):
        return "folder"
    if not stat.S_ISREG(mode):
        kind = "FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"
        return f"{NOT_REGULAR} ({kind})"
    return None


def scan_folder(folder: str | Path) -> FolderScan:
    """Every entry of `folder` sorted into a FolderScan. Every regular file whose suffix is not in NOT_IMAGES
    counts as an image, so an unreadable one is reported by its reader rather than passed over."""
    scan = FolderScan()
    for path in sorted(Path(folder).iterdir()):
        if path.name.startswith("."):
            scan.hidden.append(path)
            continue
        kind = _kind(path)
        if kind == "folder":
            scan.folders.append(path)
        elif kind is not None:
            scan.refused.append((path, kind))
        else:
            (scan.skipped if path.suffix.lower() in NOT_IMAGES else scan.images).append(path)
    return scan


@dataclass
class Gathered:
    """What `predict` reads, in order: (name in the results, path, None) for an image, (name, path, reason) for
    an entry refused without opening; and each scanned folder's scan (for the warnings about what it passed
    over)."""

    items: list[tuple[str, Path, str | None]] = field(default_factory=list)
    scans: list[tuple[Path, FolderScan]] = field(default_factory=list)

    @property
    def images(self) -> list[tuple[str, Path]]:
        return [(name, path) for name, path, why in self.items if why is None]


GLOB_CHARS = frozenset("*?[")


def gather_images(inputs: list[str | Path], recursive: bool = False) -> Gathered:
    """The images named by `inputs`: files, folders (their images, scan_folder's rule; with `recursive` their
    subfolders' too, links to folders not followed) and glob patterns (`**` spans folders). An image from a
    folder is named by its path relative to that folder (`sub/a.png`, so label files with folders match it),
    a file or glob match as given. A path named twice is read once. UserError for an input that names nothing."""
    out, seen = Gathered(), set()

    def add(name: str, path: Path, why: str | None) -> None:
        key = os.path.abspath(path)  # not realpath: a link beside its target is an entry of its own
        if key not in seen:
            seen.add(key)
            out.items.append((name, path, why))

    for item in inputs:
        text = str(item)
        if os.path.lexists(text):
            paths = [Path(text)]
        elif GLOB_CHARS & set(text):
            paths = [Path(p) for p in sorted(glob.glob(text, recursive=True))]
            if not paths:
                raise UserError(f"no file matches {terminal_safe(text)}; check the pattern")
        else:
            raise UserError(f"{terminal_safe(text)} does not exist; pass image files, folders or glob patterns")
        for path in paths:
            kind = _kind(path)
            if kind == "folder":
                _gather_folder(path, path, recursive, out, add)
            else:
                add(path.as_posix(), path, kind)
    return out


def _gather_folder(root: Path, folder: Path, recursive: bool, out: Gathered, add) -> None:
    scan = scan_folder(folder)
    refused = dict(scan.refused)
    for path in sorted([*scan.images, *refused]):
        add(path.relative_to(root).as_posix(), path, refused.get(path))
    walked = [p for p in scan.folders if not p.is_symlink()] if recursive else []
    scan.folders = [p for p in scan.folders if p not in walked]  # what is left is passed over, and said so
    out.scans.append((folder, scan))
    for sub in walked:
        _gather_folder(root, sub, recursive, out, add)


def list_image_files(folder: str | Path) -> tuple[list[Path], list[Path]]:
    """(images, skipped): the folder's visible regular files sorted by name, split into the ones to read and
    the label/document files (NOT_IMAGES) kept beside them."""
    scan = scan_folder(folder)
    return scan.images, scan.skipped


def escape_name(name: str) -> tuple[str, bool]:
    """(text, escaped): a file name as valid UTF-8 text. On POSIX a name that is not valid UTF-8 arrives with
    its bad bytes as lone surrogates (surrogateescape); each such byte is written as a `\\xFF`-style escape and
    `escaped` is True. Valid names come back unchanged."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = name.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a surrogate that no byte maps to (a str built in Python, not a file name)
            return name.encode("utf-8", "backslashreplace").decode("utf-8"), True
        return raw.decode("utf-8", "backslashreplace"), True
    return name, False


def terminal_safe(text: str) -> str:
    """`text` with bytes that are not UTF-8 as `\\xFF` and control/format characters (escape sequences, line
    and paragraph separators, bidi overrides) as `\\x1b`/`\\u202e`-style escapes, for printing on a terminal."""
    text = escape_name(text)[0]
    return "".join(
        c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c
        for c in text
    )


def check_predict_folders(img_folder: str | Path, output_folder: str | Path) -> None:
    """UserError, before any work, when `img_folder` is not a folder or `output_folder` exists and is not one;
    the paths in the message are terminal-safe."""
    for flag, value in (("--img-folder", img_folder), ("--output-folder", output_folder)):
        if not str(value).strip():
            raise UserError(f"{flag} is empty; pass a folder")
    img, out = Path(img_folder), Path(output_folder)
    if out.is_symlink() and not out.exists():
        raise UserError(f"output folder {terminal_safe(str(out))} is a symlink to nothing; give a folder")
    if not img.exists():
        raise UserError(f"image folder {terminal_safe(str(img))} does not exist; check --img-folder")
    if not img.is_dir():
        raise UserError(f"image folder {terminal_safe(str(img))} is not a folder; give the folder that holds the "
                        "images")
    if out.exists() and not out.is_dir():
        raise UserError(f"output folder {terminal_safe(str(out))} is an existing file; give a folder (created if "
                        "missing)")


def write_json_atomic(path: Path, value: object) -> None:
    """Write `value` as UTF-8 JSON to `path` through a temporary file in the same folder and os.replace, so a
    reader sees the old file or the whole new one; the temporary file is removed whatever goes wrong."""
    write_bytes_atomic(path, json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` as write_json_atomic does: a temporary file in the same folder, then os.replace."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(f"cannot write in {path.parent} ({exc.strerror}); check the output folder") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp's 0600 would hide the result from the group
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise UserError(f"cannot write {path} ({exc.strerror}); check the output folder") from exc
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_stale(path: Path) -> None:
    """Remove an older result file, so a run that fails cannot leave it behind to be scored as this run's."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise UserError(f"cannot remove the older {path} ({exc.strerror}); move it away or pick another "
                        "--output-folder") from exc
