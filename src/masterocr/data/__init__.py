"""Data layer: robust image loading, label files, preprocessing/augmentation, datasets, LMDBs, synthetic data.

The names load on first use (PEP 562): reading one image (data.images) must not import LMDB or the training
datasets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from masterocr.imports import lazy_exports

# public name -> the module that defines it
_EXPORTS = {
    "build_dataset": "masterocr.data.build",
    "Batch": "masterocr.data.datasets",
    "JsonlDataset": "masterocr.data.datasets",
    "TextLineDataset": "masterocr.data.datasets",
    "collate": "masterocr.data.datasets",
    "MAX_PIXELS": "masterocr.data.images",
    "ImageError": "masterocr.data.images",
    "load_image": "masterocr.data.images",
    "lmdb_from_labels": "masterocr.data.lmdb",
    "write_lmdb": "masterocr.data.lmdb",
    "ConcatTextDataset": "masterocr.data.lmdb_datasets",
    "LmdbDataset": "masterocr.data.lmdb_datasets",
    "hierarchy_dataset": "masterocr.data.lmdb_datasets",
    "PAD_VALUE": "masterocr.data.transforms",
    "Augment": "masterocr.data.transforms",
    "preprocess": "masterocr.data.transforms",
    "ModelInput": "masterocr.data.transforms",
}
__all__ = [
    "Augment",
    "Batch",
    "ConcatTextDataset",
    "ImageError",
    "JsonlDataset",
    "LmdbDataset",
    "MAX_PIXELS",
    "PAD_VALUE",
    "ModelInput",
    "TextLineDataset",
    "build_dataset",
    "collate",
    "hierarchy_dataset",
    "lmdb_from_labels",
    "load_image",
    "preprocess",
    "write_lmdb",
]

if TYPE_CHECKING:
    from masterocr.data.build import build_dataset
    from masterocr.data.datasets import Batch, JsonlDataset, TextLineDataset, collate
    from masterocr.data.images import MAX_PIXELS, ImageError, load_image
    from masterocr.data.lmdb import lmdb_from_labels, write_lmdb
    from masterocr.data.lmdb_datasets import ConcatTextDataset, LmdbDataset, hierarchy_dataset
    from masterocr.data.transforms import PAD_VALUE, Augment, ModelInput, preprocess


__getattr__ = lazy_exports(__name__, _EXPORTS)
