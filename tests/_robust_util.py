"""Builders of bad and unusual input files shared by the robustness tests (not a test module)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from conftest import render_word
from PIL import Image


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_with_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height (8-bit RGB) with a few bytes of pixel data: nothing to decode."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 16))
            + png_chunk(b"IEND", b""))


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def word(text: str = "cat") -> Image.Image:
    return render_word(text)


def _gif_animated() -> bytes:
    frames = [word("one").convert("P"), word("two").convert("P").resize(word("one").size)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _tiff_multipage() -> bytes:
    return encode(word("page"), "TIFF", save_all=True, append_images=[word("two").resize(word("page").size)])


def _exif_rotated() -> bytes:
    img = word("rot")  # stored landscape, EXIF says "rotate 90": the loaded image is portrait
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(img, "JPEG", exif=exif.tobytes())


def _png16() -> bytes:
    arr = (np.asarray(word("deep").convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    return encode(Image.fromarray(arr), "PNG")


def _noise_jpeg() -> bytes:
    return encode(Image.effect_noise((64, 64), 60).convert("RGB"), "JPEG")


# name -> (file bytes, None if it must be read, else a fragment the error message must contain)
BAD_FILES: dict[str, tuple[bytes, str | None]] = {
    "empty.png": (b"", "empty (0 bytes)"),
    "truncated.png": (encode(word(), "PNG")[:70], "truncated or corrupt"),
    "truncated.jpg": (_noise_jpeg()[:-300], "truncated or corrupt"),
    "text.png": (b"this is not an image, just some text\n" * 5, "not an image"),
    "zero_width.png": (png_with_header(0, 10), "not an image"),  # Pillow refuses a 0-width header itself
    "bomb.png": (png_with_header(30000, 30000), "more than 40000000 pixels"),
}
GOOD_FILES: dict[str, bytes] = {
    "one_pixel.png": encode(Image.new("RGB", (1, 1), "white"), "PNG"),
    "tall_1x4000.png": encode(Image.new("L", (1, 4000), 255), "PNG"),
    "wide_4000x1.png": encode(Image.new("L", (4000, 1), 0), "PNG"),
    "deep16.png": _png16(),
    "palette.png": encode(word("pal").convert("P"), "PNG"),
    "cmyk.jpg": encode(word("cmyk").convert("CMYK"), "JPEG"),
    "rgba.png": encode(word("alpha").convert("RGBA"), "PNG"),
    "animated.gif": _gif_animated(),
    "multipage.tif": _tiff_multipage(),
    "exif_rotated.jpg": _exif_rotated(),
    "word.png": encode(word("cat"), "PNG"),
}


def write_files(folder: Path, files: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in files.items():
        (folder / name).write_bytes(value[0] if isinstance(value, tuple) else value)
    return folder


def tiny_weights(path: Path, max_len: int = 4) -> Path:
    """Untrained tiny model as .safetensors: garbage text, but deterministic and fast."""
    import torch

    from masterocr.charset import Charset
    from masterocr.formats.weights import save_weights
    from masterocr.model import build_model
    from masterocr.model.presets import get_preset

    torch.manual_seed(0)
    charset = Charset.default()
    model = build_model(get_preset("tiny", max_len=max_len), charset)  # short decode: fast on a busy CPU
    save_weights(model.state_dict(), model.cfg.to_dict(), charset.keys, path, dtype=None)
    return path


def legacy_state_dict(state: dict) -> dict:
    """The same weights keyed as masterocr 0.1.0 saved them: separate q/k/v projections in every attention."""
    legacy = {}
    for key, value in state.items():
        stem, _, kind = key.rpartition(".")
        if stem.endswith(".qkv"):  # self-attention of decoder and encoder layers
            names = ("q_proj", "k_proj", "v_proj")
        elif stem.endswith(".kv_proj"):
            names = ("k_proj", "v_proj")
        else:
            legacy[key] = value.clone()
            continue
        base = stem.rpartition(".")[0]
        for name, part in zip(names, value.chunk(len(names))):
            legacy[f"{base}.{name}.{kind}"] = part.clone()
    return legacy
