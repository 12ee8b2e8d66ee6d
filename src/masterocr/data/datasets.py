"""Labelled text-line datasets (txt, jsonl, LMDB, LMDB trees), a prediction folder dataset, collate, config.

Every labelled dataset yields `(image tensor (C, H, W), label)` or `None` for an image that cannot be read.
Bad samples are filtered when the dataset is built and counted in `dataset.skipped` (reason -> count), with
one warning line per source file. The reasons:

- "empty label", "whitespace-only label", "longer than max_len" (after `charset.clean`),
- "missing separator" (txt), "bad JSON line" (jsonl: not JSON, or no string "ImageFile"/"Label"),
- "empty image name", "path outside img_root", "missing image file" (txt/jsonl),
- "missing record", "label not UTF-8" (LMDB),
- "unreadable image": counted when `__getitem__` fails, in the process (DataLoader worker) that read it.

Label files must be UTF-8 (a BOM is stripped, CRLF accepted, blank lines ignored); a file that is not UTF-8
raises UserError rather than silently losing lines. Labels are kept exactly as written after the first
separator (no whitespace stripping: a space can be part of a label); image names are stripped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import lmdb
import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from masterocr.charset import Charset
from masterocr.data.images import ImageError, load_image
from masterocr.data.transforms import Augment, preprocess, shrink_to_height
from masterocr.errors import UserError

log = logging.getLogger(__name__)

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


# label files --------------------------------------------------------------------------------------
@dataclass
class LabelFile:
    """The usable lines of a label file: (absolute image path, raw label) plus what was skipped and why."""

    path: Path
    records: list[tuple[str, str]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    total: int = 0  # non-blank lines
    duplicates: int = 0  # lines naming an image already named above (kept)


def read_label_text(path: str | Path) -> str:
    """Text of a UTF-8 label file (BOM stripped); UserError naming the file if missing or not UTF-8."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise UserError(f"label file {path} not found; check the path") from exc
    except OSError as exc:
        raise UserError(f"cannot read label file {path} ({exc.strerror}); check the path") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UserError(
            f"label file {path} is not UTF-8 (bad byte on line {line}); re-save it as UTF-8"
        ) from exc


def guess_format(path: str | Path, text: str) -> str:
    """'jsonl' for a .jsonl/.json file or one whose first non-blank character is '{', else 'txt'."""
    if Path(path).suffix.lower() in (".jsonl", ".json"):
        return "jsonl"
    return "jsonl" if text.lstrip().startswith("{") else "txt"


def parse_label_file(
    label_file: str | Path, img_root: str | Path | None, *, fmt: str = "txt", split: str = ","
) -> LabelFile:
    """Parse a txt (`ImageFile<split>Label`, label = everything after the first split) or jsonl label file.

    Image names are relative to `img_root`; names resolving outside it (`../x`, absolute paths) are refused.
    Without `img_root`, names are relative to the label file's folder and not confined.
    Image existence is not checked here (see `LabelFile.records`).
    """
    if fmt not in ("txt", "jsonl"):
        raise UserError(f"label file format must be 'txt', 'jsonl' or 'auto', got {fmt!r}")
    if fmt == "txt" and not split:
        raise UserError("the label separator (split) is empty; use e.g. ',' or '\\t'")
    out = LabelFile(Path(label_file))
    text = read_label_text(label_file)
    confine = img_root is not None
    root = os.path.abspath(img_root if confine else out.path.parent)
    names: Counter[str] = Counter()
    for line in text.split("\n"):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        out.total += 1
        if fmt == "txt":
            if split not in line:
                out.skipped[NO_SEPARATOR] += 1
                continue
            name, label = line.split(split, 1)
        else:
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
                obj = None
            if not (isinstance(obj, dict) and isinstance(obj.get("ImageFile"), str)):
                out.skipped[BAD_JSON] += 1
                continue
            name, label = obj["ImageFile"], obj.get("Label")
            if not isinstance(label, str):
                out.skipped[BAD_JSON] += 1
                continue
        name = name.strip()
        if not name:
            out.skipped[EMPTY_NAME] += 1
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


def warn_skips(
    source: str | Path, total: int, skipped: Counter[str], duplicates: int = 0, max_len: int = 0
) -> None:
    """Log one warning line summarising what was skipped in `source` (nothing when nothing was)."""
    n = sum(skipped.values())
    if not n and not duplicates:
        return
    parts = [f"{c} {r}={max_len}" if r == TOO_LONG else f"{c} {r}" for r, c in skipped.most_common() if c]
    msg = f"skipped {n} of {total} samples in {source}"
    if parts:
        msg += ": " + ", ".join(parts)
    if duplicates:
        msg += f" ({duplicates} duplicate file name{'s' if duplicates > 1 else ''}, kept)"
    log.warning(msg)


