"""Writing a page's results: DIR/PAGE.json, DIR/PAGE.txt and, when asked, DIR/PAGE.overlay.png, each atomically."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from masterocr.data.folders import write_bytes_atomic, write_json_atomic
from masterocr.page.reader import PageResult


def overlay(result: PageResult) -> Image.Image:
    """The page with each line's box drawn in red and its text above it in blue."""
    base = (result.image or Image.new("RGB", (result.width, result.height), "white")).convert("RGB")
    draw = ImageDraw.Draw(base)
    for line in result.lines:
        pts = [tuple(p) for p in line.polygon]
        draw.polygon(pts, outline=(220, 0, 0))
        top = min(p[1] for p in pts)
        size = max(8, int((max(p[1] for p in pts) - top) * 0.6))
        draw.text((min(p[0] for p in pts), max(0, top - size - 1)), line.text, fill=(0, 0, 200),
                  font=ImageFont.load_default(size=size))
    return base


def write_page(result: PageResult, out_dir: str | Path, with_overlay: bool = False) -> list[Path]:
    """Write one page's files into `out_dir` (created if missing); returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / f"{result.name}.json", out / f"{result.name}.txt"]
    write_json_atomic(written[0], result.to_json())
    write_bytes_atomic(written[1], (result.text + "\n" if result.lines else "").encode("utf-8"))
    if with_overlay:
        buf = io.BytesIO()
        overlay(result).save(buf, format="PNG")
        written.append(out / f"{result.name}.overlay.png")
        write_bytes_atomic(written[-1], buf.getvalue())
    return written
