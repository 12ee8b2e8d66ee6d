"""Text-recognition LMDBs in the clovaai/deep-text-recognition-benchmark layout: open, find, write, convert.

Keys: `image-%09d` (the image file's original bytes), `label-%09d` (UTF-8 label), indices from 1, and
`num-samples` (ASCII integer) written last. An LMDB is built in `<out_dir>.tmp` and renamed into place when
complete, so an interrupted run never leaves a half-written LMDB at `out_dir`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import lmdb
from tqdm import tqdm

from masterocr.data.images import ImageError, load_image
from masterocr.data.labels import MISSING_IMAGE, UNREADABLE, parse_label_file, warn_skips
from masterocr.errors import UserError

log = logging.getLogger(__name__)

REBUILD = "rebuild it with `masterocr lmdb --labels ... --img-root ... --out ...`"
DAMAGED_RECORD = "damaged LMDB record"  # a skip reason, counted like the others in dataset.skipped

_envs: dict[tuple[int, int], lmdb.Environment] = {}
_envs_pid = os.getpid()


def open_lmdb(root: Path) -> lmdb.Environment:
    """The read-only environment of the LMDB folder `root`, opened once per process and shared.

    py-lmdb refuses to open one environment twice in a process, and an environment must not be used across
    fork(): a forked DataLoader worker drops the handles it inherited and opens its own on first use.
    """
    global _envs_pid
    if os.getpid() != _envs_pid:
        for env in _envs.values():
            with contextlib.suppress(Exception):
                env.close()  # the child's copy only; frees py-lmdb's already-open guard
        _envs.clear()
        _envs_pid = os.getpid()
    try:
        st = os.stat(root / "data.mdb")
    except OSError as exc:
        raise UserError(f"cannot open LMDB {root} ({exc.strerror}); check the path") from exc
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block, a device stream: refuse without opening
        raise UserError(f"LMDB {root}: data.mdb is not a regular file; {REBUILD}")
    key = (st.st_dev, st.st_ino)  # a rebuilt LMDB at the same path is a different file
    env = _envs.get(key)
    if env is None:
        try:
            env = lmdb.open(
                str(root), readonly=True, lock=False, readahead=False, meminit=False, max_readers=256
            )
        except lmdb.Error as exc:
            raise UserError(
                f"cannot open LMDB {root} ({' '.join(str(exc).split())}); it is not an LMDB or is "
                f"damaged: {REBUILD}"
            ) from exc
        check_size(env, root, st.st_size)
        _envs[key] = env
    return env


def check_size(env: lmdb.Environment, root: Path, size: int) -> None:
    """UserError (and the environment closed) when data.mdb is shorter than the pages its meta page claims:
    reading a page past the end of a memory-mapped file kills the process with SIGBUS."""
    try:
        need = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    except lmdb.Error as exc:
        env.close()
        raise lmdb_user_error(root, exc) from exc
    if size < need:
        env.close()
        raise UserError(f"LMDB {root} is truncated (data.mdb has {size} bytes, its pages need {need}); {REBUILD}")


def lmdb_user_error(root: Path, exc: lmdb.Error) -> UserError:
    """The one-line error of a damaged LMDB: the path, lmdb's reason and the fix."""
    return UserError(f"LMDB {root} is damaged ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); {REBUILD}")


@contextlib.contextmanager
def lmdb_errors(root: Path) -> Iterator[None]:
    """Turn any lmdb.Error raised inside (a corrupted page, a bad cursor) into `lmdb_user_error`."""
    try:
        yield
    except lmdb.Error as exc:
        raise lmdb_user_error(root, exc) from exc


def find_lmdbs(root: str | Path) -> list[str]:
    """Paths (relative to `root`, '/'-separated, '' for root itself) of all folders holding data.mdb."""
    found: list[str] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        if "data.mdb" in filenames:
            rel = os.path.relpath(dirpath, root)
            found.append("" if rel == "." else Path(rel).as_posix())
    return found



def write_lmdb(
    samples: Iterable[tuple[bytes, str]],
    out_dir: str | Path,
    *,
    map_size: int = 1 << 40,
    commit_every: int = 1000,
    total: int | None = None,
    progress: bool = True,
) -> int:
    """Write `(encoded image bytes, label)` pairs to a new LMDB at `out_dir`; returns the number written.

    `out_dir` must not exist (or be an empty folder). `map_size` is the maximum database size; the file is
    sparse on Linux, so the 1 TiB default costs nothing. `total` only sizes the progress bar.
    """
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists and is not empty; delete it or choose another output folder")
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        log.warning("removing %s left over from an interrupted write", tmp)
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    count = 0
    try:
        try:
            env = lmdb.open(str(tmp), map_size=map_size, meminit=False)
        except lmdb.Error as exc:
            raise UserError(
                f"cannot create LMDB in {tmp} ({exc}); try a smaller map_size or another disk"
            ) from exc
        try:
            txn = env.begin(write=True)
            for image, label in tqdm(samples, total=total, disable=not progress, unit="img", desc=out.name):
                if not isinstance(image, (bytes, bytearray, memoryview)) or not isinstance(label, str):
                    raise TypeError(
                        f"write_lmdb wants (bytes, str) samples, got ({type(image)}, {type(label)})"
                    )
                count += 1
                txn.put(b"image-%09d" % count, bytes(image))
                txn.put(b"label-%09d" % count, label.encode("utf-8"))
                if count % commit_every == 0:
                    txn.commit()
                    txn = env.begin(write=True)
            txn.put(b"num-samples", str(count).encode("ascii"))
            txn.commit()
        except lmdb.MapFullError as exc:
            raise UserError(f"LMDB {out} is larger than map_size={map_size}; pass a larger map_size") from exc
        finally:
            env.close()
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return count


def lmdb_from_labels(
    label_file: str | Path,
    img_root: str | Path | None,
    out_dir: str | Path,
    *,
    split: str = ",",
    fmt: str = "auto",
) -> tuple[int, int]:
    """Convert a txt (`ImageFile<split>Label`) or jsonl label file and its images to an LMDB.

    `fmt` is "txt", "jsonl" or "auto" (jsonl for .jsonl/.json files or content starting with '{').
    Each image's original bytes are stored after checking that it decodes; labels are stored as written.
    Malformed lines and unreadable or missing images are skipped with warnings naming the files.
    Returns (written, skipped).
    """
    parsed = parse_label_file(label_file, img_root, fmt=fmt, split=split)
    skipped: Counter[str] = Counter(parsed.skipped)

    def samples() -> Iterator[tuple[bytes, str]]:
        for path, label in parsed.records:
            try:
                data = Path(path).read_bytes()
            except OSError:
                skipped[MISSING_IMAGE] += 1
                log.warning("skipping %s: file not found or not readable", path)
                continue
            try:
                load_image(data, name=path)
            except ImageError as exc:
                skipped[UNREADABLE] += 1
                log.warning("skipping unreadable image: %s", exc)
                continue
            yield data, label

    written = write_lmdb(samples(), out_dir, total=len(parsed.records))
    warn_skips(parsed.path, parsed.total, skipped, parsed.duplicates, bad_lines=parsed.bad_lines)
    return written, sum(skipped.values())
