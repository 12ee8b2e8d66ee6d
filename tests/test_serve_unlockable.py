"""No client can lock or drain the server (issue 27 item 4), against a real `serve()` in a subprocess with a small
random-weight line model: idle sockets are closed after the header timeout and never hold the slots working
clients need; attention maps are limited per request, built one request at a time, and their memory goes back.
The server's RSS is printed before and after each attack (run with -s to see it)."""

from __future__ import annotations

import io
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw
from serverproc import rss, server_process

MB = 1024 * 1024
SERVER = """
import sys
from dataclasses import replace
import torch
from masterocr.charset import Charset
from masterocr.model import build_model, get_preset
from masterocr.runtime.torch import Recognizer
import masterocr.serve.app as app
torch.manual_seed(0)
cfg = replace(get_preset("tiny"), img_h=32, img_w=1600, keep_ratio=True, variable_width=True, max_len=100)
rec = Recognizer(build_model(cfg, Charset.default()), Charset.default())
app.load_recognizer = lambda *a, **k: rec
app.serve(None, port=int(sys.argv[1]), max_connections=128, header_timeout_s=1.0, threads=1)
"""
IDLE = 130


def line_png(width: int = 1600) -> bytes:
    img = Image.new("L", (width, 32), 255)
    draw = ImageDraw.Draw(img)
    for x in range(4, width - 12, 14):
        draw.rectangle((x, 6, x + 8, 26), fill=0)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server():
    with server_process(SERVER, timeout_s=90) as running:
        yield running


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_130_idle_sockets_hold_no_slot_and_are_closed(server):
    proc, port, base = server
    before = rss(proc.pid)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(IDLE)]
    idle[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # a header that never completes
    try:
        # more idle sockets than --max-connections: a working client is still served at once
        started = time.monotonic()
        r = httpx.get(base + "/v1/model", timeout=5)
        assert r.status_code == 200, r.text
        assert time.monotonic() - started < 1.0
        during = rss(proc.pid)
        time.sleep(2.0)  # past the 1 s header timeout: the server has closed every one of them
        for s in idle:
            s.settimeout(2)
            assert s.recv(1) == b""
        after = rss(proc.pid)
    finally:
        for s in idle:
            s.close()
    print(f"\nidle sockets: RSS before {before / MB:.0f} MB, with {IDLE} open {during / MB:.0f} MB, "
          f"after they were closed {after / MB:.0f} MB")
    assert after - before < 20 * MB
    assert httpx.get(base + "/healthz", timeout=5).status_code == 200


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_16_attention_requests_of_long_lines_are_bounded_and_memory_goes_back(server):
    proc, _, base = server
    blob = line_png()
    four = [("file", (f"l{i}.png", blob, "image/png")) for i in range(4)]
    r = httpx.post(base + "/v1/recognize?attention=true", files=four[:1], timeout=120)  # warm up
    assert r.status_code == 200 and len(r.json()["results"][0]["attention"]) >= 1
    time.sleep(0.5)
    before = rss(proc.pid)
    sixteen = [("file", (f"l{i}.png", blob, "image/png")) for i in range(16)]
    r = httpx.post(base + "/v1/recognize?attention=true", files=sixteen, timeout=30)
    assert r.status_code == 413 and "more than the limit of 4" in r.json()["error"]  # refused before decoding

    peak, stop = [before], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak.append(rss(proc.pid))
            time.sleep(0.02)

    statuses: list[int] = []

    def one() -> None:
        statuses.append(httpx.post(base + "/v1/recognize?attention=true", files=four, timeout=300).status_code)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    clients = [threading.Thread(target=one) for _ in range(16)]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    time.sleep(1.0)
    stop.set()
    watcher.join()
    after = rss(proc.pid)
    print(f"\n16 attention requests of 4 lines (1600 px): RSS before {before / MB:.0f} MB, "
          f"peak {max(peak) / MB:.0f} MB, after {after / MB:.0f} MB; statuses {sorted(set(statuses))}")
    assert set(statuses) <= {200, 503, 504} and statuses.count(200) >= 1
    assert max(peak) - before < 400 * MB
    assert after - before < 100 * MB