# datasets -----------------------------------------------------------------------------------------
class _LabelledDataset(Dataset):
    """Shared behaviour: label checks, image loading with failure counting, augmentation and set_epoch."""

    def __init__(
        self,
        *,
        charset: Charset,
        img_h: int,
        img_w: int,
        in_channels: int = 3,
        keep_ratio: bool = False,
        max_len: int = 100,
        training: bool = False,
        augment: Augment | None = None,
        seed: int = 0,
    ) -> None:
        self.charset = charset
        self.img_h, self.img_w = int(img_h), int(img_w)
        self.in_channels = int(in_channels)
        self.keep_ratio = bool(keep_ratio)
        self.max_len = int(max_len)
        self.training = bool(training)
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self.rng_salt = ""  # set by ConcatTextDataset so that its parts do not share augmentation streams
        self.skipped: Counter[str] = Counter()
        self._warned: set[str] = set()

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream: item i of epoch e is augmented the same way in every run."""
        self.epoch = int(epoch)

    def set_rng_salt(self, salt: str) -> None:
        self.rng_salt = salt

    def rng_for(self, index: int) -> random.Random:
        """The augmentation rng of one item: a function of (seed, epoch, index) only, not of worker layout."""
        return random.Random(f"{self.seed}:{self.rng_salt}:{self.epoch}:{index}")

    def _check_label(self, raw: str) -> tuple[str, str | None]:
        """(cleaned label, skip reason or None)."""
        label = self.charset.clean(raw)
        if not label:
            return label, EMPTY_LABEL
        if not label.strip():
            return label, WHITESPACE_LABEL
        if len(label) > self.max_len:
            return label, TOO_LONG
        return label, None

    def _record(self, index: int) -> tuple[Any, str, str]:
        """(image source for load_image, name for messages, cleaned label) of kept sample `index`."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str] | None:
        source, name, label = self._record(index)
        try:
            img = load_image(source, name=name)
        except ImageError as exc:
            self.skipped[UNREADABLE] += 1
            if name not in self._warned:  # once per file and process: a bad file is read every epoch
                self._warned.add(name)
                log.warning("skipping unreadable image: %s", exc)
            return None
        if self.training and self.augment is not None:
            img = self.augment(shrink_to_height(img, 2 * self.img_h), self.rng_for(index))
        return preprocess(img, self.img_h, self.img_w, self.in_channels, self.keep_ratio), label


class _LabelFileDataset(_LabelledDataset):
    def __init__(self, label_file: str | Path, img_root: str | Path | None, fmt: str, split: str, **kw: Any):
        super().__init__(**kw)
        parsed = parse_label_file(label_file, img_root, fmt=fmt, split=split)
        self.label_file = parsed.path
        self.skipped.update(parsed.skipped)
        self.duplicates = parsed.duplicates
        self.paths: list[str] = []
        self.labels: list[str] = []
        for path, raw in parsed.records:
            label, reason = self._check_label(raw)
            if reason is None and not os.path.isfile(path):
                reason = MISSING_IMAGE
            if reason is not None:
                self.skipped[reason] += 1
                continue
            self.paths.append(path)
            self.labels.append(label)
        self.total = parsed.total
        warn_skips(self.label_file, parsed.total, self.skipped, self.duplicates, self.max_len)

    def __len__(self) -> int:
        return len(self.paths)

    def _record(self, index: int) -> tuple[Any, str, str]:
        return self.paths[index], self.paths[index], self.labels[index]


class TextLineDataset(_LabelFileDataset):
    """The original MASTER txt format: one `ImageFile<split>Label` per line, images under `img_root`.

    The label is everything after the first `split` (so labels may contain it). See the module docstring
    for what is skipped. Keywords: charset, img_h, img_w, in_channels, keep_ratio, max_len, training,
    augment, seed.
    """

    def __init__(
        self, txt_file: str | Path, img_root: str | Path | None = None, *, split: str = ",", **kw: Any
    ):
        super().__init__(txt_file, img_root, "txt", split, **kw)


class JsonlDataset(_LabelFileDataset):
    """One JSON object per line, `{"ImageFile": "path/x.png", "Label": "text"}`; images under img_root."""

    def __init__(self, jsonl_file: str | Path, img_root: str | Path | None = None, **kw: Any):
        super().__init__(jsonl_file, img_root, "jsonl", ",", **kw)


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
                f"damaged: rebuild it with `lmdb_from_labels`"
            ) from exc
        _envs[key] = env
    return env


