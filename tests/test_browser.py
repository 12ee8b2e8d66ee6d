"""The web page in a real browser: pick a file, wait for the text, compare it with the Python API's answer.

Needs Debian's Chromium at /usr/bin/chromium and the playwright Python package (no `playwright install`: the
system browser is used). Skipped otherwise. Set MASTEROCR_SCREENSHOT=path to save a screenshot of the page.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")
pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

import torch  # noqa: E402
from conftest import render_word  # noqa: E402

from masterocr.charset import Charset  # noqa: E402
from masterocr.model import build_model, get_preset  # noqa: E402
from masterocr.runtime.torch import Recognizer  # noqa: E402
from masterocr.serve.app import create_app  # noqa: E402

LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    torch.manual_seed(0)
    rec = Recognizer(build_model(replace(get_preset("tiny"), max_len=8), Charset.default()), Charset.default())
    port = free_port()
    config = uvicorn.Config(create_app(rec), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    end = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < end and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield rec, f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def test_page_recognizes_a_picked_file(server, tmp_path):
    rec, url = server
    image = tmp_path / "word.png"
    img = render_word("Hello", height=32)
    img.save(image)
    expected = rec.predict(str(image))[0]

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 720})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url + "/")
            page.set_input_files("#file-input", str(image))
            page.wait_for_function("document.querySelector('#result-score').textContent.trim() !== ''",
                                   timeout=30_000)
            text = page.inner_text("#result-text")
            score = page.inner_text("#result-score")
            thumbs = page.locator(".thumb").count()
            if expected.text:
                page.hover("#result-text span")  # draws that character's attention over the image
            shot = os.environ.get("MASTEROCR_SCREENSHOT")
            if shot:
                page.screenshot(path=shot, full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    assert text == (expected.text or "(no text)")
    assert score == f"{100 * expected.score:.1f}%"
    assert thumbs == len(expected.text)
