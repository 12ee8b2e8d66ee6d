"""Training labels the vocabulary cannot express: counted once, reported in one warning line.

A label none of whose characters is in the charset trains as a run of UNK targets: the model learns nothing
from it but the length. Such sets are usually a wrong `charset` (e.g. the default ASCII keys for Chinese text).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import lmdb
from torch.utils.data import ConcatDataset, Dataset, Subset

from masterocr.charset import Charset
from masterocr.data.lmdb import open_lmdb
from masterocr.data.lmdb_datasets import LmdbDataset

log = logging.getLogger("masterocr.train")

LMDB_LABELS = 200_000  # labels read from each LMDB for the count (a second pass over a huge set costs time)


def _lmdb_labels(dataset: LmdbDataset) -> Iterator[str]:
    """The first LMDB_LABELS kept labels of an LMDB (cleaned as the dataset cleans them); a damaged record
    ends the walk (the dataset's reader reports it)."""
    try:
        with open_lmdb(dataset.root).begin() as txn:
            for idx in dataset.indices[:LMDB_LABELS]:
                raw = txn.get(b"label-%09d" % int(idx))
                if raw is not None:
                    yield dataset.charset.clean(raw.decode("utf-8", errors="replace"))
    except lmdb.Error:
        return


def _labels(dataset: Dataset) -> Iterator[str] | None:
    """The labels of a labelled dataset (label files, LMDBs and concatenations of them); None for others."""
    if isinstance(dataset, LmdbDataset):
        return _lmdb_labels(dataset)
    if isinstance(dataset, Subset):
        inner = getattr(dataset.dataset, "labels", None)
        return (inner[i] for i in dataset.indices) if isinstance(inner, list) else None
    if isinstance(dataset, ConcatDataset):
        parts = [_labels(d) for d in dataset.datasets]
        return None if any(p is None for p in parts) else (x for p in parts for x in p)
    labels = getattr(dataset, "labels", None)
    return iter(labels) if isinstance(labels, list) else None


def outside_vocabulary(labels: Iterable[str], charset: Charset) -> tuple[int, int]:
    """(labels with no character in the charset, labels) after the charset's normalisation."""
    outside = total = 0
    for label in labels:
        total += 1
        if not any(ch in charset for ch in charset.clean(label)):
            outside += 1
    return outside, total


def warn_outside_vocabulary(dataset: Dataset, charset: Charset, where: str = "train_dataset") -> int | None:
    """Log one warning when some labels of `dataset` lie entirely outside the charset; returns their count
    (None for a set without stored labels, e.g. synthetic words drawn from the charset itself)."""
    labels = _labels(dataset)
    if labels is None:
        return None
    outside, total = outside_vocabulary(labels, charset)
    if outside:
        log.warning("%s: %d of %d labels have no character in the charset (%d symbols): they train as UNK "
                    "only; set charset.keys_file to the characters of your labels", where, outside, total,
                    len(charset.keys))
    return outside
