"""Line boxes from elsewhere: a user's detector output (`--boxes boxes.json`) and Tesseract's layout analysis
(the optional fallback detector, when `tesseract` is on PATH)."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from masterocr.errors import UserError, require_regular_file

MAX_BOXES_BYTES = 16 << 20
MAX_BOXES = 5000
TESSERACT_TIMEOUT_S = 120


def _quad(item: object, where: str) -> np.ndarray:
    """One entry as 4+ corners: {"polygon": [[x, y], ...]} or {"box": [x0, y0, x1, y1]} or a bare polygon."""
    if isinstance(item, dict) and item.get("polygon") is not None:
        pts = item["polygon"]
    elif isinstance(item, dict) and item.get("box") is not None:
        b = item["box"]
        if not (isinstance(b, list) and len(b) == 4):
            raise UserError(f"{where}: \"box\" must be [x0, y0, x1, y1]")
        pts = [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]]
    elif isinstance(item, list):
        pts = item
    else:
        raise UserError(f"{where}: expected {{\"polygon\": [[x, y], ...]}} or {{\"box\": [x0, y0, x1, y1]}}")
    ok = isinstance(pts, list) and len(pts) >= 4 and all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in p)
        for p in pts)
    if not ok:
        raise UserError(f"{where}: a polygon is a list of at least 4 [x, y] number pairs")
    return np.asarray(pts, dtype=np.float64)


def load_boxes(path: str | Path) -> list[np.ndarray]:
    """The polygons of a boxes file: a JSON list of entries or an object with "lines" (masterocr page's own
    output works), each entry {"polygon": [[x, y], ...]} or {"box": [x0, y0, x1, y1]}, page pixels."""
    require_regular_file(path, "boxes file", "pass a JSON file of line boxes")
    size = Path(path).stat().st_size
    if size > MAX_BOXES_BYTES:
        raise UserError(f"boxes file {path}: {size >> 20} MB, over {MAX_BOXES_BYTES >> 20} MB; pass fewer boxes")
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"boxes file {path}: not valid UTF-8 JSON ({exc}); fix the file") from None
    items = data.get("lines") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise UserError(f"boxes file {path}: expected a list of boxes or an object with \"lines\"")
    if len(items) > MAX_BOXES:
        raise UserError(f"boxes file {path}: {len(items)} boxes, over {MAX_BOXES}; split the page")
    return [_quad(item, f"boxes file {path}, entry {i}") for i, item in enumerate(items)]


def tesseract_available() -> bool:
    """Whether the `tesseract` program is on PATH."""
    return shutil.which("tesseract") is not None


def tesseract_lines(image: Image.Image, lang: str = "eng") -> list[np.ndarray]:
    """Line boxes from Tesseract's layout analysis (`--psm 3`, its TSV words grouped by block, paragraph, line)."""
    exe = shutil.which("tesseract")
    if exe is None:
        raise UserError("detector tesseract: the tesseract program is not on PATH; install it "
                        "(apt-get install tesseract-ocr) or use --detector ppocrv4")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "page.png"
        image.save(src)
        try:
            run = subprocess.run([exe, str(src), "stdout", "--psm", "3", "-l", lang, "tsv"], capture_output=True,
                                 timeout=TESSERACT_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise UserError(f"tesseract took over {TESSERACT_TIMEOUT_S} s on one page; "
                            "use --detector ppocrv4") from None
    if run.returncode != 0:
        raise UserError(f"tesseract failed: {run.stderr.decode('utf-8', 'replace').strip()[:200]}")
    lines: dict[tuple, list[float]] = {}
    for row in csv.DictReader(io.StringIO(run.stdout.decode("utf-8", "replace")), delimiter="\t",
                              quoting=csv.QUOTE_NONE):
        if row.get("level") != "5" or not (row.get("text") or "").strip():
            continue
        key = (row["page_num"], row["block_num"], row["par_num"], row["line_num"])
        x, y, w, h = (float(row[k]) for k in ("left", "top", "width", "height"))
        b = lines.setdefault(key, [x, y, x + w, y + h])
        b[:] = [min(b[0], x), min(b[1], y), max(b[2], x + w), max(b[3], y + h)]
    return [np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) for x0, y0, x1, y1 in lines.values()]
