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
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import Request
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from masterocr.data.images import MAX_PIXELS
from masterocr.errors import UserError

log = logging.getLogger(__name__)

MiB = 1024 * 1024
CONTENT_TYPES = ("multipart/form-data", "application/json")
MAX_JSON_DEPTH = 16  # {"images": [...]} needs 2
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


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
                 **_: Any) -> None:
    """UserError for a serving limit out of range; `serve` calls it before loading the model."""
    for name, value in (("max_images_per_request", max_images_per_request), ("max_pixels", max_pixels),
                        ("max_pixels_in_flight", max_pixels_in_flight), ("max_connections", max_connections)):
        if value is not None and value < 1:
            raise UserError(f"{name} must be at least 1, got {value}; pass --{name.replace('_', '-')} N")
    for name, value in (("body_timeout_s", body_timeout_s), ("chunk_timeout_s", chunk_timeout_s)):
        if not value > 0:
            raise UserError(f"{name} must be more than 0, got {value}")


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


def json_depth(body: bytes) -> int:
    """The deepest nesting of [ and { in a JSON text, brackets inside strings not counted; nothing parsed.

    Strings go first (one regex pass), then every byte but the brackets (bytes.translate), and numpy sums the
    rest, so a 20 MB body of brackets costs milliseconds. An unterminated string leaves its brackets counted:
    the depth can only be overstated for a body json.loads refuses anyway."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    opening = brackets.count(b"[") + brackets.count(b"{")
    if opening <= 1:
        return opening
    codes = np.frombuffer(brackets, dtype=np.uint8)
    # "[" (0x5B) and "{" (0x7B) have bit 1 set, "]" (0x5D) and "}" (0x7D) have it clear: +1 or -1 per byte
    steps = ((codes & 2) >> 1).astype(np.int8) * 2 - 1
    return int(np.cumsum(steps, dtype=np.int32).max())


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
