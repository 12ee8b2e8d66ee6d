"""The one rule for "the images in a folder", shared by predict, the demo and int8 calibration."""

from __future__ import annotations

from pathlib import Path

# suffixes of the files people keep beside their crops (labels, notes): not images, so they are skipped
NOT_IMAGES = frozenset({".txt", ".json", ".jsonl", ".csv", ".tsv", ".md", ".yaml", ".yml", ".mdb", ".lock", ".log"})


def list_image_files(folder: str | Path) -> tuple[list[Path], list[Path]]:
    """(images, skipped): the folder's visible files sorted by name, split into the ones to read and the
    label/document files (NOT_IMAGES) kept beside them. Every other file counts as an image, so an unreadable
    one is reported by its reader rather than passed over."""
    images, skipped = [], []
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")):
        (skipped if path.suffix.lower() in NOT_IMAGES else images).append(path)
    return images, skipped
