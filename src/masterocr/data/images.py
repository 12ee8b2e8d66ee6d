"""Load any image the user can throw at us (path, bytes, PIL image, numpy array) as an 8-bit RGB PIL image.

Every failure becomes an `ImageError` with a one-line message that names the file and says what to do;
no raw Pillow exception escapes. Oversized images are refused from the header, before pixels are decoded.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from masterocr.errors import UserError

MAX_PIXELS = 40_000_000

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_WIDE_GRAY_MODES = {"I", "F", "I;16", "I;16L", "I;16B", "I;16N"}
_pillow_limit_lock = threading.Lock()


class ImageError(UserError):
    """An image that cannot be read or used; the message names the file and the reason."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _bomb_message(name: str, width: int, height: int, max_pixels: int) -> str:
    return (
        f"{name}: image is {width}x{height} = {width * height} pixels, more than the limit of {max_pixels}; "
        f"shrink the image or pass a larger max_pixels if you trust it"
    )


def _check_size(name: str, size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError(f"{name}: image has zero size ({width}x{height}); remove it from the data")
    if width * height > max_pixels:
        raise ImageError(_bomb_message(name, width, height, max_pixels))


def _allow_pillow_limit(max_pixels: int) -> None:
    # Pillow raises its own DecompressionBombError from Image.open() above 2*MAX_IMAGE_PIXELS. Our check
    # is the one that decides, so only ever raise Pillow's limit up to ours (never lower a user's setting).
    with _pillow_limit_lock:
        if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
            Image.MAX_IMAGE_PIXELS = max_pixels


def _scale_to_uint8(arr: np.ndarray) -> np.ndarray:
    """Map wide-range data (16-bit, int32, float) to 0..255 by its actual range, not by clipping.

    Floats within [0, 1] are treated as unit intensities. Otherwise the range [min(0, lo), hi] is stretched
    to 0..255, so a 16-bit scan using values 0..4000 becomes a full-contrast 8-bit image and 0 stays black.
    """
    is_float = np.issubdtype(arr.dtype, np.floating)
    arr = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if arr.size == 0:
        return arr.astype(np.uint8)
    lo, hi = float(arr.min()), float(arr.max())
    if is_float and lo >= 0.0 and hi <= 1.0:
        return np.round(arr * 255.0).astype(np.uint8)
    lo = min(0.0, lo)
    if hi <= lo:  # constant image
        return np.clip(arr, 0, 255).astype(np.uint8)
    return np.round((arr - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _composite_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def to_rgb(img: Image.Image, name: str = "<image>") -> Image.Image:
    """Convert a decoded PIL image of any mode to 8-bit RGB (transparent parts become white)."""
    mode = img.mode
    try:
        if mode == "RGB":
            return img.copy()
        if mode in _WIDE_GRAY_MODES:
            arr = _scale_to_uint8(np.asarray(img, dtype=np.float32 if mode == "F" else np.int64))
            return Image.fromarray(arr).convert("RGB")
        if mode in _ALPHA_MODES or "transparency" in img.info:
            return _composite_on_white(img)
        return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, HSV, ...
    except Exception as exc:  # LAB and other exotic modes Pillow cannot convert
        raise ImageError(
            f"{name}: cannot convert image mode {mode} to RGB ({_one_line(exc)}); re-save it as PNG or JPEG"
        ) from exc


def _from_array(arr: np.ndarray, name: str) -> Image.Image:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageError(f"{name}: unsupported array shape {arr.shape}; give HxW, HxWx1, HxWx3 or HxWx4")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(
            f"{name}: image has zero size ({arr.shape[1]}x{arr.shape[0]}); give a non-empty array"
        )
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype != np.uint8:
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise ImageError(
                f"{name}: unsupported array dtype {arr.dtype}; give uint8, uint16 or float in [0,1]"
            )
        if arr.ndim == 3 and arr.shape[2] == 4:
            # scale colour by its own range, but alpha by its dtype range (it is a mask, not an intensity)
            alpha = arr[:, :, 3].astype(np.float64)
            full = 1.0 if np.issubdtype(arr.dtype, np.floating) else float(np.iinfo(arr.dtype).max)
            alpha = np.round(np.clip(alpha / full, 0.0, 1.0) * 255.0).astype(np.uint8)
            arr = np.dstack([_scale_to_uint8(arr[:, :, :3]), alpha])
        else:
            arr = _scale_to_uint8(arr)
    # uint8 HxW / HxWx3 / HxWx4 map to L / RGB / RGBA
    return to_rgb(Image.fromarray(np.ascontiguousarray(arr)), name)


def _decode(fp: Any, name: str, max_pixels: int) -> Image.Image:
    """Open, size-check, decode the first frame, apply EXIF orientation and convert to RGB."""
    _allow_pillow_limit(max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fp) as img:
                _check_size(name, img.size, max_pixels)  # header only: nothing decoded yet
                img.seek(0)  # animated GIF/TIFF/WebP: the first frame
                img.load()
                try:
                    oriented = ImageOps.exif_transpose(img)
                except Exception:  # a corrupt EXIF block should not cost us the image
                    oriented = img
                return to_rgb(oriented if oriented is not None else img, name)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own check in open() fired first; its limit is >= ours (see _allow_pillow_limit)
        raise ImageError(
            f"{name}: image has more than {max_pixels} pixels, the limit; "
            f"shrink the image or pass a larger max_pixels if you trust it"
        ) from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageError(
            f"{name}: not an image (or a format Pillow cannot read); remove or convert it"
        ) from exc
    except MemoryError as exc:
        raise ImageError(f"{name}: out of memory decoding the image; shrink it") from exc
    except Exception as exc:  # truncated/corrupt data: OSError, SyntaxError, ValueError, EOFError, ...
        raise ImageError(
            f"{name}: image is truncated or corrupt ({_one_line(exc)}); re-export it or remove it"
        ) from exc


def load_image(source: Any, name: str | None = None, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Return `source` as an 8-bit RGB PIL image.

    `source` may be a path (str or Path), raw encoded bytes, a PIL image, or a numpy array (HxW, HxWx1,
    HxWx3, HxWx4; uint8, uint16/other ints scaled by their range, float in [0, 1]). `name` is used in error
    messages (defaults to the path). Images with more than `max_pixels` pixels are refused before decoding.
    Raises ImageError (a UserError) for anything unreadable.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = name or str(path)
        try:
            size = path.stat().st_size
        except FileNotFoundError as exc:
            raise ImageError(f"{name}: file not found; check the path") from exc
        except OSError as exc:
            raise ImageError(f"{name}: cannot read file ({exc.strerror}); check the path") from exc
        if path.is_dir():
            raise ImageError(f"{name}: is a directory, not an image file; give a file")
        if size == 0:
            raise ImageError(f"{name}: file is empty (0 bytes); re-export it or remove it")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageError(f"{name}: cannot read file ({exc.strerror}); check its permissions") from exc
        return _decode(io.BytesIO(data), name, max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        name = name or "<bytes>"
        if len(source) == 0:
            raise ImageError(f"{name}: image data is empty (0 bytes); send the image file's contents")
        return _decode(io.BytesIO(bytes(source)), name, max_pixels)
    if isinstance(source, Image.Image):
        name = name or "<image>"
        _check_size(name, source.size, max_pixels)
        try:
            source.load()
            if source.format is not None:  # straight from Image.open: stored orientation, apply EXIF
                source = ImageOps.exif_transpose(source) or source
        except Exception as exc:
            raise ImageError(
                f"{name}: image is truncated or corrupt ({_one_line(exc)}); re-export it"
            ) from exc
        return to_rgb(source, name)
    if isinstance(source, np.ndarray):
        name = name or "<array>"
        if source.ndim >= 2 and source.shape[0] * source.shape[1] > max_pixels:
            raise ImageError(_bomb_message(name, source.shape[1], source.shape[0], max_pixels))
        return _from_array(source, name)
    raise ImageError(
        f"{name or '<input>'}: cannot read an image from {type(source).__name__}; "
        f"give a path, bytes, a PIL image or a numpy array"
    )
