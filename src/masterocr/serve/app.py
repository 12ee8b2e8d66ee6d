"""HTTP recognition service: FastAPI app with dynamic batching, a model info endpoint and a web page.

`create_app(recognizer)` builds the app; `serve(...)` loads a model and runs it with uvicorn. Requests are read
and bounded by serve/limits.py and decoded in batches by serve/batcher.py. Bad input never gives a 500: a
malformed request gets a 4xx with `{"error": "..."}`, an unreadable image inside a good request gets its own
result entry with `error` set while the others are recognized.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from masterocr.data.images import MAX_PIXELS, ImageError, load_image
from masterocr.errors import UserError
from masterocr.limits import MAX_ATTENTION_IMAGES, MAX_CONNECTIONS
from masterocr.memory import release_memory
from masterocr.runtime.base import BaseRecognizer, Prediction
from masterocr.runtime.locations import place
from masterocr.runtime.select import load_recognizer
from masterocr.serve.batcher import Batcher
from masterocr.serve.budget import TRIM_PIXELS, PixelBudget
from masterocr.serve.connections import HEADER_TIMEOUT_S, InFlightLimit, idle_closing_protocol, max_open_sockets
from masterocr.serve.info import model_info
from masterocr.serve.limits import MiB, RequestError, RequestLimits, check_limits, read_images
from masterocr.serve.middleware import BodyTimeoutMiddleware
from masterocr.serve.page import add_page_routes

log = logging.getLogger(__name__)

# decoded pixels over all requests at once: two images at the per-image limit (about 0.5 GB of RGB buffers)
MAX_PIXELS_IN_FLIGHT = 2 * MAX_PIXELS


# response schemas (documentation in /openapi.json; the handlers build plain dicts)
class RecognitionResult(BaseModel):
    text: str | None
    score: float | None
    char_scores: list[float]  # one per character; empty when the image could not be read
    attention: list[list[float]] | None = None  # only with ?attention=true: per character, H/8 x W/4 flattened
    error: str | None


class RecognizeResponse(BaseModel):
    results: list[RecognitionResult]


class ErrorResponse(BaseModel):
    error: str


RECOGNIZE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": RecognizeResponse},
    400: {"model": ErrorResponse}, 413: {"model": ErrorResponse}, 415: {"model": ErrorResponse},
    503: {"model": ErrorResponse}, 504: {"model": ErrorResponse},
}  # fmt: skip
RECOGNIZE_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
    "application/json": {"schema": {"type": "object", "required": ["images"], "properties": {
        "images": {"type": "array", "items": {"type": "string", "format": "byte"}}}}},
}}}  # fmt: skip


def _index_html() -> str:
    return resources.files("masterocr.serve").joinpath("static/index.html").read_text(encoding="utf-8")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    """Every error, ours or the framework's, answers `{"error": message}`."""

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status in (408, 413):  # the body may be unread: close, so the client cannot hold the connection
            headers.setdefault("Connection", "close")
        return _error(exc.status, exc.message, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return _error(422, "; ".join(parts) or "invalid request")


def _add_info_routes(app: FastAPI, info: dict, page: str) -> None:
    @app.get("/healthz", summary="liveness")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/v1/model", summary="the loaded model: config, charset, input size, checkpoint and its sha256")
    async def model() -> dict:
        return info

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)


def prepare_images(recognizer: BaseRecognizer, images: list[tuple[str, bytes]], max_pixels: int,
                   sizes: list[tuple[int, int]] | None = None) -> list[torch.Tensor | str]:
    """Each image as the model's input tensor, or the message saying why it cannot be read; each read image's
    (width, height) is appended to `sizes` when given (to place its characters)."""
    out: list[torch.Tensor | str] = []
    for name, data in images:
        try:
            image = load_image(data, name=name, max_pixels=max_pixels)
            # a line keeps its width; wider than the model's maximum is refused
            out.append(recognizer.model_input.tensor(image, name))
            if sizes is not None:
                sizes.append(image.size)
        except (ImageError, UserError) as exc:
            out.append(str(exc))
        except Exception as exc:  # never let one odd file 500 the whole request
            # the type only: a library's message can carry server-side paths
            out.append(f"{name}: cannot read image ({type(exc).__name__})")
    return out


