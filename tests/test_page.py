"""`masterocr page` and PageReader end to end on tiny pages drawn here: output format, PDFs, --boxes, rotated
boxes and pages, and hostile input (item 4 of issue 28)."""

from __future__ import annotations

import json
import struct
import time
import zlib

import numpy as np
import pytest
from _page_util import LINES, hand_pdf, text_page, tiny_pdf
from PIL import Image
from rapidfuzz.distance import Levenshtein

from masterocr.cli import main
from masterocr.errors import UserError

pytest.importorskip("pyclipper")
pytest.importorskip("pypdfium2")
pytest.importorskip("rapidocr_onnxruntime")  # the detector's ONNX file ships in its wheel


@pytest.fixture(scope="module")
def reader():
    from masterocr.page import PageReader

    return PageReader(threads=1)


def cer(a: str, b: str) -> float:
    return Levenshtein.distance(a, b) / max(len(b), 1)


def test_reads_a_page_in_order_with_char_scores(reader):
    page, truth = text_page()
    result = reader.read_image(page)
    assert len(result.lines) == 3
    got = [line.text for line in result.lines]
    assert cer("\n".join(got), "\n".join(LINES)) < 0.15, got  # the shipped line model is weak, not blind
    for line, (_, box) in zip(result.lines, truth):
        assert len(line.char_scores) == len(line.text) and 0 < line.score <= 1
        xs, ys = [p[0] for p in line.polygon], [p[1] for p in line.polygon]
        assert min(xs) <= box[0] + 2 and max(xs) >= box[2] - 2 and min(ys) <= box[1] + 2 and max(ys) >= box[3] - 2


def test_cli_writes_json_txt_and_overlay(tmp_path):
    page, _ = text_page()
    page.save(tmp_path / "scan.png")
    assert main(["page", str(tmp_path / "scan.png"), "--out", str(tmp_path / "out"), "--overlay",
                 "--threads", "1"]) == 0
    data = json.loads((tmp_path / "out" / "scan.json").read_text(encoding="utf-8"))
    assert [set(line) for line in data["lines"]] == [{"polygon", "text", "score", "char_scores"}] * 3
    assert all(len(p) == 2 for line in data["lines"] for p in line["polygon"])
    text = (tmp_path / "out" / "scan.txt").read_text(encoding="utf-8")
    assert text.splitlines() == [line["text"] for line in data["lines"]]
    with Image.open(tmp_path / "out" / "scan.overlay.png") as im:
        assert im.size == page.size
        assert (np.asarray(im.convert("RGB"))[:, :, 0] > 150).sum() > 0
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporary files left


