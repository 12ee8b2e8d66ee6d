"""Hostile input to the HTTP service, one table row per case: the request, the status it must get and a fragment
its answer must (or must not) contain.

In-process cases go through a TestClient; timeouts, disconnects and the connection cap need a real socket, so
they run against uvicorn on 127.0.0.1 on a free port in a thread of this process (its logs reach caplog).
"""

from __future__ import annotations

import base64
import io
import logging
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
uvicorn = pytest.importorskip("uvicorn")

import torch  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from masterocr.charset import Charset  # noqa: E402
from masterocr.model import build_model, get_preset  # noqa: E402
from masterocr.runtime.torch import Recognizer  # noqa: E402
from masterocr.serve.app import create_app  # noqa: E402

SECRET_DIR = "/srv/secret-models-dir"


def png(size: tuple[int, int] = (60, 20)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, "white").save(buf, format="PNG")
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height with a few bytes of data: a pixel bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def files(*blobs: bytes) -> list:
    return [("file", (f"img{i}.png", b, "image/png")) for i, b in enumerate(blobs)]


JSON = {"content-type": "application/json"}
MULTI = {"content-type": "multipart/form-data; boundary=xyz"}


@dataclass
class Case:
    id: str
    method: str
    path: str
    kwargs: dict[str, Any]
    status: int
    fragment: str  # in the response text
    absent: str | None = None  # never in the response text
    app: str = "default"
    extra: dict[str, str] = field(default_factory=dict)  # expected response headers


