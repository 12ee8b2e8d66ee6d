"""`POST /v1/page` (one page image in, its lines in reading order out) and `GET /page`, the page that shows them.

The route reads its body and image under the recognizer's limits (serve/limits.py: body bytes, pixels from the
header before decoding, the shared pixel budget), reads one page at a time (a page is seconds of CPU) and gives
up with 504 past the request timeout. The page reader (detector + the page's default model) is loaded on the
first request; without the page extra the route answers 501 naming what to install.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from masterocr.errors import UserError
from masterocr.memory import release_memory
from masterocr.serve.budget import PixelBudget
from masterocr.serve.limits import RequestError, RequestLimits, read_images

log = logging.getLogger(__name__)


class PageService:
    """One PageReader, built on first use, reading one page at a time."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads
        self._reader = None
        self._load_lock = threading.Lock()
        self.busy = asyncio.Lock()

    def reader(self):
        with self._load_lock:
            if self._reader is None:
                from masterocr.page import PageReader

                self._reader = PageReader(threads=self.threads)  # page.reader's default model
            return self._reader

    def read(self, name: str, data: bytes, max_pixels: int) -> dict:
        from masterocr.data.images import load_image

        try:
            image = load_image(data, name=name, max_pixels=max_pixels)
            result = self.reader().read_image(image, name=name)
        finally:
            release_memory()
        out = result.to_json()
        out["text"] = result.text
        out["seconds"] = round(result.seconds, 3)
        return out


def add_page_routes(app: FastAPI, budget: PixelBudget, limits: RequestLimits, request_timeout_s: float,
                    service: PageService | None = None) -> None:
    """Add POST /v1/page and GET /page to `app`."""
    service = service or PageService()
    one_image = RequestLimits(1, limits.max_request_bytes, limits.max_pixels)
    html = resources.files("masterocr.serve").joinpath("static/page.html").read_text(encoding="utf-8")

    @app.get("/page", response_class=HTMLResponse, include_in_schema=False)
    async def page_html() -> HTMLResponse:
        return HTMLResponse(html)

    @app.post("/v1/page", summary="find and read the text lines of one page image, in reading order",
              response_model=None)
    async def read_page(request: Request) -> JSONResponse:
        [(name, data)], pixels = await read_images(request, one_image)
        try:
            await run_in_threadpool(service.reader)
        except UserError as exc:  # the page extra is missing: the message names it
            raise RequestError(501, str(exc)) from None
        try:
            await asyncio.wait_for(service.busy.acquire(), request_timeout_s)
        except asyncio.TimeoutError:
            raise RequestError(503, "another page is being read; retry later", {"Retry-After": "5"}) from None
        async with budget.reserve(pixels):
            task = asyncio.ensure_future(run_in_threadpool(service.read, name, data, limits.max_pixels))
            # the next page starts when this one has finished, even after its client was answered 504
            task.add_done_callback(lambda _: service.busy.release())
            try:
                result = await asyncio.wait_for(asyncio.shield(task), request_timeout_s)
            except asyncio.TimeoutError:
                raise RequestError(504, f"reading the page took longer than {request_timeout_s} s; send a "
                                        "smaller page") from None
            except UserError as exc:
                raise RequestError(400, str(exc)) from None
        return JSONResponse(result)
