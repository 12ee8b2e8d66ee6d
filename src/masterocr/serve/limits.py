"""Reading a recognition request: its body, its images (multipart or base64 JSON) and the limits on both.

Every limit is checked before the work it bounds: the body size from Content-Length before reading and again
while reading, the image count before decoding any base64 or form file, the pixel count from the image header
before any pixel is decoded.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import re
import socket
import sys
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from masterocr.data.images import MAX_PIXELS
from masterocr.errors import UserError
from masterocr.files import json_depth
from masterocr.limits import (
    MAX_BATCH,
    MAX_CONNECTIONS,
    MAX_IMAGES_PER_REQUEST,
    MAX_PIXELS_IN_FLIGHT,
    MAX_TIMEOUT_S,
    MAX_WAIT_MS,
    PORTS,
    check_count,
)

log = logging.getLogger(__name__)

MiB = 1024 * 1024
CONTENT_TYPES = ("multipart/form-data", "application/json")
MAX_JSON_DEPTH = 16  # {"images": [...]} needs 2


class RequestError(Exception):
    """A malformed request: answered with `status` and `{"error": message}`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


@dataclass(frozen=True)
class RequestLimits:
    """What one request may carry."""

    max_images_per_request: int = 64
    max_request_bytes: int = 20 * MiB
    max_pixels: int = MAX_PIXELS  # per image, from its header


def check_limits(max_images_per_request: int = 1, max_pixels: int = 1, max_pixels_in_flight: int = 1,
                 body_timeout_s: float = 1.0, chunk_timeout_s: float = 1.0, max_connections: int | None = None,
                 max_batch: int = 1, max_wait_ms: float = 0.0, port: int | None = None,
                 header_timeout_s: float = 1.0, host: str | None = None, **_: Any) -> None:
    """UserError for a serving limit out of its range (masterocr.limits); `serve` calls it before loading the
    model, `create_app` before building the app."""
    for name, value, hi in (("max_images_per_request", max_images_per_request, MAX_IMAGES_PER_REQUEST),
                            ("max_pixels", max_pixels, MAX_PIXELS_IN_FLIGHT),
                            ("max_pixels_in_flight", max_pixels_in_flight, MAX_PIXELS_IN_FLIGHT),
                            ("max_connections", max_connections, MAX_CONNECTIONS), ("max_batch", max_batch, MAX_BATCH)):
        flag = f"--{name.replace('_per_request', '').replace('_', '-')}"
        if value is not None and not 1 <= value:
            raise UserError(f"{name} must be at least 1, got {value}; pass {flag} N")
        if value is not None and value > hi:
            raise UserError(f"{name} must be at most {hi}, got {value}; pass {flag} N")
    for name, value in (("body_timeout_s", body_timeout_s), ("chunk_timeout_s", chunk_timeout_s),
                        ("header_timeout_s", header_timeout_s)):
        if not 0 < value <= MAX_TIMEOUT_S:
            raise UserError(f"{name} must be more than 0 and at most {MAX_TIMEOUT_S:g} seconds, got {value}")
    if not 0 <= max_wait_ms <= MAX_WAIT_MS:
        raise UserError(f"max_wait_ms must be from 0 to {MAX_WAIT_MS:g}, got {max_wait_ms}")
    if port is not None:
        check_count("--port", port, *PORTS, fix="a TCP port (0: any free one)")
    if host is not None:
        try:
            socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise UserError(f"--host {host!r} is not an address of this machine ({exc}); e.g. 127.0.0.1") from None


