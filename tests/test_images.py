"""load_image: every supported input kind and mode converts to the right RGB pixels; every broken input
raises ImageError naming the file."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from masterocr.data.images import ImageError, load_image
from masterocr.errors import UserError


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG with a valid IHDR chunk claiming width x height and no pixel data at all."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


# each builder writes its file and returns (file bytes or None for "do not write", expected)
def _gray16() -> bytes:
    ramp = np.linspace(0, 4000, 256).astype(np.uint16)[None].repeat(4, 0)
    img = Image.fromarray(ramp)
    assert img.mode == "I;16"
    return _encode(img, "PNG")


def _palette(transparent: bool) -> bytes:
    img = Image.new("P", (6, 6), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putpixel((1, 1), 1)
    return _encode(img, "PNG", transparency=0) if transparent else _encode(img, "PNG")


def _animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    return _encode(frames[0], fmt, save_all=True, append_images=frames[1:])


def _exif_rotated() -> bytes:
    img = Image.new("RGB", (40, 10), "white")
    exif = img.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    return _encode(img, "JPEG", exif=exif.tobytes())


def _truncated_jpeg() -> bytes:
    data = _encode(Image.effect_noise((120, 120), 60).convert("RGB"), "JPEG")
    return data[: len(data) // 2]


GOOD = {
    # name: (file bytes, expected size, {(x, y): expected RGB} with a per-channel tolerance)
    "rgb.png": (_encode(Image.new("RGB", (5, 3), (10, 20, 30)), "PNG"), (5, 3), {(0, 0): (10, 20, 30)}),
    "gray16.png": (
        _gray16(),
        (256, 4),
        {(0, 0): (0, 0, 0), (255, 0): (255, 255, 255), (128, 0): (128, 128, 128)},
    ),
    "cmyk.jpg": (_encode(Image.new("CMYK", (8, 8), (0, 255, 0, 0)), "JPEG"), (8, 8), {(4, 4): (255, 0, 255)}),
    "palette.png": (_palette(False), (6, 6), {(0, 0): (255, 0, 0), (1, 1): (0, 0, 255)}),
    "palette_transparent.png": (_palette(True), (6, 6), {(0, 0): (255, 255, 255), (1, 1): (0, 0, 255)}),
    "rgba.png": (
        _encode(Image.new("RGBA", (4, 4), (0, 0, 0, 0)), "PNG"),
        (4, 4),
        {(0, 0): (255, 255, 255)},
    ),
    "half_alpha.png": (
        _encode(Image.new("RGBA", (4, 4), (0, 0, 0, 128)), "PNG"),
        (4, 4),
        {(0, 0): (127, 127, 127)},
    ),
    "la.png": (_encode(Image.new("LA", (4, 4), (0, 0)), "PNG"), (4, 4), {(0, 0): (255, 255, 255)}),
    "onebit.png": (_encode(Image.new("1", (7, 2), 1), "PNG"), (7, 2), {(0, 0): (255, 255, 255)}),
    "float.tif": (_encode(Image.new("F", (3, 3), 0.5), "TIFF"), (3, 3), {(1, 1): (128, 128, 128)}),
    "animated.gif": (_animated("GIF"), (8, 8), {(1, 1): (255, 0, 0)}),
    "animated.tif": (_animated("TIFF"), (8, 8), {(1, 1): (255, 0, 0)}),
    "exif6.jpg": (_exif_rotated(), (10, 40), {(5, 20): (255, 255, 255)}),
    "one.png": (_encode(Image.new("L", (1, 1), 77), "PNG"), (1, 1), {(0, 0): (77, 77, 77)}),
    "tall.png": (_encode(Image.new("L", (1, 4000), 0), "PNG"), (1, 4000), {(0, 3999): (0, 0, 0)}),
    "wide.png": (_encode(Image.new("L", (4000, 1), 255), "PNG"), (4000, 1), {(3999, 0): (255, 255, 255)}),
    "no_extension": (_encode(Image.new("RGB", (2, 2), (1, 2, 3)), "PNG"), (2, 2), {(1, 1): (1, 2, 3)}),
}

BAD = {
    # name: (file bytes or None for a missing file, words the message must contain)
    "missing.png": (None, "not found"),
    "empty.png": (b"", "empty"),
    "truncated.jpg": (_truncated_jpeg(), "truncated"),
    "notes.txt": (b"this is a text file, not an image\n", "not an image"),
    "garbage.png": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "image"),
    "zero_width.png": (_png_header(0, 10), "image"),
    "bomb.png": (_png_header(5000, 5000), "max_pixels"),
    "huge_bomb.png": (_png_header(30000, 30000), "max_pixels"),  # beyond Pillow's own limit too
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_files_convert_to_rgb(tmp_path: Path, name: str) -> None:
    data, size, pixels = GOOD[name]
    path = tmp_path / name
    path.write_bytes(data)
    for source in (path, str(path), data):
        img = load_image(source)
        assert img.mode == "RGB"
        assert img.size == size
        for xy, rgb in pixels.items():
            got = img.getpixel(xy)
            assert all(abs(g - e) <= 3 for g, e in zip(got, rgb, strict=True)), (name, xy, got, rgb)


def test_gray16_uses_the_full_output_range(tmp_path: Path) -> None:
    arr = np.asarray(load_image(_gray16()))
    assert arr.min() == 0 and arr.max() == 255
    assert len(np.unique(arr)) > 200  # scaled, not clipped to a few values


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_raise_image_error_naming_the_file(tmp_path: Path, name: str) -> None:
    data, words = BAD[name]
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning (or any other) may leak out
        with pytest.raises(ImageError) as info:
            load_image(path, max_pixels=1_000_000)
    message = str(info.value)
    assert name in message and words in message
    assert "\n" not in message
    assert isinstance(info.value, UserError)


def test_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    # a real 2000x2000 image: refused under a small limit, accepted under a large one
    path = tmp_path / "big.png"
    Image.new("L", (2000, 2000), 0).save(path)
    with pytest.raises(ImageError, match=r"2000x2000 = 4000000 pixels, more than the limit of 1000000"):
        load_image(path, max_pixels=1_000_000)
    assert load_image(path, max_pixels=5_000_000).size == (2000, 2000)


def test_directory_and_bad_types(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)
    with pytest.raises(ImageError, match="int"):
        load_image(42)
    with pytest.raises(ImageError, match="upload.png"):
        load_image(b"", name="upload.png")


ARRAYS = {
    "uint8 gray": (np.full((3, 5), 200, np.uint8), (5, 3), (200, 200, 200)),
    "uint8 HxWx1": (np.full((3, 5, 1), 9, np.uint8), (5, 3), (9, 9, 9)),
    "uint8 rgb": (np.tile(np.array([1, 2, 3], np.uint8), (2, 2, 1)), (2, 2), (1, 2, 3)),
    "uint8 rgba transparent": (np.zeros((2, 2, 4), np.uint8), (2, 2), (255, 255, 255)),
    "uint16 by range": (np.array([[0, 1000], [2000, 4000]], np.uint16), (2, 2), (0, 0, 0)),
    "float unit": (np.full((2, 3), 1.0, np.float32), (3, 2), (255, 255, 255)),
    "float half rgb": (np.full((2, 2, 3), 0.5, np.float64), (2, 2), (128, 128, 128)),
    "float with nan": (np.array([[np.nan, 1.0]], np.float32), (2, 1), (0, 0, 0)),
    "bool": (np.ones((2, 2), bool), (2, 2), (255, 255, 255)),
}


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_numpy_arrays(name: str) -> None:
    arr, size, first = ARRAYS[name]
    img = load_image(arr)
    assert img.mode == "RGB" and img.size == size
    assert img.getpixel((0, 0)) == first


def test_uint16_array_scales_to_full_range() -> None:
    img = load_image(np.array([[0, 1000], [2000, 4000]], np.uint16))
    assert img.getpixel((1, 1)) == (255, 255, 255)
    assert img.getpixel((0, 1)) == (128, 128, 128)


@pytest.mark.parametrize(
    "arr", [np.zeros((0, 5), np.uint8), np.zeros((4, 0, 3), np.uint8), np.zeros((2, 2, 2)), np.zeros((2,))]
)
def test_bad_arrays(arr: np.ndarray) -> None:
    with pytest.raises(ImageError, match="frame.npy"):
        load_image(arr, name="frame.npy")


def test_pil_inputs() -> None:
    with pytest.raises(ImageError, match="zero size"):
        load_image(Image.new("RGB", (0, 0)), name="blank")
    with pytest.raises(ImageError, match="limit"):
        load_image(Image.new("L", (100, 100)), max_pixels=100)
    img = Image.new("I;16", (3, 1))
    img.putdata([0, 30000, 60000])
    out = load_image(img)
    assert [out.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]
    # a lazily opened file with an EXIF orientation is turned upright
    opened = Image.open(io.BytesIO(_exif_rotated()))
    assert load_image(opened).size == (10, 40)
    # the caller's image is not modified
    rgba = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    load_image(rgba)
    assert rgba.mode == "RGBA"
