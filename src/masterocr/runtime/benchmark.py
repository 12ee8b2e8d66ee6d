"""Evaluate a recognizer on every LMDB under a folder (IIIT5k, SVT, IC13, IC15, SVTP, CUTE80 come so)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from masterocr.data import LmdbDataset, collate
from masterocr.data.lmdb import find_lmdbs
from masterocr.errors import UserError
from masterocr.metrics import Counts
from masterocr.runtime.base import BaseRecognizer


def benchmark_sets(root: str | Path) -> list[Path]:
    """Every folder under root (root included) that holds a data.mdb, as the hierarchy dataset finds them."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"data root {root} is not a folder")
    found = [root / rel for rel in find_lmdbs(root)]
    if not found:
        raise UserError(f"no LMDB (a folder with data.mdb) under {root}")
    return found


def evaluate_lmdb(recognizer: BaseRecognizer, path: Path, batch_size: int = 64, progress: bool = False) -> Counts:
    """Counts for one LMDB set; labels are kept whole (no length filter), so a long label counts as wrong."""
    c = recognizer.cfg
    ds = LmdbDataset(path, charset=recognizer.charset, img_h=c.img_h, img_w=c.img_w, in_channels=c.in_channels,
                     keep_ratio=c.keep_ratio, variable_width=c.variable_width, max_len=10_000, training=False)
    counts = Counts()
    loader = DataLoader(ds, batch_size=batch_size, collate_fn=collate)
    for batch in tqdm(loader, desc=path.name, disable=not progress, leave=False):
        counts.missing += batch.skipped  # an unreadable image is a missing prediction of unknown length
        counts.n += batch.skipped
        if batch.images is None:
            continue
        with torch.inference_mode():
            for pred, gold in zip(recognizer.predict_tensors(batch.images, widths=batch.widths), batch.labels):
                counts.add(pred.text, gold)
    return counts


def evaluate_benchmarks(
    recognizer: BaseRecognizer, data_root: str | Path, batch_size: int = 64, progress: bool = True
) -> list[tuple[str, dict]]:
    """One row per LMDB set and a sample-weighted total."""
    root = Path(data_root)
    rows, total = [], Counts()
    for path in benchmark_sets(root):
        counts = evaluate_lmdb(recognizer, path, batch_size, progress)
        name = str(path.relative_to(root)) if path != root else path.name
        rows.append((name, counts.metrics()))
        total = total.merge(counts)
    rows.append(("total", total.metrics()))
    return rows
