"""HTTP recognition service: FastAPI app with dynamic batching, a model info endpoint and a web page.

`create_app(recognizer)` builds the app; `serve(...)` loads a model and runs it with uvicorn. Requests put one
item per image on a bounded asyncio queue; a single background worker takes up to `max_batch` items (waiting at
most `max_wait_ms` for more after the first), stacks them and decodes them in a worker thread, so the event loop
stays free. Bad input never gives a 500: a malformed request gets a 4xx with `{"error": "..."}`, an unreadable
image inside a good request gets its own result entry with `error` set while the others are recognized.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import io
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from masterocr.data.images import MAX_PIXELS, ImageError, load_image
from masterocr.errors import UserError
from masterocr.formats.onnx_layout import META_FILE, folder_sha256
from masterocr.formats.weights import file_sha256
from masterocr.runtime.base import BaseRecognizer, Prediction
from masterocr.runtime.select import load_recognizer

log = logging.getLogger(__name__)

MiB = 1024 * 1024


class RequestError(Exception):
    """A malformed request: answered with `status` and `{"error": message}`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


# response schemas (documentation in /openapi.json; the handlers build plain dicts)
class RecognitionResult(BaseModel):
    text: str | None
    score: float | None
    char_scores: list[float] | None
    attention: list[list[float]] | None = None  # only with ?attention=true: per character, H/8 x W/4 flattened
    error: str | None


class RecognizeResponse(BaseModel):
    results: list[RecognitionResult]


class ErrorResponse(BaseModel):
    error: str


@dataclass
class _Item:
    tensor: torch.Tensor
    future: asyncio.Future
    attention: bool


class Batcher:
    """Bounded queue plus one worker task that decodes items in batches on a single worker thread."""

    def __init__(self, recognizer: BaseRecognizer, max_batch: int, max_wait_ms: float, max_queue: int) -> None:
        if max_batch < 1 or max_queue < 1:
            raise UserError(f"max_batch ({max_batch}) and max_queue ({max_queue}) must be at least 1")
        self.recognizer = recognizer
        self.max_batch = max_batch
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.max_queue = max_queue
        self.executor: ThreadPoolExecutor | None = None
        self.queue: asyncio.Queue[_Item] | None = None
        self.task: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start the worker on the running loop (again if the loop changed, e.g. a TestClient without `with`)."""
        loop = asyncio.get_running_loop()
        if self.loop is loop and self.task is not None and not self.task.done():
            return
        self.loop = loop
        if self.executor is None:
            self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="masterocr-decode")
        self.queue = asyncio.Queue(maxsize=self.max_queue)
        self.task = loop.create_task(self._run(), name="masterocr-batcher")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.task = None
        if self.executor is not None:  # its thread would outlive the app (and every later fork would copy it)
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None

    def submit(self, tensors: list[torch.Tensor], attention: bool) -> list[asyncio.Future]:
        """Queue all tensors of one request, or none: 503 when the queue cannot take them all."""
        self.start()
        assert self.queue is not None and self.loop is not None
        if self.queue.qsize() + len(tensors) > self.max_queue:
            raise RequestError(
                503,
                f"server busy: {self.queue.qsize()} images queued (limit {self.max_queue}); retry shortly",
                headers={"Retry-After": "1"},
            )
        futures = []
        for t in tensors:  # no await in between: the size check above still holds
            fut = self.loop.create_future()
            self.queue.put_nowait(_Item(t, fut, attention))
            futures.append(fut)
        return futures

    async def _collect(self) -> list[_Item]:
        assert self.queue is not None and self.loop is not None
        items = [await self.queue.get()]
        deadline = self.loop.time() + self.max_wait
        while len(items) < self.max_batch:
            remaining = deadline - self.loop.time()
            try:
                if remaining <= 0:
                    items.append(self.queue.get_nowait())
                else:
                    items.append(await asyncio.wait_for(self.queue.get(), remaining))
            except (asyncio.QueueEmpty, asyncio.TimeoutError):
                break
        return [it for it in items if not it.future.done()]  # timed-out requests cancel their futures

    def _predict(self, batch: torch.Tensor, attention: bool) -> list[Prediction]:
        return self.recognizer.predict_tensors(batch, return_attention=attention)

    async def _run(self) -> None:
        assert self.loop is not None
        while True:
            items = await self._collect()
            if not items:
                continue
            attention = any(it.attention for it in items)
            try:
                batch = torch.stack([it.tensor for it in items])
                preds = await self.loop.run_in_executor(self.executor, self._predict, batch, attention)
            except asyncio.CancelledError:
                for it in items:
                    if not it.future.done():
                        it.future.cancel()
                raise
            except Exception as exc:  # a model failure fails this batch's requests, not the worker
                log.exception("batch of %d failed", len(items))
                for it in items:
                    if not it.future.done():
                        it.future.set_exception(exc)
                continue
            for it, pred in zip(items, preds):
                if not it.future.done():
                    it.future.set_result(pred)


def _weights_sha256(path: Path | None) -> str | None:
    """The weights file's SHA-256; for an exported ONNX folder, onnx_layout.folder_sha256 of its files."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir() and (path / META_FILE).is_file():
        return folder_sha256(path)
    return file_sha256(path) if path.is_file() else None