def pixel_count(data: bytes) -> int | None:
    """Width*height from the image header (nothing decoded); None when Pillow cannot open it."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
            return w * h
    except Image.DecompressionBombError as exc:  # Pillow's own limit, far above ours: its message has the count
        found = re.search(r"\((\d+) pixels\)", str(exc))
        return int(found.group(1)) if found else sys.maxsize
    except Exception:
        return None


async def read_body(request: Request, limit: int) -> bytes:
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
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise RequestError(413, f"request body is more than the limit of {limit} bytes; send fewer images")
            chunks.append(chunk)
    except ClientDisconnect:
        # any client can do this at will: one INFO line, never a traceback at ERROR (a log flood)
        client = request.client.host if request.client else "?"
        log.info("client %s disconnected after sending %d of %s body bytes", client, total, length or "?")
        raise RequestError(400, "client disconnected before sending the whole body") from None
    return b"".join(chunks)


def decode_base64(value: Any, index: int) -> bytes:
    """The bytes of `images[index]` of a JSON request: plain base64 or a data URL."""
    if not isinstance(value, str):
        raise RequestError(400, f"images[{index}] is not a string; send base64-encoded image files")
    if value.startswith("data:") and "," in value:  # data URL: data:image/png;base64,....
        value = value.split(",", 1)[1]
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, f"images[{index}] is not valid base64") from None


def _check_count(count: int, limits: RequestLimits) -> None:
    if count > limits.max_images_per_request:
        raise RequestError(413, f"{count} images, more than the limit of {limits.max_images_per_request} "
                                "per request; split the request")


def json_images(body: bytes, limits: RequestLimits) -> list[tuple[str, bytes]]:
    """(name, bytes) of each image of a JSON body `{"images": [base64, ...]}`, its nesting bounded first."""
    depth = json_depth(body)
    if depth > MAX_JSON_DEPTH:  # json.loads recurses per level: a deep enough body would end in RecursionError
        raise RequestError(400, f"JSON body is nested {depth} levels deep, more than the limit of "
                                f"{MAX_JSON_DEPTH}; send {{\"images\": [base64, ...]}}")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise RequestError(400, "body is not valid JSON; send {\"images\": [base64, ...]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise RequestError(400, "JSON body needs an \"images\" list of base64-encoded image files")
    raw = doc["images"]
    _check_count(len(raw), limits)
    return [(f"images[{i}]", decode_base64(v, i)) for i, v in enumerate(raw)]


async def multipart_images(request: Request, body: bytes, limits: RequestLimits) -> list[tuple[str, bytes]]:
    """(name, bytes) of each 'file' field of a multipart body already read into `body`."""

    async def replay() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    form_request = Request(request.scope, receive=replay)
    try:
        form = await form_request.form(max_files=limits.max_images_per_request + 1, max_fields=1000,
                                       max_part_size=limits.max_request_bytes)
    except StarletteHTTPException as exc:
        raise RequestError(400, f"malformed multipart body: {exc.detail}") from None
    except Exception as exc:
        raise RequestError(400, f"malformed multipart body: {exc}") from None
    images: list[tuple[str, bytes]] = []
    try:
        files = form.getlist("file")
        _check_count(len(files), limits)
        for i, f in enumerate(files):
            if isinstance(f, str):
                raise RequestError(400, f"field 'file' #{i} is text, not a file upload")
            images.append((f.filename or f"file[{i}]", await f.read()))
    finally:
        await form.close()
    return images


def check_pixels(images: list[tuple[str, bytes]], max_pixels: int) -> int:
    """The pixels all images' headers claim; 413 for the first one claiming more than `max_pixels`."""
    total = 0
    for name, data in images:
        n = pixel_count(data)
        if n is not None and n > max_pixels:
            raise RequestError(413, f"{name}: image has {n} pixels, more than the limit of {max_pixels}; shrink it")
        total += n or 0  # an image Pillow cannot open is never decoded
    return total


async def read_images(request: Request, limits: RequestLimits) -> tuple[list[tuple[str, bytes]], int]:
    """The images of a recognition request as (name, bytes) and the pixels they claim in all, every limit
    checked; RequestError otherwise."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in CONTENT_TYPES:
        raise RequestError(415, f"unsupported content type {ctype or '(none)'!r}; send multipart/form-data "
                                "with 'file' fields or application/json {\"images\": [base64, ...]}")
    body = await read_body(request, limits.max_request_bytes)
    if ctype == "application/json":
        images = json_images(body, limits)
    else:
        images = await multipart_images(request, body, limits)
    if not images:
        raise RequestError(400, "no images: send one or more multipart 'file' fields or a non-empty "
                                "JSON \"images\" list")
    return images, check_pixels(images, limits.max_pixels)