def result_entries(prepared: list[torch.Tensor | str], preds: list[Prediction], attention: bool,
                   placed: list[list[list[float]] | None] | None = None) -> list[dict]:
    """One response entry per image, in request order: the prediction, or the image's error; with `placed`
    (one per prediction: its characters' x-ranges in the image, or None) a "char_ranges" field."""
    results, it = [], iter(preds)
    where = iter(placed or [])
    for p in prepared:
        pred = Prediction(None, None, error=p) if isinstance(p, str) else next(it)
        entry = pred.to_dict()  # the result shape the CLI's JSON and Python share
        if placed is not None:
            entry["char_ranges"] = None if isinstance(p, str) else next(where)
        if attention:
            entry["attention"] = (
                None if pred.attention is None else [[round(float(w), 5) for w in row] for row in pred.attention]
            )
        results.append(entry)
    return results


async def _decode(batcher: Batcher, tensors: list[torch.Tensor], attention: bool, timeout_s: float
                  ) -> list[Prediction]:
    """Queue the tensors and wait for their predictions: 504 past `timeout_s`, a JSON 500 when the model fails."""
    futures = batcher.submit(tensors, attention) if tensors else []
    try:
        return await asyncio.wait_for(asyncio.gather(*futures), timeout_s) if futures else []
    except asyncio.TimeoutError:
        for f in futures:
            f.cancel()
        raise RequestError(504, f"recognition took longer than {timeout_s} s; retry later") from None
    except Exception:  # the model failed (logged by the worker): a JSON 500, the worker goes on
        raise RequestError(500, "internal error") from None


def _prepare_and_trim(recognizer: BaseRecognizer, images: list[tuple[str, bytes]], max_pixels: int, pixels: int,
                      sizes: list[tuple[int, int]]) -> list[torch.Tensor | str]:
    """prepare_images, then give the decode buffers back to the system after a large request."""
    try:
        return prepare_images(recognizer, images, max_pixels, sizes)
    finally:
        if pixels >= TRIM_PIXELS:
            release_memory()


def _add_recognize_route(app: FastAPI, recognizer: BaseRecognizer, batcher: Batcher, budget: PixelBudget,
                         limits: RequestLimits, request_timeout_s: float) -> None:
    @app.post("/v1/recognize", summary="recognize the text of one or more word images", response_model=None,
              responses=RECOGNIZE_RESPONSES, openapi_extra=RECOGNIZE_BODY)
    async def recognize(
        request: Request,
        attention: bool = Query(False, description="add per-character cross-attention maps (H/8 x W/4)"),
        locations: bool = Query(False, description="add each character's x-range [x0, x1) in the image, where "
                                "it was read (CTC frames in ctc decoding, else the attention's peak column)"),
    ) -> JSONResponse:
        images, pixels = await read_images(request, limits)
        # the ONNX backend has no attention output: its entries then carry "attention": null (and, but in ctc
        # decoding, "char_ranges": null)
        maps = (attention or (locations and recognizer.decode != "ctc")) and recognizer.supports_attention
        if maps and len(images) > MAX_ATTENTION_IMAGES:
            raise RequestError(413, f"{len(images)} images with attention=true, more than the limit of "
                                    f"{MAX_ATTENTION_IMAGES}; send fewer or drop attention")
        sizes: list[tuple[int, int]] = []
        async with budget.reserve(pixels):  # decoded images are freed before the reservation ends
            prepared = await run_in_threadpool(_prepare_and_trim, recognizer, images, limits.max_pixels, pixels,
                                               sizes)
        del images
        tensors = [p for p in prepared if isinstance(p, torch.Tensor)]
        async with attention_slot if maps else contextlib.nullcontext():  # one request's maps in memory at a time
            preds = await _decode(batcher, tensors, maps, request_timeout_s)
            placed = ([place(recognizer.cfg, p.char_ranges, size) for p, size in zip(preds, sizes)]
                      if locations else None)
            response = JSONResponse({"results": result_entries(prepared, preds, attention, placed)},
                                    background=BackgroundTask(release_memory) if maps else None)
            del preds
        return response

    attention_slot = asyncio.Semaphore(1)


