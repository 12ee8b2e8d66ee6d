"""Labelled text-line datasets (txt, jsonl, LMDB, LMDB trees) and the batch collate.

Every labelled dataset yields `(image tensor (C, H, W), label)` or `None` for an image that cannot be read.
Bad samples are filtered when the dataset is built and counted in `dataset.skipped` (reason -> count), with
one warning line per source file. The reasons (constants in `labels`):

- "empty label", "whitespace-only label", "longer than max_len" (after `charset.clean`),
- "missing separator" (txt), "bad JSON line" (jsonl: not JSON, or no string "ImageFile"/"Label"),
- "empty image name", "path outside img_root", "missing image file" (txt/jsonl),
- "missing record", "label not UTF-8" (LMDB),
- "unreadable image": counted when `__getitem__` fails, in the process (DataLoader worker) that read it.

See `labels` for the label-file format and the policy for malformed lines.
"""

from __future__ import annotations

import logging
import os
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import lmdb
import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from masterocr.charset import Charset, oov_summary
from masterocr.data.images import ImageError, load_image
from masterocr.data.labels import (
    BAD_LABEL_BYTES,
    EMPTY_LABEL,
    MISSING_IMAGE,
    MISSING_RECORD,
    TOO_LONG,
    UNREADABLE,
    WHITESPACE_LABEL,
    parse_label_file,
    warn_skips,
)
from masterocr.data.lmdb import DAMAGED_RECORD, REBUILD, find_lmdbs, lmdb_errors, open_lmdb
from masterocr.data.transforms import Augment, fit_line, pad_batch, preprocess, shrink_to_height
from masterocr.errors import UserError

log = logging.getLogger(__name__)


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
        variable_width: bool = False,
        max_len: int = 100,
        training: bool = False,
        augment: Augment | None = None,
        seed: int = 0,
    ) -> None:
        self.charset = charset
        self.variable_width = bool(variable_width)  # items keep their own width (<= img_w); collate pads
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
        self.oov: Counter[str] = Counter()  # out-of-vocabulary characters of the kept labels
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
        if self.variable_width:
            return fit_line(img, self.img_h, self.img_w, self.in_channels), label
        return preprocess(img, self.img_h, self.img_w, self.in_channels, self.keep_ratio), label

    def _report_oov(self, source: str | Path) -> None:
        """Log one line naming the kept labels' out-of-vocabulary characters (they train as UNK)."""
        line = oov_summary(self.oov, str(source))
        if line:
            log.warning(line)


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
        warn_skips(self.label_file, parsed.total, self.skipped, self.duplicates, self.max_len, parsed.bad_lines)
        self.oov = self.charset.count_oov(self.labels)
        self._report_oov(self.label_file)

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
        if not os.path.lexists(self.root / "data.mdb"):  # one that is not a regular file: open_lmdb says so
            raise UserError(
                f"{self.root} is not an LMDB (no data.mdb in it); give the folder holding data.mdb, "
                f"or build one with `masterocr lmdb`"
            )
        with lmdb_errors(self.root), open_lmdb(self.root).begin() as txn:
            n = self._num_samples(txn.get(b"num-samples"))
            kept = self._scan(txn, n)
        self.indices = np.asarray(kept, dtype=np.int64)  # numpy, not a list: no copy-on-read in workers
        self.total = n
        warn_skips(self.root, n, self.skipped, max_len=self.max_len)
        self._report_oov(self.root)

    def _num_samples(self, raw: bytes | None) -> int:
        if raw is None:
            raise UserError(
                f"LMDB {self.root} has no 'num-samples' key, so it is not in the clovaai layout "
                f"(num-samples, image-%09d, label-%09d); {REBUILD}"
            )
        try:
            n = int(raw.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            n = -1
        if n < 0:
            raise UserError(
                f"LMDB {self.root}: 'num-samples' is {raw[:40]!r}, not a non-negative integer; "
                f"{REBUILD}"
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
                label, reason = self._check_label(raw)
                if reason is not None:
                    self.skipped[reason] += 1
                    continue
                self.oov.update(ch for ch in label if ch not in self.charset)
                kept.append(idx)
        if n > found:
            self.skipped[MISSING_RECORD] += n - found
        return kept

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str] | None:
        """The item, or None (skipped and counted as DAMAGED_RECORD) when lmdb cannot read its pages."""
        try:
            return super().__getitem__(index)
        except lmdb.Error as exc:
            self.skipped[DAMAGED_RECORD] += 1
            if "lmdb" not in self._warned:  # once per LMDB and process
                self._warned.add("lmdb")
                log.warning("skipping sample %d of LMDB %s (%s); %s", index, self.root, exc, REBUILD)
            return None

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

    @property
    def oov(self) -> Counter[str]:
        """The parts' out-of-vocabulary label characters, summed (each part reports its own when built)."""
        total: Counter[str] = Counter()
        for ds in self.datasets:
            total.update(getattr(ds, "oov", Counter()))
        return total


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


# batching -----------------------------------------------------------------------------------------
class Batch(NamedTuple):
    """A training batch. `images` is None when every item of the batch was unreadable (skip the step).
    `widths`: the valid pixel widths of a right-padded batch of variable-width lines (None when stacked)."""

    images: torch.Tensor | None
    labels: list[str]
    skipped: int
    widths: torch.Tensor | None = None


def collate(batch: Sequence[tuple[torch.Tensor, str] | None]) -> Batch:
    """Stack readable items; None items (unreadable images) are dropped and counted in `skipped`. Items of
    different widths (variable-width lines) are right-padded to the widest, rounded up to the backbone's
    stride, instead (data.transforms.pad_batch), and their widths returned."""
    kept = [item for item in batch if item is not None]
    if not kept:
        return Batch(None, [], len(batch))
    images, labels, skipped = [img for img, _ in kept], [label for _, label in kept], len(batch) - len(kept)
    if len({img.size(-1) for img in images}) == 1:  # every column valid
        return Batch(torch.stack(images), labels, skipped)
    padded, widths = pad_batch(images)
    return Batch(padded, labels, skipped, widths)
