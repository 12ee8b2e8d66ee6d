"""Data layer: robust image loading, label files, preprocessing/augmentation, datasets, LMDBs, synthetic data."""

from masterocr.data.build import build_dataset
from masterocr.data.datasets import Batch, JsonlDataset, TextLineDataset, collate
from masterocr.data.images import MAX_PIXELS, ImageError, load_image
from masterocr.data.lmdb import lmdb_from_labels, write_lmdb
from masterocr.data.lmdb_datasets import ConcatTextDataset, LmdbDataset, hierarchy_dataset
from masterocr.data.transforms import PAD_VALUE, Augment, ModelInput, preprocess

__all__ = [
    "MAX_PIXELS",
    "PAD_VALUE",
    "Augment",
    "Batch",
    "ConcatTextDataset",
    "ImageError",
    "JsonlDataset",
    "LmdbDataset",
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