def create_app(
    recognizer: BaseRecognizer,
    *,
    max_batch: int = 32,
    max_wait_ms: float = 5.0,
    max_queue: int = 256,
    max_images_per_request: int = 64,
    max_request_bytes: int = 20 * MiB,
    max_pixels: int = MAX_PIXELS,
    max_pixels_in_flight: int = MAX_PIXELS_IN_FLIGHT,
    pixel_wait_s: float = 5.0,
    request_timeout_s: float = 30.0,
    body_timeout_s: float = 30.0,
    chunk_timeout_s: float = 10.0,
) -> FastAPI:
    """The recognition service around `recognizer` (see the module docstring).

    `max_pixels` bounds one image, `max_pixels_in_flight` the pixels decoded at once over all requests (a request
    waits up to `pixel_wait_s` for room, then gets 503); a body must arrive within `body_timeout_s`, each of
    its chunks within `chunk_timeout_s` (408 otherwise)."""
    check_limits(max_images_per_request=max_images_per_request, max_pixels=max_pixels,
                 max_pixels_in_flight=max_pixels_in_flight, body_timeout_s=body_timeout_s,
                 chunk_timeout_s=chunk_timeout_s, max_batch=max_batch, max_wait_ms=max_wait_ms)
    batcher = Batcher(recognizer, max_batch, max_wait_ms, max_queue)
    budget = PixelBudget(max_pixels_in_flight, pixel_wait_s)
    limits = RequestLimits(max_images_per_request, max_request_bytes, max_pixels)
    serving = {"max_batch": max_batch, "max_wait_ms": max_wait_ms, "max_queue": max_queue,
               "max_images_per_request": max_images_per_request, "max_request_bytes": max_request_bytes,
               "max_pixels": max_pixels, "max_pixels_in_flight": max_pixels_in_flight,
               "pixel_wait_s": pixel_wait_s, "request_timeout_s": request_timeout_s,
               "body_timeout_s": body_timeout_s, "chunk_timeout_s": chunk_timeout_s}
    info = model_info(recognizer, serving)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    # no /docs or /redoc: Swagger UI and ReDoc fetch their scripts from a CDN, a blank page offline; the schema
    # stays at /openapi.json, and docs/serve.md has a curl line for each input kind
    app = FastAPI(title="masterocr", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="MASTER scene-text recognition: send word crops, get text, scores and attention.")
    app.state.batcher = batcher
    app.state.budget = budget
    app.state.recognizer = recognizer
    app.add_middleware(BodyTimeoutMiddleware, body_timeout_s=body_timeout_s, chunk_timeout_s=chunk_timeout_s)
    _add_error_handlers(app)
    _add_info_routes(app, info, _index_html())
    _add_recognize_route(app, recognizer, batcher, budget, limits, request_timeout_s)
    add_page_routes(app, budget, limits, request_timeout_s)
    return app


def serve(
    checkpoint: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_batch: int = 32,
    max_wait_ms: float = 5.0,
    device: str = "cpu",
    int8: bool = False,
    dtype: str = "fp32",
    backend: str = "torch",
    threads: int | None = None,
    model: str | None = None,
    decode: str | None = None,
    max_connections: int | None = 128,
    header_timeout_s: float = HEADER_TIMEOUT_S,
    **kwargs: Any,
) -> None:
    """Load `checkpoint` (None = the shipped weights; UserError when absent) and serve it with uvicorn.

    `int8` (CPU) and `dtype` (bf16/fp16 on GPUs) are as in `Recognizer.from_checkpoint`; `backend="onnx"` serves
    a folder written by `masterocr export` (None: the shipped int8 graphs) on onnxruntime (faster on CPU at
    small batches, no attention maps);
    `threads`, `model` (a shipped model by name) and `decode` as in `load_recognizer`; beyond `max_connections`
    requests in flight the server answers 503 (idle sockets hold no slot), and a connection whose request headers
    are not complete within `header_timeout_s` is closed (serve/connections.py); other keyword arguments go to
    `create_app`."""
    import uvicorn  # optional extra (serve)

    check_limits(max_connections=max_connections, max_batch=max_batch, max_wait_ms=max_wait_ms, port=port,
                 header_timeout_s=header_timeout_s, host=host, **kwargs)  # before the model is loaded
    recognizer = load_recognizer(checkpoint, device, backend, int8, dtype, threads, model, decode=decode)
    app = create_app(recognizer, max_batch=max_batch, max_wait_ms=max_wait_ms, **kwargs)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding %s: the service has no authentication; anyone who can reach it can use it", host)
    if max_connections is not None:
        app.add_middleware(InFlightLimit, limit=max_connections)
    protocol = idle_closing_protocol(header_timeout_s, max_open_sockets(MAX_CONNECTIONS))
    uvicorn.run(app, host=host, port=port, log_level="info", http=protocol)
