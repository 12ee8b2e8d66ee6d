"""POST /v1/page and GET /page: one page image in, its lines in reading order out, under the recognizer's limits;
and the page in a real browser (Debian's Chromium + playwright, skipped without them)."""

from __future__ import annotations

import base64
import io
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from _page_util import LINES, text_page

pytest.importorskip("fastapi")
pytest.importorskip("pyclipper")
pytest.importorskip("rapidocr_onnxruntime")

import torch  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from rapidfuzz.distance import Levenshtein  # noqa: E402

from masterocr.charset import Charset  # noqa: E402
from masterocr.errors import UserError  # noqa: E402
from masterocr.model import build_model, get_preset  # noqa: E402
from masterocr.runtime.torch import Recognizer  # noqa: E402
from masterocr.serve.app import create_app  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")


def word_recognizer() -> Recognizer:
    """A tiny untrained word model for /v1/recognize; /v1/page reads with the shipped line model."""
    torch.manual_seed(0)
    return Recognizer(build_model(replace(get_preset("tiny"), max_len=8), Charset.default()), Charset.default())


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(word_recognizer(), max_pixels=4_000_000, request_timeout_s=300)) as c:
        yield c


def png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_page_route_reads_a_page_in_order(client):
    page, truth = text_page()
    r = client.post("/v1/page", files={"file": ("scan.png", png(page), "image/png")})
    assert r.status_code == 200, r.text
    data = r.json()
    assert (data["width"], data["height"]) == page.size and len(data["lines"]) == 3
    assert data["text"] == "\n".join(line["text"] for line in data["lines"])
    assert Levenshtein.distance(data["text"], "\n".join(LINES)) / len("\n".join(LINES)) < 0.15
    assert all(len(line["char_scores"]) == len(line["text"]) for line in data["lines"])
    b64 = base64.b64encode(png(page)).decode()
    assert client.post("/v1/page", json={"images": [b64]}).json()["lines"] == data["lines"]


def test_page_route_limits(client):
    page, _ = text_page()
    two = [("file", ("a.png", png(page), "image/png")), ("file", ("b.png", png(page), "image/png"))]
    r = client.post("/v1/page", files=two)
    assert r.status_code == 413 and "1 per request" in r.json()["error"]
    from PIL import Image

    big = Image.new("L", (2100, 2000), 255)  # 4.2 Mpixels, over this app's 4 Mpixel limit
    r = client.post("/v1/page", files={"file": ("big.png", png(big), "image/png")})
    assert r.status_code == 413 and "pixels" in r.json()["error"]
    r = client.post("/v1/page", files={"file": ("x.png", b"not an image", "image/png")})
    assert r.status_code in (400, 415) and r.json()["error"]
    r = client.post("/v1/page", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    blank = client.post("/v1/page", files={"file": ("w.png", png(Image.new("RGB", (400, 300), "white")), "image/png")})
    assert blank.status_code == 200 and blank.json()["lines"] == []


def test_page_route_without_the_extra_says_what_to_install(monkeypatch):
    from masterocr.serve import page as serve_page

    def missing(self):
        raise UserError("reading pages needs pypdfium2; install the page extra: pip install 'masterocr[page]'")

    monkeypatch.setattr(serve_page.PageService, "reader", missing)
    with TestClient(create_app(word_recognizer())) as c:
        page, _ = text_page()
        r = c.post("/v1/page", files={"file": ("p.png", png(page), "image/png")})
    assert r.status_code == 501 and "masterocr[page]" in r.json()["error"]


def test_page_html_is_served(client):
    r = client.get("/page")
    assert r.status_code == 200 and "/v1/page" in r.text and 'id="file-input"' in r.text
    assert 'href="/page"' in client.get("/").text


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found (apt-get install chromium)")
def test_browser_drops_a_page_and_sees_boxes_text_and_char_scores(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    uvicorn = pytest.importorskip("uvicorn")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(word_recognizer(), request_timeout_s=300)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    end = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < end and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    page_img, _ = text_page()
    path = tmp_path / "scan.png"
    page_img.save(path)
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 800})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(f"http://127.0.0.1:{port}/page")
                page.set_input_files("#file-input", str(path))
                page.wait_for_function("document.querySelectorAll('#boxes polygon').length > 0", timeout=120_000)
                assert page.locator("#boxes polygon").count() == 3
                rows = page.locator("#lines div").all_inner_texts()
                assert len(rows) == 3 and Levenshtein.distance("\n".join(rows), "\n".join(LINES)) < 8
                page.locator("#boxes polygon").nth(1).click()
                assert page.locator("#chars span").count() == len(rows[1])
                assert "%" in page.locator("#chars span").first.get_attribute("title")
                assert "active" in page.locator("#lines div").nth(1).get_attribute("class")
                assert errors == []
            finally:
                browser.close()
    finally:
        srv.should_exit = True
        thread.join(10)
