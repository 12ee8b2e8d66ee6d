"""Labelled datasets read from LMDBs in the clovaai layout: one LMDB, or every LMDB under a folder (a tree).

Bad records are filtered when the dataset is built and counted in `dataset.skipped`, as for the label files
(see `datasets`); a damaged page read in training is skipped and counted as "damaged LMDB record".
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lmdb
import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from masterocr.data.datasets import LabelledDataset
from masterocr.data.labels import (
    BAD_LABEL_BYTES,
    MISSING_RECORD,
    warn_skips,
)
from masterocr.data.lmdb import DAMAGED_RECORD, REBUILD, find_lmdbs, lmdb_errors, open_lmdb
from masterocr.errors import UserError

log = logging.getLogger(__name__)


class LmdbDataset(LabelledDataset):
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
        if kept:  # none usable: build_dataset fails in one line with these counts
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
                self._count_vocabulary(label)
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
        """Forward to every part (see `LabelledDataset.set_epoch`)."""
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

    @property
    def outside(self) -> int | None:
        """The parts' labels with no character in the charset, summed; None when a part does not count them."""
        counts = [getattr(ds, "outside", None) for ds in self.datasets]
        return None if any(n is None for n in counts) else sum(counts)


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
