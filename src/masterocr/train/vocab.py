"""Training labels the vocabulary cannot express, reported in one warning line.

A label none of whose characters is in the charset trains as a run of UNK targets: the model learns nothing
from it but the length. Such sets are usually a wrong `charset` (e.g. the default ASCII keys for Chinese text).
The labelled datasets count these labels when they are built (`outside`), beside their out-of-vocabulary
characters.
"""

from __future__ import annotations

import logging

from torch.utils.data import ConcatDataset, Dataset

from masterocr.charset import Charset

log = logging.getLogger("masterocr.train")


def _outside(dataset: Dataset) -> int | None:
    """The labels of `dataset` with no character in the charset; None for a set that stores no labels (e.g.
    synthetic words drawn from the charset itself)."""
    if isinstance(dataset, ConcatDataset) and not hasattr(dataset, "outside"):
        counts = [_outside(d) for d in dataset.datasets]
        return None if any(n is None for n in counts) else sum(counts)
    return getattr(dataset, "outside", None)


def warn_outside_vocabulary(dataset: Dataset, charset: Charset, where: str = "train_dataset") -> int | None:
    """Log one warning when some labels of `dataset` lie entirely outside the charset; returns their count
    (None for a set without stored labels)."""
    outside = _outside(dataset)
    if outside:
        log.warning("%s: %d of %d labels have no character in the charset (%d symbols): they train as UNK "
                    "only; set charset.keys_file to the characters of your labels", where, outside, len(dataset),
                    len(charset.keys))
    return outside
