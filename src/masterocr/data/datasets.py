"""Labelled text-line datasets read from label files (txt, jsonl) and the batch collate (LMDBs: `lmdb_datasets`).

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

import torch
from torch.utils.data import Dataset

from masterocr.charset import Charset, oov_summary
from masterocr.data.images import ImageError, load_image
from masterocr.data.labels import (
    EMPTY_LABEL,
    MISSING_IMAGE,
    TOO_LONG,
    UNREADABLE,
    WHITESPACE_LABEL,
    parse_label_file,
    warn_skips,
)
from masterocr.data.transforms import Augment, ModelInput, pad_batch, shrink_to_height

log = logging.getLogger(__name__)


# datasets -----------------------------------------------------------------------------------------
class LabelledDataset(Dataset):
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
        # variable_width: items keep their own width (<= img_w, wider ones squeezed); collate pads
        self.model_input = ModelInput(int(img_h), int(img_w), int(in_channels), bool(keep_ratio), bool(variable_width))
        self.max_len = int(max_len)
        self.training = bool(training)
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self.rng_salt = ""  # set by ConcatTextDataset so that its parts do not share augmentation streams
        self.skipped: Counter[str] = Counter()
        self.oov: Counter[str] = Counter()  # out-of-vocabulary characters of the kept labels
        self.outside = 0  # kept labels none of whose characters is in the charset (they train as UNK only)
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
            img = self.augment(shrink_to_height(img, 2 * self.model_input.height), self.rng_for(index))
        return self.model_input.training_tensor(img), label

    def _count_vocabulary(self, label: str) -> None:
        """Count a kept (cleaned) label's out-of-vocabulary characters, and the label when it has no other."""
        missing = [ch for ch in label if ch not in self.charset]
        self.oov.update(missing)
        self.outside += len(missing) == len(label)

    def _report_oov(self, source: str | Path) -> None:
        """Log one line naming the kept labels' out-of-vocabulary characters (they train as UNK)."""
        line = oov_summary(self.oov, str(source))
        if line:
            log.warning(line)


class _LabelFileDataset(LabelledDataset):
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
            self._count_vocabulary(label)
        self.total = parsed.total
        if self.paths:  # none usable: build_dataset fails in one line with these counts
            warn_skips(self.label_file, parsed.total, self.skipped, self.duplicates, self.max_len, parsed.bad_lines)
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