CASES = [
    # methods and routes
    Case("get-recognize", "GET", "/v1/recognize", {}, 405, "Method Not Allowed"),
    Case("put-recognize", "PUT", "/v1/recognize", {"content": b"x"}, 405, "Method Not Allowed"),
    Case("delete-model", "DELETE", "/v1/model", {}, 405, "Method Not Allowed"),
    Case("post-model", "POST", "/v1/model", {"json": {}}, 405, "Method Not Allowed"),
    Case("options-recognize", "OPTIONS", "/v1/recognize", {}, 405, "Method Not Allowed"),
    Case("unknown-route", "GET", "/v2/anything", {}, 404, "Not Found"),
    Case("dotdot-route", "GET", "/static/../../../etc/passwd", {}, 404, "Not Found", absent="root:"),
    Case("bad-query", "POST", "/v1/recognize?attention=maybe", {"files": files(png())}, 422, "attention"),
    # content types
    Case("text-plain", "POST", "/v1/recognize", {"content": b"abc", "headers": {"content-type": "text/plain"}},
         415, "unsupported content type 'text/plain'"),
    Case("no-content-type", "POST", "/v1/recognize", {"content": b"abc"}, 415, "(none)"),
    Case("xml", "POST", "/v1/recognize", {"content": b"<a/>", "headers": {"content-type": "application/xml"}},
         415, "application/xml"),
    # empty and malformed bodies
    Case("empty-json", "POST", "/v1/recognize", {"content": b"", "headers": JSON}, 400, "not valid JSON"),
    Case("empty-multipart", "POST", "/v1/recognize", {"content": b"", "headers": MULTI}, 400, "no images"),
    Case("multipart-no-boundary", "POST", "/v1/recognize",
         {"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}}, 400, "malformed multipart"),
    Case("multipart-truncated", "POST", "/v1/recognize",
         {"content": b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nabc',
          "headers": MULTI}, 400, "no images"),  # an unterminated part is no upload
    Case("multipart-text-field", "POST", "/v1/recognize", {"files": [("file", (None, b"plain text"))]}, 400,
         "field 'file' #0 is text"),
    Case("multipart-other-field", "POST", "/v1/recognize", {"files": [("img", ("a.png", png(), "image/png"))]},
         400, "no images"),
    Case("json-invalid-utf8", "POST", "/v1/recognize", {"content": b'{"images": ["\xff\xfe"]}', "headers": JSON},
         400, "not valid JSON"),
    Case("json-list-top", "POST", "/v1/recognize", {"json": [b64(png())]}, 400, "\\\"images\\\" list"),
    Case("json-images-string", "POST", "/v1/recognize", {"json": {"images": b64(png())}}, 400, "images"),
    Case("json-nan", "POST", "/v1/recognize", {"content": b'{"images": NaN}', "headers": JSON}, 400, "images"),
    Case("json-empty-list", "POST", "/v1/recognize", {"json": {"images": []}}, 400, "no images"),
    Case("bad-base64", "POST", "/v1/recognize", {"json": {"images": ["***"]}}, 400, "images[0] is not valid base64"),
    Case("bad-data-url", "POST", "/v1/recognize", {"json": {"images": ["data:image/png;base64,@@"]}}, 400,
         "not valid base64"),
    Case("base64-number", "POST", "/v1/recognize", {"json": {"images": [b64(png()), 7]}}, 400,
         "images[1] is not a string"),
    # nesting depth
    Case("deep-array", "POST", "/v1/recognize", {"content": b"[" * 100_000 + b"]" * 100_000, "headers": JSON},
         400, "100000 levels deep"),
    Case("deep-in-images", "POST", "/v1/recognize",
         {"content": b'{"images": [' + b"{" * 50_000 + b"]}", "headers": JSON}, 400, "levels deep"),
    Case("brackets-in-string", "POST", "/v1/recognize", {"json": {"images": ["[" * 1000]}}, 400,
         "not valid base64"),  # brackets inside a string are no nesting
    # sizes and counts
    Case("too-many-json", "POST", "/v1/recognize", {"json": {"images": ["aGk="] * 5}}, 413,
         "5 images, more than the limit of 4", app="tight"),
    Case("too-many-multipart", "POST", "/v1/recognize", {"files": files(*[png()] * 5)}, 413, "per request",
         app="tight"),
    Case("huge-content-length", "POST", "/v1/recognize",
         {"content": b"{}", "headers": {**JSON, "content-length": str(10**15)}}, 413, "more than the limit",
         extra={"connection": "close"}),
    Case("body-over-limit", "POST", "/v1/recognize", {"json": {"images": ["A" * 70_000]}}, 413,
         "more than the limit of 65536", app="tight", extra={"connection": "close"}),
    Case("pixel-bomb", "POST", "/v1/recognize", {"files": files(png_header_only(60_000, 60_000))}, 413,
         "3600000000 pixels, more than the limit"),
    Case("pixel-bomb-json", "POST", "/v1/recognize", {"json": {"images": [b64(png_header_only(20_000, 20_000))]}},
         413, "images[0]: image has 400000000 pixels"),
    Case("over-in-flight-budget", "POST", "/v1/recognize",
         {"files": files(*[png_header_only(1000, 900)] * 3)}, 413, "2700000 pixels in all", app="tight"),
    # unreadable images inside a good request: their own entry, the request still 200
    Case("not-an-image", "POST", "/v1/recognize", {"files": files(b"hello")}, 200, "img0.png"),
    Case("truncated-png", "POST", "/v1/recognize", {"files": files(png()[:40])}, 200, "img0.png"),
    Case("zero-width", "POST", "/v1/recognize", {"files": files(png_header_only(0, 10))}, 200, "img0.png"),
    # no server paths
    Case("model-no-path", "GET", "/v1/model", {}, 200, '"checkpoint":"w.safetensors"', absent=SECRET_DIR,
         app="weights"),
    Case("error-no-path", "POST", "/v1/recognize", {"files": files(b"GIF89a" + b"\0" * 20)}, 200, "img0.png",
         absent=str(Path(__file__).resolve().parents[1])),
]


@pytest.fixture(scope="module")
def rec() -> Recognizer:
    torch.manual_seed(0)
    cfg = replace(get_preset("tiny"), max_len=4)
    return Recognizer(build_model(cfg, Charset.default()), Charset.default())


@pytest.fixture(scope="module")
def clients(rec):
    weighted = Recognizer(rec.model, rec.charset)
    weighted.weights_path = Path(SECRET_DIR) / "w.safetensors"
    apps = {
        "default": create_app(rec),
        "tight": create_app(rec, max_images_per_request=4, max_request_bytes=64 * 1024, max_pixels=1_000_000,
                            max_pixels_in_flight=2_000_000),
        "weights": create_app(weighted),
    }
    with TestClient(apps["default"]) as a, TestClient(apps["tight"]) as b, TestClient(apps["weights"]) as c:
        yield {"default": a, "tight": b, "weights": c}


def test_cases_are_distinct():
    assert len({c.id for c in CASES}) == len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_request(clients, case: Case):
    r = clients[case.app].request(case.method, case.path, **case.kwargs)
    assert r.status_code == case.status, r.text
    assert case.fragment in r.text
    if case.absent is not None:
        assert case.absent not in r.text
    for name, value in case.extra.items():
        assert r.headers.get(name) == value
    if r.status_code >= 400 and r.status_code != 404 and r.status_code != 405:
        assert set(r.json()) == {"error"}  # every refusal is one JSON error line
        assert "\n" not in r.json()["error"]
    if case.status == 200 and case.path == "/v1/recognize":
        assert r.json()["results"][0]["text"] is None  # the bad image's entry carries the error, not a guess


# --- a real server: timeouts, disconnects, the connection cap ---------------------------------------------------
@pytest.fixture(scope="module")
def server(rec):
    """uvicorn on a free loopback port in a thread, with short body timeouts and room for 3 connections."""
    app = create_app(rec, body_timeout_s=1.5, chunk_timeout_s=0.5)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, limit_concurrency=3,
                                        log_level="info"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    end = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < end and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    yield port
    srv.should_exit = True
    thread.join(10)


HEAD = (b"POST /v1/recognize HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n")


def raw_request(port: int, head: bytes, chunks: list[bytes], delay: float, read: bool = True) -> tuple[bytes, float]:
    """Send `head`, then each chunk `delay` s apart; the whole answer (until the server closes) and the time."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(head)
        for chunk in chunks:
            try:
                c.sendall(chunk)
            except OSError:  # the server answered and closed: what a released slow client sees
                break
            time.sleep(delay)
        answer = b""
        while read:
            data = c.recv(65536)
            if not data:
                break
            answer += data
    return answer, time.monotonic() - t0


@dataclass
class SocketCase:
    id: str
    head: bytes
    chunks: list[bytes]
    delay: float
    status: int
    fragment: str


SOCKET_CASES = [
    # a chunk every 0.3 s beats the 0.5 s chunk timeout but not the 1.5 s total
    SocketCase("drip-feed", HEAD, [b"{"] * 30, 0.3, 408, "the request body took longer than 1.5 s"),
    SocketCase("headers-then-silence", HEAD, [], 0, 408, "a body chunk took longer than 0.5 s"),
    SocketCase("huge-content-length-socket", HEAD.replace(b"100000", b"99999999999"), [], 0, 413,
               "more than the limit"),
    SocketCase("bad-content-length", HEAD.replace(b"100000", b"12x"), [], 0, 400, "Bad Request"),
]


@pytest.mark.parametrize("case", SOCKET_CASES, ids=[c.id for c in SOCKET_CASES])
def test_hostile_socket(server, case: SocketCase):
    answer, took = raw_request(server, case.head, case.chunks, case.delay)
    status_line = answer.split(b"\r\n", 1)[0].decode()
    assert status_line.startswith(f"HTTP/1.1 {case.status} "), answer[:300]
    assert case.fragment in answer.decode(), answer[:300]
    assert took < 5  # the server let the connection go; it did not wait for the rest of the body
    if case.status == 408:
        assert b"connection: close" in answer.lower()


def test_disconnect_mid_upload_is_one_info_line(server, caplog):
    caplog.set_level(logging.INFO)
    for _ in range(3):
        raw_request(server, HEAD, [b'{"images": ["AAAA'], 0, read=False)
    end = time.monotonic() + 5
    while sum("disconnected" in r.getMessage() for r in caplog.records) < 3:
        assert time.monotonic() < end, [r.getMessage() for r in caplog.records]
        time.sleep(0.02)
    time.sleep(0.2)
    lines = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert len(lines) == 3 and all(r.levelno == logging.INFO and r.exc_info is None for r in lines)
    assert "after sending 17 of 100000 body bytes" in lines[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text  # no ERROR traceback


def test_connections_beyond_the_cap_get_503(server):
    """limit_concurrency=3: with 4 connections waiting on their bodies, uvicorn turns some away with 503."""
    holders = []
    try:
        for _ in range(4):
            h = socket.create_connection(("127.0.0.1", server), timeout=10)
            h.sendall(HEAD)  # it holds a connection while the server waits for its body
            holders.append(h)
        time.sleep(0.2)
        answers = []
        for h in holders:
            h.settimeout(0.1)
            try:
                answers.append(h.recv(200))
            except TimeoutError:
                answers.append(b"")
        assert any(a.startswith(b"HTTP/1.1 503 ") for a in answers), answers
    finally:
        for h in holders:
            h.close()
    time.sleep(0.8)  # the held requests time out and go
    answer, _ = raw_request(server, b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", [], 0)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


# --- the command line -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, fragment", [
    (["--max-connections", "0"], "max_connections must be at least 1, got 0"),
    (["--max-pixels-in-flight", "-5"], "max_pixels_in_flight must be at least 1, got -5"),
    (["--max-images", "0"], "max_images_per_request must be at least 1"),
    (["--body-timeout-s", "0"], "body_timeout_s must be more than 0"),
])  # fmt: skip
def test_serve_bad_limits_are_one_line_before_loading(argv, fragment, capsys, monkeypatch):
    from masterocr import cli
    from masterocr.serve import app as serve_app

    monkeypatch.setattr(serve_app, "load_recognizer", lambda *a: pytest.fail("loaded the model first"))
    assert cli.main(["serve", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err


def test_serve_passes_the_limits_to_the_app_and_uvicorn(monkeypatch):
    from masterocr import cli

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    assert cli.main(["serve", "--max-connections", "7", "--max-pixels-in-flight", "1234567", "--max-pixels",
                     "1000", "--max-images", "3", "--body-timeout-s", "4"]) == 0
    from masterocr.serve.connections import InFlightLimit

    assert "limit_concurrency" not in seen and seen["host"] == "127.0.0.1"  # idle sockets hold no slot
    assert seen["http"].__name__ == "IdleClosingProtocol"
    assert [m.kwargs["limit"] for m in seen["app"].user_middleware if m.cls is InFlightLimit] == [7]
    with TestClient(seen["app"]) as c:
        serving = c.get("/v1/model").json()["serving"]
        assert (serving["max_pixels_in_flight"], serving["max_pixels"], serving["max_images_per_request"],
                serving["body_timeout_s"]) == (1234567, 1000, 3, 4.0)
        r = c.post("/v1/recognize", json={"images": ["aGk="] * 4})
        assert r.status_code == 413 and "limit of 3" in r.json()["error"]
