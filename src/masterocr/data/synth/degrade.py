"""Camera and scanner effects on a finished synthetic crop: light, occlusion, resolution, blur, noise, JPEG."""

from __future__ import annotations

import io
import math
import random

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

__all__ = ["LazyGenerator", "degrade"]

_BILINEAR = Image.Resampling.BILINEAR


class LazyGenerator:
    """A NumPy Generator created on first use (most samples need no NumPy randomness)."""

    __slots__ = ("seed", "gen")

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.gen = None

    def __getattr__(self, name: str):
        if self.gen is None:
            self.gen = np.random.default_rng(self.seed)
        return getattr(self.gen, name)


def degrade(
    img: Image.Image, rng: random.Random, nrng: np.random.Generator, height: int, strength: float = 1.0
) -> Image.Image:
    """Camera and scanner effects on the final crop: light, occlusion, resolution, blur, noise, JPEG.

    At most two of the strong effects (low resolution, blur, heavy noise, low-quality JPEG) hit one crop,
    so that it stays legible; `strength` < 1 (low-contrast text) makes them rarer and weaker.
    """
    w, h = img.size
    strong = 0
    if rng.random() < 0.15:  # uneven illumination
        a = rng.uniform(0, 2 * math.pi)
        t = np.linspace(-1, 1, w, dtype=np.float32)[None, :] * math.cos(a)
        t = t + np.linspace(-1, 1, h, dtype=np.float32)[:, None] * math.sin(a)
        arr = np.asarray(img, dtype=np.float32) * (1.0 + rng.uniform(0.1, 0.35) * t)[:, :, None]
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.05:  # an occluding stroke (wire, scratch, pen line)
        col = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        y0, y1 = rng.uniform(0, h), rng.uniform(0, h)
        ImageDraw.Draw(img).line([(rng.uniform(-5, w * 0.3), y0), (rng.uniform(w * 0.7, w + 5), y1)], fill=col)
    if rng.random() < 0.12:
        img = img.convert("L").convert("RGB")
    if rng.random() < 0.1 * strength:  # low resolution, upscaled
        f = rng.uniform(0.45, 0.75)
        small = img.resize((max(1, int(w * f)), max(1, int(h * f))), _BILINEAR)
        img = small.resize((w, h), rng.choice((_BILINEAR, Image.Resampling.NEAREST, _BILINEAR)))
        strong += 1
    if rng.random() < 0.3 * strength:  # defocus: one box-blur pass (3x cheaper than GaussianBlur)
        radius = rng.uniform(0.3, 1.0) * strength * height / 32.0
        img = img.filter(ImageFilter.BoxBlur(radius))
        strong += radius > 0.6
    if rng.random() < 0.35:  # sensor noise, grey (luminance) or per channel
        sigma = rng.uniform(2.0, 12.0 if strong < 2 else 6.0) * strength
        strong += sigma > 8.0
        if rng.random() < 0.5:
            n = nrng.standard_normal((h, w), dtype=np.float32) * sigma + 128.5
            grey = Image.fromarray(np.clip(n, 0, 255).astype(np.uint8), "L").convert("RGB")
            img = ImageChops.add(img, grey, 1.0, -128)
        else:
            arr = np.asarray(img, dtype=np.float32) + nrng.standard_normal((h, w, 3), dtype=np.float32) * sigma
            img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.3:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=rng.randint(20 if strong < 2 else 50, 90))
        img = Image.open(buf)
        img.load()
    return img


