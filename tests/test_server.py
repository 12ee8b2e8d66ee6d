"""The HTTP service: every endpoint, every error case, dynamic batching, back-pressure and timeouts.

A tiny untrained model (short max_len so decoding is quick) stands in for the shipped one: its text is garbage
but deterministic, so the tests check structure and behaviour, not what it reads.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

import httpx  # noqa: E402
import torch  # noqa: E402
from conftest import render_word  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from masterocr.assets import default_weights_path  # noqa: E402
from masterocr.charset import Charset  # noqa: E402
from masterocr.formats.weights import file_sha256  # noqa: E402
from masterocr.model import build_model, get_preset  # noqa: E402
from masterocr.runtime.torch import Recognizer  # noqa: E402
from masterocr.serve.app import create_app  # noqa: E402


def png(word: str = "cat", size: tuple[int, int] | None = None) -> bytes:
    img = Image.new("RGB", size, "white") if size else render_word(word)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def rec() -> Recognizer:
    torch.manual_seed(0)
    cfg = replace(get_preset("tiny"), max_len=6)
    return Recognizer(build_model(cfg, Charset.default()), Charset.default())


@pytest.fixture(scope="module")
def client(rec):
    with TestClient(create_app(rec, max_wait_ms=20)) as c:
        yield c


def files(*blobs: bytes) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("file", (f"img{i}.png", b, "image/png")) for i, b in enumerate(blobs)]


def assert_ok_entry(entry: dict) -> None:
    assert entry["error"] is None
    assert isinstance(entry["text"], str)
    assert 0.0 <= entry["score"] <= 1.0
    assert len(entry["char_scores"]) == len(entry["text"])


# --- recognize -------------------------------------------------------------------------------------------------
def test_multipart_single_matches_recognizer(client, rec):
    r = client.post("/v1/recognize", files=files(png("cat")))
    assert r.status_code == 200, r.text
    (entry,) = r.json()["results"]
    assert_ok_entry(entry)
    assert "attention" not in entry
    expected = rec.predict(png("cat"))[0]
    assert entry["text"] == expected.text
    assert entry["score"] == pytest.approx(expected.score, abs=1e-5)


def test_multipart_several_keeps_order_and_bad_image_gets_own_error(client, rec):
    words = ["cat", "HOUSE", "42"]
    blobs = [png(words[0]), b"this is not an image", png(words[1]), png(words[2])]
    r = client.post("/v1/recognize", files=files(*blobs))
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 4
    assert results[1]["text"] is None and results[1]["score"] is None
    assert "img1.png" in results[1]["error"] and "not an image" in results[1]["error"]
    expected = rec.predict([png(w) for w in words])
    for entry, exp in zip([results[0], results[2], results[3]], expected):
        assert_ok_entry(entry)
        assert entry["text"] == exp.text  # per-position: the order is kept


def test_json_base64_with_attention(client, rec):
    b64 = base64.b64encode(png("Dog")).decode()
    r = client.post("/v1/recognize?attention=true", json={"images": [b64, "data:image/png;base64," + b64]})
    assert r.status_code == 200, r.text
    a, b = r.json()["results"]
    assert_ok_entry(a)
    assert a["text"] == b["text"]
    grid = (rec.cfg.img_h // 8) * (rec.cfg.img_w // 4)
    assert len(a["attention"]) == len(a["text"])
    assert all(len(row) == grid for row in a["attention"])
    if a["attention"]:
        assert sum(a["attention"][0]) == pytest.approx(1.0, abs=1e-2)


def test_all_images_bad_is_200_with_errors(client):
    r = client.post("/v1/recognize", files=files(b"", b"\x89PNG\r\n\x1a\n truncated"))
    assert r.status_code == 200
    assert all(e["error"] and e["text"] is None for e in r.json()["results"])


@pytest.mark.parametrize(
    "kwargs, status, words",
    [
        ({"files": [("other", ("a.png", b"x", "image/png"))]}, 400, "no images"),
        ({"json": {"images": []}}, 400, "no images"),
        ({"json": {"pictures": ["x"]}}, 400, "images"),
        ({"json": {"images": ["***not base64***"]}}, 400, "base64"),
        ({"json": {"images": [42]}}, 400, "not a string"),
        ({"content": b"{nope", "headers": {"content-type": "application/json"}}, 400, "JSON"),
        ({"content": b"abc", "headers": {"content-type": "text/plain"}}, 415, "content type"),
        ({"content": b"abc"}, 415, "content type"),
        ({"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data; boundary=x"}}, 400, ""),
    ],
)
def test_malformed_requests_are_4xx_with_error_body(client, kwargs, status, words):
    r = client.post("/v1/recognize", **kwargs)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


def test_bad_query_parameter_is_422_with_error_body(client):
    r = client.post("/v1/recognize?attention=maybe", files=files(png()))
    assert r.status_code == 422
    assert "attention" in r.json()["error"]


def test_limits(rec):
    app = create_app(rec, max_images_per_request=2, max_request_bytes=4000, max_pixels=5000)
    with TestClient(app) as c:
        r = c.post("/v1/recognize", files=files(png(), png(), png()))
        assert r.status_code in (400, 413) and "limit" in r.json()["error"].lower()
        r = c.post("/v1/recognize", json={"images": ["aGk="] * 3})
        assert r.status_code == 413 and "per request" in r.json()["error"]
        # Content-Length over the limit: refused before reading
        r = c.post("/v1/recognize", files=files(b"\0" * 5000))
        assert r.status_code == 413 and "4000" in r.json()["error"]

        # no Content-Length (chunked): refused while reading
        def chunks():
            for _ in range(10):
                yield b"x" * 1000

        r = c.post("/v1/recognize", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413, r.text
        # pixel limit, from the header
        r = c.post("/v1/recognize", files=files(png(size=(200, 40))))
        assert r.status_code == 413
        assert "8000 pixels" in r.json()["error"] and "5000" in r.json()["error"]
        assert c.post("/v1/recognize", files=files(png(size=(60, 20)))).status_code == 200


# --- other endpoints -------------------------------------------------------------------------------------------
def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_model_info(client, rec):
    m = client.get("/v1/model").json()
    assert m["config"] == rec.cfg.to_dict()
    assert m["charset"]["keys"] == rec.charset.keys
    assert m["input"] == {"height": rec.cfg.img_h, "width": rec.cfg.img_w, "channels": rec.cfg.in_channels,
                          "keep_ratio": rec.cfg.keep_ratio}
    assert m["attention_grid"] == {"height": rec.cfg.img_h // 8, "width": rec.cfg.img_w // 4}
    assert m["checkpoint"] is None and m["sha256"] is None  # in-memory model
    assert m["parameters"] == sum(p.numel() for p in rec.model.parameters())
    assert m["model"] is None and m["reads"] == "word crops" and {"word", "small"} <= set(m["shipped_models"])


def test_model_info_names_the_shipped_model_that_reads():
    from masterocr.serve.info import model_info

    for name, reads in (("word", "word crops"), ("small", "word crops"), ("line", "text lines")):
        m = model_info(Recognizer(name), {})
        assert m["model"] == name and m["reads"] == reads and name in m["shipped_models"]


def test_app_shutdown_stops_its_decode_thread(rec):
    """The decode thread lives as long as the app: a leaked thread would be copied into every later fork."""

    def decode_threads() -> int:
        return sum(t.name.startswith("masterocr-decode") and t.is_alive() for t in threading.enumerate())

    before = decode_threads()
    with TestClient(create_app(rec)) as c:
        assert c.post("/v1/recognize", files=files(png())).status_code == 200
        assert decode_threads() == before + 1
    for _ in range(100):  # shutdown(wait=False): the idle thread exits right after
        if decode_threads() == before:
            break
        time.sleep(0.02)
    assert decode_threads() == before


def test_model_info_checkpoint_sha256(rec, tmp_path):
    import hashlib

    path = tmp_path / "w.safetensors"
    path.write_bytes(b"weights")
    rec2 = Recognizer(rec.model, rec.charset)
    rec2.weights_path = path
    with TestClient(create_app(rec2)) as c:
        r = c.get("/v1/model")
    m = r.json()
    assert m["checkpoint"] == "w.safetensors"  # the name only: no server-side path
    assert str(tmp_path) not in r.text
    assert m["sha256"] == hashlib.sha256(b"weights").hexdigest()


def test_index_page(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for el in ('id="file-input"', 'id="result-text"', 'id="result-score"', "/v1/recognize?attention=true"):
        assert el in r.text


def test_openapi(client):
    spec = client.get("/openapi.json").json()
    assert "post" in spec["paths"]["/v1/recognize"]
    assert {"/healthz", "/v1/model"} <= set(spec["paths"])
    body = spec["paths"]["/v1/recognize"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)
    # Swagger UI and ReDoc load scripts from a CDN (blank offline): not served; the schema is
    for route in ("/docs", "/redoc"):
        assert client.get(route).status_code == 404


# --- batching, back-pressure, timeout --------------------------------------------------------------------------
def run_async(app, fn):
    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as ac:
            try:
                return await fn(ac)
            finally:
                await app.state.batcher.stop()

    return asyncio.run(main())


@contextlib.contextmanager
def encoder_hook(rec: Recognizer, hook):
    """`hook(module, args)` runs before every call of the real model's backbone (args[0]: the image batch)."""
    handle = rec.model.backbone.register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def test_concurrent_requests_are_batched(rec):
    sizes: list[int] = []
    app = create_app(rec, max_batch=8, max_wait_ms=300)
    blob = png("tree")

    async def go(ac):
        return await asyncio.gather(*(ac.post("/v1/recognize", files=files(blob)) for _ in range(5)))

    with encoder_hook(rec, lambda module, args: sizes.append(args[0].shape[0])):
        responses = run_async(app, go)
    assert all(r.status_code == 200 for r in responses)
    assert {r.json()["results"][0]["text"] for r in responses} == {rec.predict(blob)[0].text}
    assert sum(sizes) == 5 and max(sizes) > 1, sizes