def _index_html() -> str:
    return resources.files("masterocr.infer").joinpath("static/index.html").read_text(encoding="utf-8")


def _pixel_count(data: bytes) -> int | None:
    """Width*height from the image header (nothing decoded); None when Pillow cannot open it."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
            return w * h
    except Exception:
        return None


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) from Content-Length before reading and again while reading."""
    length = request.headers.get("content-length")
    if length is not None:
        try:
            n = int(length)
        except ValueError:
            raise RequestError(400, f"bad Content-Length header {length!r}") from None
        if n > limit:
            raise RequestError(413, f"request body is {n} bytes, more than the limit of {limit}; send fewer images")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise RequestError(413, f"request body is more than the limit of {limit} bytes; send fewer images")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode_base64(value: Any, index: int) -> bytes:
    if not isinstance(value, str):
        raise RequestError(400, f"images[{index}] is not a string; send base64-encoded image files")
    if value.startswith("data:") and "," in value:  # data URL: data:image/png;base64,....
        value = value.split(",", 1)[1]
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, f"images[{index}] is not valid base64") from None


def create_app(
    recognizer: BaseRecognizer,
    *,
    max_batch: int = 32,
    max_wait_ms: float = 5.0,
    max_queue: int = 256,
    max_images_per_request: int = 64,
    max_request_bytes: int = 20 * MiB,
    max_pixels: int = MAX_PIXELS,
    request_timeout_s: float = 30.0,
) -> FastAPI:
    """The recognition service around `recognizer` (see the module docstring)."""
    batcher = Batcher(recognizer, max_batch, max_wait_ms, max_queue)
    cfg = recognizer.cfg
    weights_path = recognizer.weights_path
    model_info = {
        "config": cfg.to_dict(),
        "charset": {"keys": recognizer.charset.keys, "size": len(recognizer.charset.keys),
                    "case_sensitive": recognizer.charset.case_sensitive},
        "input": {"height": cfg.img_h, "width": cfg.img_w, "channels": cfg.in_channels,
                  "keep_ratio": cfg.keep_ratio},
        "attention_grid": {"height": cfg.img_h // 8, "width": cfg.img_w // 4},
        "checkpoint": str(weights_path) if weights_path else None,
        "variant": recognizer.variant,
        "sha256": _weights_sha256(weights_path),
        "parameters": recognizer.num_parameters,
        "device": str(recognizer.device),
        "backend": recognizer.backend,
        "attention_maps": recognizer.supports_attention,
        "serving": {"max_batch": max_batch, "max_wait_ms": max_wait_ms, "max_queue": max_queue,
                    "max_images_per_request": max_images_per_request, "max_request_bytes": max_request_bytes,
                    "max_pixels": max_pixels, "request_timeout_s": request_timeout_s},
    }
    page = _index_html()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="masterocr", version="1", lifespan=lifespan,
                  description="MASTER scene-text recognition: send word crops, get text, scores and attention.")
    app.state.batcher = batcher
    app.state.recognizer = recognizer

    def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
        return error(exc.status, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return error(422, "; ".join(parts) or "invalid request")

    def to_tensor(data: bytes, name: str) -> torch.Tensor:
        from masterocr.data.transforms import preprocess

        return preprocess(load_image(data, name=name, max_pixels=max_pixels),
                          cfg.img_h, cfg.img_w, cfg.in_channels, cfg.keep_ratio)

    async def read_images(request: Request) -> list[tuple[str, bytes]]:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("multipart/form-data", "application/json"):
            raise RequestError(415, f"unsupported content type {ctype or '(none)'!r}; send multipart/form-data "
                                    "with 'file' fields or application/json {\"images\": [base64, ...]}")
        body = await _read_body(request, max_request_bytes)
        images: list[tuple[str, bytes]] = []
        if ctype == "application/json":
            try:
                doc = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise RequestError(400, "body is not valid JSON; send {\"images\": [base64, ...]}") from None
            if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
                raise RequestError(400, "JSON body needs an \"images\" list of base64-encoded image files")
            raw = doc["images"]
            if len(raw) > max_images_per_request:
                raise RequestError(413, f"{len(raw)} images, more than the limit of {max_images_per_request} "
                                        "per request; split the request")
            images = [(f"images[{i}]", _decode_base64(v, i)) for i, v in enumerate(raw)]
        else:
            async def replay() -> dict:
                return {"type": "http.request", "body": body, "more_body": False}

            form_request = Request(request.scope, receive=replay)
            try:
                form = await form_request.form(max_files=max_images_per_request + 1, max_fields=1000,
                                               max_part_size=max_request_bytes)
            except StarletteHTTPException as exc:
                raise RequestError(400, f"malformed multipart body: {exc.detail}") from None
            except Exception as exc:
                raise RequestError(400, f"malformed multipart body: {exc}") from None
            try:
                files = form.getlist("file")
                if len(files) > max_images_per_request:
                    raise RequestError(413, f"{len(files)} images, more than the limit of {max_images_per_request}"
                                            " per request; split the request")
                for i, f in enumerate(files):
                    if isinstance(f, str):
                        raise RequestError(400, f"field 'file' #{i} is text, not a file upload")
                    images.append((f.filename or f"file[{i}]", await f.read()))
            finally:
                await form.close()
        if not images:
            raise RequestError(400, "no images: send one or more multipart 'file' fields or a non-empty "
                                    "JSON \"images\" list")
        for name, data in images:
            n = _pixel_count(data)
            if n is not None and n > max_pixels:
                raise RequestError(413, f"{name}: image has {n} pixels, more than the limit of {max_pixels}; "
                                        "shrink it")
        return images

    def preprocess_all(images: list[tuple[str, bytes]]) -> list[torch.Tensor | str]:
        out: list[torch.Tensor | str] = []
        for name, data in images:
            try:
                out.append(to_tensor(data, name))
            except (ImageError, UserError) as exc:
                out.append(str(exc))
            except Exception as exc:  # never let one odd file 500 the whole request
                out.append(f"{name}: cannot read image ({type(exc).__name__}: {exc})")
        return out

    @app.get("/healthz", summary="liveness")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/v1/model", summary="the loaded model: config, charset, input size, checkpoint and its sha256")
    async def model() -> dict:
        return model_info

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.post(
        "/v1/recognize",
        summary="recognize the text of one or more word images",
        response_model=None,
        responses={
            200: {"model": RecognizeResponse},
            400: {"model": ErrorResponse}, 413: {"model": ErrorResponse}, 415: {"model": ErrorResponse},
            503: {"model": ErrorResponse}, 504: {"model": ErrorResponse},
        },
        openapi_extra={"requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
            "application/json": {"schema": {"type": "object", "required": ["images"], "properties": {
                "images": {"type": "array", "items": {"type": "string", "format": "byte"}}}}},
        }}},
    )
    async def recognize(
        request: Request,
        attention: bool = Query(False, description="add per-character cross-attention maps (H/8 x W/4)"),
    ) -> JSONResponse:
        images = await read_images(request)
        prepared = await run_in_threadpool(preprocess_all, images)
        tensors = [p for p in prepared if isinstance(p, torch.Tensor)]
        # the ONNX backend has no attention output: its entries then carry "attention": null
        futures = batcher.submit(tensors, attention and recognizer.supports_attention) if tensors else []
        try:
            preds = await asyncio.wait_for(asyncio.gather(*futures), request_timeout_s) if futures else []
        except asyncio.TimeoutError:
            for f in futures:
                f.cancel()
            raise RequestError(504, f"recognition took longer than {request_timeout_s} s; retry later") from None
        except Exception:  # the model failed (logged by the worker): a JSON 500, the worker goes on
            raise RequestError(500, "internal error") from None
        results, it = [], iter(preds)
        for p in prepared:
            if isinstance(p, str):
                results.append({"text": None, "score": None, "char_scores": None, "error": p})
                continue
            pred = next(it)
            entry = {"text": pred.text, "score": pred.score, "char_scores": pred.char_scores}
            if attention:
                entry["attention"] = (
                    None if pred.attention is None else [[round(float(w), 5) for w in row] for row in pred.attention]
                )
            entry["error"] = None
            results.append(entry)
        return JSONResponse({"results": results})

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
    **kwargs: Any,
) -> None:
    """Load `checkpoint` (None = the shipped weights; UserError when absent) and serve it with uvicorn.

    `int8` (CPU) and `dtype` (bf16/fp16 on GPUs) are as in `Recognizer.from_checkpoint`; `backend="onnx"` serves
    a folder written by `masterocr export` (None: the shipped int8 graphs) on onnxruntime (faster on CPU at
    small batches, no attention maps);
    `threads` as in `load_recognizer`."""
    import uvicorn

    recognizer = load_recognizer(checkpoint, device, backend, int8, dtype, threads)
    app = create_app(recognizer, max_batch=max_batch, max_wait_ms=max_wait_ms, **kwargs)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding %s: the service has no authentication; anyone who can reach it can use it", host)
    uvicorn.run(app, host=host, port=port, log_level="info")