def test_pdf_pages_rasterised_and_picked(tmp_path, reader):
    first, _ = text_page(["first page here"], size=(600, 200))
    second, _ = text_page(["second page text"], size=(600, 200))
    tiny_pdf(tmp_path / "doc.pdf", [first, second])
    results = reader.read(tmp_path / "doc.pdf")
    assert [r.name for r in results] == ["doc.p0001", "doc.p0002"]
    assert [(r.width, r.height) for r in results] == [(600, 200)] * 2  # 150 dpi gives the pixels back
    assert cer(results[1].text, "second page text") < 0.2
    assert main(["page", str(tmp_path / "doc.pdf"), "--out", str(tmp_path / "out"), "--pages", "2"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["doc.p0002.json", "doc.p0002.txt"]


def test_boxes_file_is_read_instead_of_detecting(tmp_path, reader):
    page, truth = text_page()
    page.save(tmp_path / "p.png")
    x0, y0, x1, y1 = truth[1][1]
    boxes = [{"box": [x0 - 3, y0 - 3, x1 + 3, y1 + 3]}]
    (tmp_path / "b.json").write_text(json.dumps(boxes))
    assert main(["page", str(tmp_path / "p.png"), "--out", str(tmp_path / "o"), "--boxes",
                 str(tmp_path / "b.json")]) == 0
    data = json.loads((tmp_path / "o" / "p.json").read_text(encoding="utf-8"))
    assert len(data["lines"]) == 1
    assert data["lines"][0]["polygon"] == [[x0 - 3, y0 - 3], [x1 + 3, y0 - 3], [x1 + 3, y1 + 3], [x0 - 3, y1 + 3]]
    assert cer(data["lines"][0]["text"], LINES[1]) < 0.25


def test_rotated_box_reads_like_the_upright_one(reader):
    page, truth = text_page(["rotated line reads"], size=(500, 160), at=(60, 60))
    x0, y0, x1, y1 = truth[0][1]
    box = np.array([[x0 - 4, y0 - 4], [x1 + 4, y0 - 4], [x1 + 4, y1 + 4], [x0 - 4, y1 + 4]], dtype=float)
    upright = reader.read_image(page, boxes=[box]).lines[0].text
    turned = page.rotate(25, resample=Image.BICUBIC, expand=True, fillcolor="white")
    a, c = np.radians(25), np.array(page.size) / 2
    rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    quad = (box - c) @ rot.T + np.array(turned.size) / 2
    assert reader.read_image(turned, boxes=[quad]).lines[0].text == upright


def test_page_turned_a_quarter_reads_in_order(reader):
    page, _ = text_page()
    upright = reader.read_image(page).text
    turned = reader.read_image(page.rotate(-90, expand=True)).text
    assert cer(turned, upright) < 0.1, (turned, upright)


def test_blank_and_textless_pages_give_empty_results(tmp_path, reader):
    assert reader.read_image(Image.new("RGB", (800, 600), "white")).lines == []
    rng = np.random.default_rng(0)
    shapes = Image.new("RGB", (800, 600), "white")
    shapes.paste((90, 90, 90), (100, 100, 500, 400))  # a grey photo-like block
    noisy = np.asarray(shapes).copy()
    noisy[rng.random(noisy.shape[:2]) < 0.002] = 0  # sparse specks
    result = reader.read_image(Image.fromarray(noisy))
    assert len(result.lines) <= 2 and all(len(line.text) <= 5 for line in result.lines)
    Image.new("RGB", (800, 600), "white").save(tmp_path / "blank.png")
    assert main(["page", str(tmp_path / "blank.png"), "--out", str(tmp_path / "o")]) == 0
    assert json.loads((tmp_path / "o" / "blank.json").read_text())["lines"] == []
    assert (tmp_path / "o" / "blank.txt").read_text() == ""


def _png_header_only(path, width: int, height: int) -> None:
    """A PNG whose header claims width x height, with one tiny compressed row: never decodable in full."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("case", ["huge", "encrypted", "broken", "many_pages", "not_an_image"])
def test_hostile_inputs_get_one_line_and_no_files(tmp_path, capsys, case):
    f = tmp_path / {"huge": "big.png", "not_an_image": "x.png"}.get(case, "doc.pdf")
    if case == "huge":
        _png_header_only(f, 20000, 20000)
    elif case == "encrypted":
        hand_pdf(f, 2, encrypt=True)
    elif case == "broken":
        f.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >> garbage")
    elif case == "many_pages":
        hand_pdf(f, 2000)
    else:
        f.write_bytes(b"hello, not an image")
    start = time.perf_counter()
    assert main(["page", str(f), "--out", str(tmp_path / "o")]) == 2
    assert time.perf_counter() - start < 20
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(f) in err, err
    want = {"huge": "pixels", "encrypted": "encrypted", "broken": "damaged", "many_pages": "--pages",
            "not_an_image": "image"}[case]
    assert want in err, err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_many_pages_with_a_range_reads_only_those(tmp_path, reader):
    hand_pdf(tmp_path / "long.pdf", 2000)
    start = time.perf_counter()
    results = reader.read(tmp_path / "long.pdf", pages="1999-2005")
    assert [r.name for r in results] == ["long.p1999", "long.p2000"]
    assert all(r.lines == [] for r in results) and time.perf_counter() - start < 20


def test_missing_page_extra_says_what_to_install(monkeypatch, capsys, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pypdfium2" else real(name, *a))
    assert main(["page", str(tmp_path / "x.png"), "--out", str(tmp_path / "o")]) == 2
    assert "pip install 'masterocr[page]'" in capsys.readouterr().err


def test_read_page_from_python(tmp_path):
    import masterocr

    page, _ = text_page(LINES[:1], size=(500, 120))
    page.save(tmp_path / "one.png")
    [result] = masterocr.read_page(tmp_path / "one.png", threads=1)
    assert result.name == "one" and len(result.lines) == 1
    with pytest.raises(UserError, match="--pages applies to PDFs"):
        masterocr.read_page(tmp_path / "one.png", pages="1", threads=1)


@pytest.mark.skipif(__import__("shutil").which("tesseract") is None, reason="tesseract not on PATH")
def test_tesseract_layout_as_the_detector():
    from masterocr.page import PageReader

    page, truth = text_page()
    reader = PageReader(detector="tesseract", threads=1)
    result = reader.read_image(page)
    assert len(result.lines) == 3
    for line, (_, box) in zip(result.lines, truth):
        xs, ys = [p[0] for p in line.polygon], [p[1] for p in line.polygon]
        assert abs(min(xs) - box[0]) <= 4 and abs(min(ys) - box[1]) <= 6
    assert cer(result.text, "\n".join(LINES)) < 0.2


def test_line_model_reads_the_page_in_pieces():
    from masterocr.page import PageReader

    reader = PageReader(model="line", threads=1, piece_ratio=6.0)  # short pieces: every line is cut at a gap
    assert reader.piece_ratio == 6.0
    page, _ = text_page()
    result = reader.read_image(page)
    assert len(result.lines) == 3
    assert cer(result.text, "\n".join(LINES)) < 0.2, result.text
    assert all(len(line.char_scores) == len(line.text) for line in result.lines)