class LmdbDataset(_LabelledDataset):
    """An LMDB in the clovaai/deep-text-recognition-benchmark layout.

    Keys: `num-samples` (ASCII integer), `image-%09d` (encoded image bytes), `label-%09d` (UTF-8 label),
    indices from 1. Labels are checked once at construction; the environment is opened read-only, once per
    process (see `open_lmdb`), so the dataset works with forked or spawned DataLoader workers.
    """

    def __init__(self, root: str | Path, **kw: Any) -> None:
        super().__init__(**kw)
        self.root = Path(root)
        if not self.root.exists():
            raise UserError(f"LMDB folder {self.root} not found; check the path")
        if not (self.root / "data.mdb").is_file():
            raise UserError(
                f"{self.root} is not an LMDB (no data.mdb in it); give the folder holding data.mdb, "
                f"or build one with `lmdb_from_labels`"
            )
        with open_lmdb(self.root).begin() as txn:
            n = self._num_samples(txn.get(b"num-samples"))
            kept = self._scan(txn, n)
        self.indices = np.asarray(kept, dtype=np.int64)  # numpy, not a list: no copy-on-read in workers
        self.total = n
        warn_skips(self.root, n, self.skipped, max_len=self.max_len)

    def _num_samples(self, raw: bytes | None) -> int:
        if raw is None:
            raise UserError(
                f"LMDB {self.root} has no 'num-samples' key, so it is not in the clovaai layout "
                f"(num-samples, image-%09d, label-%09d); rebuild it with `lmdb_from_labels`"
            )
        try:
            n = int(raw.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            n = -1
        if n < 0:
            raise UserError(
                f"LMDB {self.root}: 'num-samples' is {raw[:40]!r}, not a non-negative integer; "
                f"rebuild it with `lmdb_from_labels`"
            )
        return n

    def _scan(self, txn: lmdb.Transaction, n: int) -> list[int]:
        """Indices of usable samples; walks the sorted label keys once instead of probing n keys."""
        kept: list[int] = []
        found = 0
        images = txn.cursor()
        labels = txn.cursor()
        if labels.set_range(b"label-"):
            for key, value in labels:
                if not key.startswith(b"label-"):
                    break
                try:
                    idx = int(key[6:])
                except ValueError:
                    continue
                if not 1 <= idx <= n:
                    continue  # records beyond num-samples are ignored, as in the reference loader
                found += 1
                if not images.set_key(b"image-%09d" % idx):
                    self.skipped[MISSING_RECORD] += 1
                    continue
                try:
                    raw = value.decode("utf-8")
                except UnicodeDecodeError:
                    self.skipped[BAD_LABEL_BYTES] += 1
                    continue
                _, reason = self._check_label(raw)
                if reason is not None:
                    self.skipped[reason] += 1
                    continue
                kept.append(idx)
        if n > found:
            self.skipped[MISSING_RECORD] += n - found
        return kept

    def __len__(self) -> int:
        return len(self.indices)

    def _record(self, index: int) -> tuple[Any, str, str]:
        idx = int(self.indices[index])
        with open_lmdb(self.root).begin() as txn:
            img = txn.get(b"image-%09d" % idx)
            raw = txn.get(b"label-%09d" % idx)
        label = self.charset.clean(raw.decode("utf-8", errors="replace")) if raw is not None else ""
        return img if img is not None else b"", f"{self.root}:image-{idx:09d}", label


class ConcatTextDataset(ConcatDataset):
    """ConcatDataset that forwards `set_epoch` and sums the parts' `skipped` counters."""

    def __init__(self, datasets: Sequence[Dataset]) -> None:
        super().__init__(datasets)
        self.set_rng_salt("")

    def set_rng_salt(self, salt: str) -> None:
        for i, ds in enumerate(self.datasets):
            if hasattr(ds, "set_rng_salt"):
                ds.set_rng_salt(f"{salt}/{i}")

    def set_epoch(self, epoch: int) -> None:
        """Forward to every part (see `_LabelledDataset.set_epoch`)."""
        for ds in self.datasets:
            if hasattr(ds, "set_epoch"):
                ds.set_epoch(epoch)

    @property
    def skipped(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for ds in self.datasets:
            total.update(getattr(ds, "skipped", Counter()))
        return total


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


def hierarchy_dataset(lmdb_dir_root: str | Path, select_data: str = "/", **kw: Any) -> ConcatTextDataset:
    """Concatenate every LMDB (folder with data.mdb) under `lmdb_dir_root` that `select_data` selects.

    `select_data` is a '-'-joined list of prefixes of the folders' paths relative to the root, e.g.
    "MJ_train-ST" (the clovaai convention); "/" or "" selects all. Other keywords go to `LmdbDataset`.
    """
    root = Path(lmdb_dir_root)
    if not root.is_dir():
        raise UserError(f"LMDB root folder {root} not found; check lmdb_dir_root")
    all_lmdbs = find_lmdbs(root)
    prefixes = [p.strip("/") for p in (select_data or "/").split("-")]
    if all(p == "" for p in prefixes):
        chosen = all_lmdbs
    else:
        chosen = []
        for prefix in (p for p in prefixes if p):
            chosen += [rel for rel in all_lmdbs if rel.startswith(prefix) and rel not in chosen]
    if not chosen:
        found = ", ".join(rel or "." for rel in all_lmdbs) or "none"
        raise UserError(
            f"no LMDB under {root} matches select_data={select_data!r} (LMDBs found: {found}); "
            f"fix select_data or lmdb_dir_root"
        )
    log.info("using %d LMDB(s) under %s: %s", len(chosen), root, ", ".join(rel or "." for rel in chosen))
    return ConcatTextDataset([LmdbDataset(root / rel, **kw) for rel in chosen])


class FolderDataset(Dataset):
    """Every file of a folder for prediction: items `(tensor or None, file name, error message or None)`.

    Files are sorted by name; hidden files and subfolders are skipped; any extension is tried, and a file
    that is not a readable image becomes an error entry instead of stopping the run.
    """

    def __init__(
        self, folder: str | Path, *, img_h: int, img_w: int, in_channels: int = 3, keep_ratio: bool = False
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise UserError(f"image folder {self.folder} not found or not a folder; check the path")
        with os.scandir(self.folder) as entries:
            self.files = sorted(e.name for e in entries if not e.name.startswith(".") and e.is_file())
        if not self.files:
            raise UserError(f"image folder {self.folder} contains no files; put images in it")
        self.img_h, self.img_w = int(img_h), int(img_w)
        self.in_channels = int(in_channels)
        self.keep_ratio = bool(keep_ratio)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor | None, str, str | None]:
        name = self.files[index]
        try:
            img = load_image(self.folder / name)
        except ImageError as exc:
            return None, name, str(exc)
        return preprocess(img, self.img_h, self.img_w, self.in_channels, self.keep_ratio), name, None


# batching -----------------------------------------------------------------------------------------
class Batch(NamedTuple):
    """A training batch. `images` is None when every item of the batch was unreadable (skip the step)."""

    images: torch.Tensor | None
    labels: list[str]
    skipped: int


class FolderBatch(NamedTuple):
    """A prediction batch: `names`/`errors` cover every file in order; `images` holds a row for each file
    whose error is None, in the same order (None if there is no such file)."""

    images: torch.Tensor | None
    names: list[str]
    errors: list[str | None]


def collate(batch: Sequence[tuple[torch.Tensor, str] | None]) -> Batch:
    """Stack readable items; None items (unreadable images) are dropped and counted in `skipped`."""
    kept = [item for item in batch if item is not None]
    if not kept:
        return Batch(None, [], len(batch))
    return Batch(torch.stack([img for img, _ in kept]), [label for _, label in kept], len(batch) - len(kept))


def collate_folder(batch: Sequence[tuple[torch.Tensor | None, str, str | None]]) -> FolderBatch:
    """Collate FolderDataset items, keeping error entries (see FolderBatch)."""
    tensors = [img for img, _, err in batch if err is None and img is not None]
    images = torch.stack(tensors) if tensors else None
    return FolderBatch(images, [name for _, name, _ in batch], [err for _, _, err in batch])


# config -------------------------------------------------------------------------------------------
_ARGS = {
    "TextDataset": ({"txt_file"}, {"img_root", "split"}),
    "JsonlDataset": ({"jsonl_file"}, {"img_root"}),
    "LmdbDataset": ({"root"}, set()),
    "hierarchy_dataset": ({"lmdb_dir_root"}, {"select_data"}),
}
_OVERRIDES = {"img_w", "img_h", "training", "keep_ratio", "case_sensitive"}
# arguments of the original MASTER datasets that have no meaning here (transforms are built in)
_IGNORED = {"transform", "target_transform", "convert_to_gray", "testing_with_label_file"}
_TYPES = [*_ARGS, "SynthDataset"]


def _check_args(kind: str, args: dict[str, Any]) -> None:
    required, optional = _ARGS[kind]
    accepted = sorted(required | optional | _OVERRIDES)
    unknown = sorted(set(args) - required - optional)
    if unknown:
        raise UserError(
            f"unknown argument(s) {unknown} for dataset type {kind}; accepted: {', '.join(accepted)}"
        )
    missing = sorted(required - set(args))
    if missing:
        raise UserError(f"dataset type {kind} needs argument(s) {missing}; accepted: {', '.join(accepted)}")


def _positive_int(kind: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{key} of dataset type {kind} must be a positive integer, got {value!r}")
    return value


def build_dataset(
    spec: dict[str, Any],
    *,
    charset: Charset,
    img_h: int,
    img_w: int,
    in_channels: int = 3,
    keep_ratio: bool = False,
    max_len: int = 100,
    training: bool = False,
    seed: int = 0,
    augment: Augment | None = None,
) -> Dataset:
    """Build a dataset from an original-MASTER-style config entry `{"type": ..., "args": {...}}`.

    Types: TextDataset (txt_file, img_root, split), JsonlDataset (jsonl_file, img_root; the original's
    "JSONDataset" with txt_file is accepted too), LmdbDataset (root, or lmdb_dir_root),
    hierarchy_dataset (lmdb_dir_root, select_data) and SynthDataset (arguments forwarded to
    `masterocr.data.synth.SynthDataset`). img_w, img_h, training, keep_ratio and case_sensitive in args
    override the keywords (note: the original configs set "training": true on validation sets too, where it
    meant "labelled"; augmentation still needs an `augment`, so pass None for validation).
    Raises UserError for unknown types or arguments, or a dataset with no samples.
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise UserError(f'a dataset entry must look like {{"type": ..., "args": {{...}}}}, got {spec!r}')
    kind = spec["type"]
    args = spec.get("args") or {}
    if not isinstance(args, dict):
        raise UserError(f"the args of dataset type {kind} must be an object, got {args!r}")
    args = dict(args)
    for key in sorted(_IGNORED & args.keys()):
        log.warning("dataset argument %r (from the original MASTER config) is ignored", key)
        del args[key]
    img_w = _positive_int(kind, "img_w", args.pop("img_w", img_w))
    img_h = _positive_int(kind, "img_h", args.pop("img_h", img_h))
    training = bool(args.pop("training", training))
    keep_ratio = bool(args.pop("keep_ratio", keep_ratio))
    if "case_sensitive" in args:
        case_sensitive = bool(args.pop("case_sensitive"))
        if case_sensitive != charset.case_sensitive:
            charset = Charset(charset.keys, case_sensitive=case_sensitive, normalize=charset.normalize)
    common = dict(
        charset=charset,
        img_h=img_h,
        img_w=img_w,
        in_channels=in_channels,
        keep_ratio=keep_ratio,
        max_len=max_len,
        training=training,
        seed=seed,
        augment=augment,
    )
    if kind == "JSONDataset":  # the original's name and argument
        kind = "JsonlDataset"
        if "txt_file" in args and "jsonl_file" not in args:
            args["jsonl_file"] = args.pop("txt_file")
    if kind == "LmdbDataset" and "lmdb_dir_root" in args and "root" not in args:
        args["root"] = args.pop("lmdb_dir_root")

    if kind == "SynthDataset":
        from masterocr.data import synth  # optional extra; imported only when asked for

        dataset = synth.SynthDataset(**{**common, **args})  # args (e.g. a validation seed) win
    elif kind not in _ARGS:
        raise UserError(f"unknown dataset type {kind!r}; use one of: {', '.join(_TYPES)}")
    else:
        _check_args(kind, args)
        if kind == "TextDataset":
            dataset = TextLineDataset(
                args["txt_file"], args.get("img_root"), split=args.get("split", ","), **common
            )
        elif kind == "JsonlDataset":
            dataset = JsonlDataset(args["jsonl_file"], args.get("img_root"), **common)
        elif kind == "LmdbDataset":
            dataset = LmdbDataset(args["root"], **common)
        else:
            dataset = hierarchy_dataset(args["lmdb_dir_root"], args.get("select_data", "/"), **common)
    if hasattr(dataset, "__len__") and len(dataset) == 0:
        skipped = dict(getattr(dataset, "skipped", {}))
        raise UserError(f"dataset {kind} {args} has no usable samples (skipped: {skipped}); check its files")
    return dataset