class Gate:
    """Holds the model's encoder until released (or `hold_s` passed): a slow model."""

    def __init__(self, hold_s: float = 5.0) -> None:
        self.started, self.release, self.hold_s = threading.Event(), threading.Event(), hold_s

    def __call__(self, module, args) -> None:
        self.started.set()
        self.release.wait(self.hold_s)


async def _until(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not reached"
        await asyncio.sleep(0.01)


def test_queue_full_is_503_with_retry_after(rec):
    slow = Gate()
    app = create_app(rec, max_batch=1, max_wait_ms=0, max_queue=1)
    blob = png()

    async def go(ac):
        first = asyncio.create_task(ac.post("/v1/recognize", files=files(blob)))
        await _until(slow.started.is_set)  # the worker holds it: the queue is empty again
        second = asyncio.create_task(ac.post("/v1/recognize", files=files(blob)))
        await _until(lambda: app.state.batcher.queue.qsize() == 1)  # now the queue is full
        third = await ac.post("/v1/recognize", files=files(blob))
        slow.release.set()
        return third, await first, await second

    with encoder_hook(rec, slow):
        third, first, second = run_async(app, go)
    assert third.status_code == 503
    assert third.headers["retry-after"] == "1" and "busy" in third.json()["error"]
    assert first.status_code == 200 and second.status_code == 200
    assert first.json()["results"][0]["text"] == rec.predict(blob)[0].text


def test_timeout_is_504_and_service_recovers(rec):
    slow = Gate(hold_s=0.6)
    app = create_app(rec, request_timeout_s=0.2)

    async def go(ac):
        late = await ac.post("/v1/recognize", files=files(png()))
        slow.release.set()
        await asyncio.sleep(0.5)  # the held batch finishes; its cancelled future is skipped
        return late, await ac.post("/v1/recognize", files=files(png()))

    with encoder_hook(rec, slow):
        late, again = run_async(app, go)
    assert late.status_code == 504 and "longer than" in late.json()["error"]
    assert again.status_code == 200


def test_model_failure_is_500_json_and_worker_survives(rec):
    calls: list[int] = []

    def fail_once(module, args) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")

    app = create_app(rec)

    async def go(ac):
        return await ac.post("/v1/recognize", files=files(png())), await ac.post("/v1/recognize", files=files(png()))

    with encoder_hook(rec, fail_once):
        first, second = run_async(app, go)
    assert first.status_code == 500 and first.json() == {"error": "internal error"}
    assert second.status_code == 200 and second.json()["results"][0]["text"] == rec.predict(png())[0].text


def test_serve_without_shipped_weights_is_a_clear_user_error(monkeypatch, tmp_path):
    from masterocr.errors import UserError
    from masterocr.serve.app import serve

    monkeypatch.setenv("MASTEROCR_WEIGHTS", str(tmp_path / "missing.safetensors"))
    with pytest.raises(UserError, match="no shipped weights"):
        serve(port=0)


def test_int8_shipped_model_serves_the_bundled_sample():
    samples = Path(__file__).resolve().parents[1] / "samples"
    app = create_app(Recognizer.from_checkpoint(None, int8=True))
    with TestClient(app) as c:
        blob = (samples / "real_0142.png").read_bytes()
        r = c.post("/v1/recognize", files=[("file", ("real_0142.png", blob, "image/png"))])
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["text"] == "NOTICE"
        info = c.get("/v1/model").json()
        assert info["variant"] == "int8"
        assert info["sha256"] == file_sha256(default_weights_path())  # the int8 variant names its file too


def test_serve_refuses_int8_with_a_dtype_before_loading():
    from masterocr.errors import UserError
    from masterocr.serve.app import serve

    with pytest.raises(UserError, match="not both"):
        serve(port=0, int8=True, dtype="bf16")


def test_onnx_backend_serves_without_attention_maps(tmp_path):
    from masterocr.export.onnx import export_onnx
    from masterocr.runtime.onnx import OnnxRecognizer

    samples = Path(__file__).resolve().parents[1] / "samples"
    app = create_app(OnnxRecognizer(export_onnx(None, tmp_path / "onnx")))
    with TestClient(app) as c:
        blob = (samples / "real_0142.png").read_bytes()
        r = c.post("/v1/recognize?attention=true", files=[("file", ("real_0142.png", blob, "image/png"))])
        assert r.status_code == 200, r.text
        (entry,) = r.json()["results"]
        assert entry["text"] == "NOTICE" and entry["attention"] is None
        info = c.get("/v1/model").json()
        assert info["backend"] == "onnxruntime" and info["attention_maps"] is False
        assert info["variant"] == "onnx" and len(info["sha256"]) == 64
        assert c.get("/").status_code == 200


def test_serve_onnx_backend_needs_an_exported_folder(tmp_path, monkeypatch):
    from masterocr.errors import UserError
    from masterocr.serve.app import serve

    monkeypatch.setenv("MASTEROCR_WEIGHTS", str(tmp_path / "mine.safetensors"))  # the shipped graphs don't apply
    with pytest.raises(UserError, match="pass --checkpoint DIR"):
        serve(port=0, backend="onnx")
    with pytest.raises(UserError, match="not an exported model folder"):
        serve(checkpoint=str(tmp_path), port=0, backend="onnx")


# --- decoded-pixel budget --------------------------------------------------------------------------------------
def test_pixel_budget_waits_then_503_and_wakes_waiters():
    from masterocr.serve.budget import PixelBudget
    from masterocr.serve.limits import RequestError

    async def go():
        budget = PixelBudget(100, wait_s=0.2)
        order: list[str] = []
        async with budget.reserve(60):
            with pytest.raises(RequestError) as busy:
                async with budget.reserve(50):
                    pass
            assert busy.value.status == 503 and busy.value.headers == {"Retry-After": "1"}

            async def waiter():
                async with budget.reserve(50):
                    order.append("waiter")

            task = asyncio.create_task(waiter())
            await asyncio.sleep(0.05)
            assert order == [] and budget.used == 60  # it waits for room
            order.append("release")
        await asyncio.wait_for(task, 1)
        assert order == ["release", "waiter"] and budget.used == 0
        with pytest.raises(RequestError) as big:
            async with budget.reserve(101):
                pass
        assert big.value.status == 413 and "at once" in big.value.message

    asyncio.run(go())


def test_pixels_in_flight_over_http(rec):
    app = create_app(rec, max_pixels_in_flight=10_000, pixel_wait_s=0.1)
    with TestClient(app) as c:
        r = c.post("/v1/recognize", files=files(png(size=(100, 40)), png(size=(100, 40)), png(size=(100, 40))))
        assert r.status_code == 413 and "12000 pixels" in r.json()["error"]
        app.state.budget.used = 8_000  # another request's images being decoded
        r = c.post("/v1/recognize", files=files(png(size=(100, 40))))
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "busy" in r.json()["error"]
        app.state.budget.used = 0
        assert c.post("/v1/recognize", files=files(png(size=(100, 40)))).status_code == 200
        assert app.state.budget.used == 0  # released after decoding
        assert c.get("/v1/model").json()["serving"]["max_pixels_in_flight"] == 10_000


def test_deep_json_is_400_before_parsing(client):
    from masterocr.serve.limits import json_depth

    assert json_depth(b'{"images": ["[[[{{\\"[[", "b"]}') == 2  # brackets inside strings do not count
    assert json_depth(b"{[{}]}[{{{{}}}}]") == 5
    deep = b'{"images": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    r = client.post("/v1/recognize", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "100001 levels deep" in r.json()["error"]
    r = client.post("/v1/recognize", content=b"[" * 100_000, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "nested" in r.json()["error"]
