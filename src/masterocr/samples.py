"""Sample crops that ship in the package, so the README's snippet and `masterocr predict` have an image to
read from any folder: word crops (synthetic and real, see SOURCES.md there) and, under lines/, text lines."""

from __future__ import annotations

from pathlib import Path

from masterocr.errors import UserError

SAMPLES_DIR = Path(__file__).resolve().parent / "sample_images"
LINES_DIR = SAMPLES_DIR / "lines"
IMAGE_SUFFIXES = (".jpg", ".png")


def images(lines: bool = False) -> list[Path]:
    """The shipped sample images, sorted by name: word crops, or text lines with `lines=True`."""
    folder = LINES_DIR if lines else SAMPLES_DIR
    return sorted(p for p in folder.iterdir() if p.suffix in IMAGE_SUFFIXES)


def path(name: str = "001.jpg") -> Path:
    """One shipped sample by file name (`lines/lat_p0000.png` for a line)."""
    found = SAMPLES_DIR / name
    if not found.is_file():
        names = ", ".join(p.name for p in images())
        raise UserError(f"no sample {name!r}; the word samples are {names} (lines: samples.images(lines=True))")
    return found
