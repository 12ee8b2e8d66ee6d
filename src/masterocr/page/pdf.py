"""PDF pages as images (pypdfium2), page ranges, and the bounds that keep a hostile PDF cheap."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from masterocr.data.images import MAX_PIXELS
from masterocr.errors import UserError
from masterocr.page.detector import missing_extra

DPI = 150
MAX_PAGES = 100  # pages read from one PDF without --pages; a 2,000-page manual is refused, not read for hours
MAX_PDF_BYTES = 512 << 20


def parse_pages(spec: str | None) -> list[tuple[int, int]] | None:
    """"1-3,7" -> [(1, 3), (7, 7)] (1-based, inclusive); None for all pages."""
    if spec is None or spec.strip() == "":
        return None
    out = []
    for part in spec.split(","):
        a, _, b = part.strip().partition("-")
        try:
            lo, hi = int(a), int(b) if b else int(a)
        except ValueError:
            raise UserError(f"--pages {spec!r}: expected page numbers like 1-3,7") from None
        if lo < 1 or hi < lo:
            raise UserError(f"--pages {spec!r}: pages count from 1 and a range runs low-high")
        out.append((lo, hi))
    return out


def selected(ranges: list[tuple[int, int]] | None, count: int, name: str) -> list[int]:
    """The 1-based page numbers of a document of `count` pages that `ranges` picks (out-of-range ones dropped)."""
    if ranges is None:
        if count > MAX_PAGES:
            raise UserError(f"{name}: {count} pages, over the {MAX_PAGES} read at once; "
                            f"pick some with --pages 1-{MAX_PAGES}")
        return list(range(1, count + 1))
    pages = sorted({p for lo, hi in ranges for p in range(lo, min(hi, count) + 1)})
    if not pages:
        raise UserError(f"{name}: --pages picks none of its {count} pages; pick pages 1-{count}")
    if len(pages) > MAX_PAGES:
        raise UserError(f"{name}: --pages picks {len(pages)} pages, over the {MAX_PAGES} read at once; pick fewer")
    return pages


def is_pdf(path: Path) -> bool:
    """Whether the file starts like a PDF (the header, not the name, decides)."""
    try:
        with open(path, "rb") as f:
            return f.read(1024).lstrip(b"\x00\t\n\r\f ").startswith(b"%PDF")
    except OSError:
        return False


def render_pages(path: str | os.PathLike, ranges: list[tuple[int, int]] | None = None,
                 dpi: int = DPI) -> Iterator[tuple[int, Image.Image]]:
    """(page number, page image in RGB) for each page picked, rendered at `dpi`; a page that would pass the
    image pixel limit at that dpi is rendered smaller to fit it."""
    try:
        import pypdfium2 as pdfium
    except ImportError as exc:
        raise missing_extra("pypdfium2") from exc
    name = str(path)
    size = os.stat(path).st_size
    if size > MAX_PDF_BYTES:
        raise UserError(f"{name}: {size >> 20} MB, over the {MAX_PDF_BYTES >> 20} MB a PDF may have; split it")
    try:
        doc = pdfium.PdfDocument(name)
    except pdfium.PdfiumError as exc:
        why = str(exc)
        hint = ("it is encrypted; decrypt it first (qpdf --decrypt)" if "password" in why.lower()
                else "the file is damaged or not a PDF")
        raise UserError(f"{name}: cannot open the PDF ({why}); {hint}") from None
    try:
        for number in selected(ranges, len(doc), name):
            page = doc[number - 1]
            try:
                w, h = page.get_size()
                scale = dpi / 72
                if w * h * scale * scale > MAX_PIXELS:
                    scale = (MAX_PIXELS / max(w * h, 1.0)) ** 0.5
                if w * scale < 1 or h * scale < 1:
                    raise UserError(f"{name}: page {number} is {w:.0f}x{h:.0f} pt, too small to render")
                yield number, page.render(scale=scale, grayscale=False).to_pil().convert("RGB")
            finally:
                page.close()
    finally:
        doc.close()
