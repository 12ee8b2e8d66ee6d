"""Data layer: robust image loading, preprocessing/augmentation, labelled datasets and LMDB writing."""

from masterocr.data.datasets import (
    Batch,
    ConcatTextDataset,
    FolderBatch,
    FolderDataset,
    JsonlDataset,
    LmdbDataset,
    TextLineDataset,
    build_dataset,
    collate,
    collate_folder,
    hierarchy_dataset,
)
from masterocr.data.images import MAX_PIXELS, ImageError, load_image
from masterocr.data.lmdb_writer import lmdb_from_labels, write_lmdb
from masterocr.data.transforms import PAD_VALUE, Augment, preprocess

__all__ = [
    "MAX_PIXELS",
    "PAD_VALUE",
    "Augment",
    "Batch",
    "ConcatTextDataset",
    "FolderBatch",
    "FolderDataset",
    "ImageError",
    "JsonlDataset",
    "LmdbDataset",
    "TextLineDataset",
    "build_dataset",
    "collate",
    "collate_folder",
    "hierarchy_dataset",
    "lmdb_from_labels",
    "load_image",
    "preprocess",
    "write_lmdb",
]
