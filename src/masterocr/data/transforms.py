"""Image -> model tensor (resize + normalise; `ModelInput`, the rule per model) and training-time augmentation,
with Pillow and NumPy only."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from masterocr.data.geometry import homography
from masterocr.data.images import to_rgb
from masterocr.errors import UserError
from masterocr.model.backbone import STRIDE

# keep_ratio pads the right side with 0.0 in normalised space, i.e. mid-grey (pixel 127.5), the value a
# zero-mean network sees as "nothing"; the model learns to ignore it either way.
PAD_VALUE = 0.0


def preprocess(
    img: Image.Image, height: int, width: int, channels: int = 3, keep_ratio: bool = False
) -> torch.Tensor:
    """Resize and normalise an image to a float32 tensor of shape (channels, height, width).

    Pixel values become (x - 127.5) / 127.5, in [-1, 1]. `channels` 1 gives grayscale ("L"), 3 RGB.
    Default: plain bilinear resize to width x height, aspect not kept (the original MASTER's behaviour).
    `keep_ratio=True`: resize to `height` keeping the aspect ratio (at least 1 pixel wide) and pad the right
    with PAD_VALUE up to `width`; images relatively wider than width/height are squashed to width x height.
    """
    if channels not in (1, 3):
        raise UserError(f"in_channels must be 1 (grayscale) or 3 (RGB), got {channels}; fix the model config")
    if height < 1 or width < 1:
        raise UserError(f"image size must be positive, got height={height} width={width}; fix the config")
    if img.mode != "RGB":
        img = to_rgb(img)
    if channels == 1:
        img = img.convert("L")
    new_w = min(width, line_width(img, height)) if keep_ratio else width
    if img.size != (new_w, height):
        img = img.resize((new_w, height), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.float32)
    arr = (arr - 127.5) / 127.5
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    if new_w == width:
        return torch.from_numpy(np.ascontiguousarray(arr))
    out = torch.full((channels, height, width), PAD_VALUE, dtype=torch.float32)
    out[:, :, :new_w] = torch.from_numpy(arr)
    return out


def line_width(img: Image.Image, height: int) -> int:
    """The width of `img` resized to `height` keeping its aspect ratio (at least 1 px)."""
    w, h = img.size
    return max(1, round(w * height / h))


def preprocess_line(
    img: Image.Image, height: int, max_width: int, channels: int = 1, name: str = "image"
) -> torch.Tensor:
    """A text line for a variable-width model: resized to `height` keeping the aspect ratio, not padded,
    (channels, height, w) with w <= max_width. A line wider than that at this height is refused (one line
    naming it): reading it in pieces would need overlapping windows and a merge of their texts, which this
    model does not do."""
    w, h = img.size
    new_w = line_width(img, height)
    if new_w > max_width:
        raise UserError(
            f"{name}: {w}x{h} px is {new_w} px wide at the model's height {height}, over its maximum {max_width}; "
            "crop it into shorter lines"
        )
    return preprocess(img, height, new_w, channels)


def fit_line(img: Image.Image, height: int, max_width: int, channels: int = 1) -> torch.Tensor:
    """A training line for a variable-width model: as `preprocess_line`, but a line wider than max_width at
    this height is squeezed to max_width instead of refused (a training set keeps its longest lines)."""
    return preprocess(img, height, min(max_width, line_width(img, height)), channels)


def pad_batch(lines: list[torch.Tensor], stride: int = STRIDE) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (C, H, w) lines with PAD_VALUE to the widest, rounded up to `stride` (the backbone's
    horizontal downsampling); returns the batch (B, C, H, W) and the valid widths (B,)."""
    widths = torch.tensor([x.size(-1) for x in lines], dtype=torch.long)
    width = -(-int(widths.max()) // stride) * stride
    c, h = lines[0].shape[:2]
    out = torch.full((len(lines), c, h, width), PAD_VALUE, dtype=torch.float32)
    for i, x in enumerate(lines):
        out[i, :, :, : x.size(-1)] = x
    return out, widths


@dataclass(frozen=True)
class ModelInput:
    """The one rule from an image to a model's input, for datasets, recognizers, the server and int8 calibration.

    A fixed-width model reads (C, height, width): a plain resize, or with `keep_ratio` a resize to the height
    padded on the right. A variable-width model (text lines) reads each line at its own width, at most `width`,
    and a batch right-padded to the widest with the valid widths beside it.
    """

    height: int
    width: int  # the fixed width, or a variable-width model's maximum
    channels: int = 3
    keep_ratio: bool = False
    variable_width: bool = False

    @classmethod
    def from_config(cls, cfg: Any) -> ModelInput:
        """From a model config: a MasterConfig, or its dict (an ONNX folder's meta["model_config"])."""
        get = cfg.get if isinstance(cfg, Mapping) else lambda key, default=None: getattr(cfg, key, default)
        return cls(
            int(get("img_h")), int(get("img_w")), int(get("in_channels", 3)),
            bool(get("keep_ratio", False)), bool(get("variable_width", False)),
        )  # fmt: skip

    def tensor(self, img: Image.Image, name: str = "image") -> torch.Tensor:
        """What the model reads for `img` at inference: (C, H, W), or (C, H, w) with w <= width for a
        variable-width model, which refuses a wider line (one line naming `name`)."""
        if self.variable_width:
            return preprocess_line(img, self.height, self.width, self.channels, name)
        return preprocess(img, self.height, self.width, self.channels, self.keep_ratio)

    def training_tensor(self, img: Image.Image) -> torch.Tensor:
        """As `tensor`, but a line wider than the maximum is squeezed to it (a training set keeps its longest)."""
        if self.variable_width:
            return fit_line(img, self.height, self.width, self.channels)
        return self.tensor(img)

    def full_width_tensor(self, img: Image.Image) -> torch.Tensor:
        """(C, H, width) for every model: a line padded to the maximum width, so that a set stacks whole
        (int8 calibration feeds the encoder whole batches)."""
        return preprocess(img, self.height, self.width, self.channels, self.keep_ratio)

    def line_tensor(self, img: Image.Image) -> torch.Tensor:
        """A line at the model's height and its own width, however wide (window reading cuts it)."""
        return preprocess(img, self.height, line_width(img, self.height), self.channels, True)

    def batch(self, tensors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, C, H, W) and the valid widths (B,) of a variable-width model's lines (`pad_batch`); None for a
        fixed-width model, whose inputs stack."""
        if self.variable_width:
            return pad_batch(list(tensors))
        return torch.stack(list(tensors)), None


def shrink_to_height(img: Image.Image, max_height: int) -> Image.Image:
    """Downscale (keeping the aspect ratio) so the image is at most `max_height` tall; smaller ones unchanged.

    Augmenting a 3000-pixel photo of a word is wasted work when the model sees 48 pixels; the datasets call
    this with twice the model height before `Augment`.
    """
    w, h = img.size
    if h <= max_height:
        return img
    return img.resize((max(1, round(w * max_height / h)), max_height), Image.Resampling.BILINEAR)


def _border_fill(img: Image.Image) -> int | tuple[int, ...]:
    """Mean colour of the image border: what we fill areas uncovered by a geometric transform with."""
    arr = np.asarray(img)
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]], axis=0).reshape(-1, len(img.getbands()))
    mean = np.round(border.mean(axis=0)).astype(int)
    return int(mean[0]) if len(mean) == 1 else tuple(int(v) for v in mean)


class Augment:
    """Random photometric and geometric distortions for training text-line images, deterministic per rng.

    Each step happens with some probability: small rotation (at most 4 degrees, less for very long lines so
    the ends do not leave the image), horizontal shear (up to 0.3), slight perspective, a random crop/pad of
    a few pixels, gaussian blur, gaussian noise, brightness/contrast/saturation jitter, a colour-channel
    shuffle (a cheap hue change) and, rarely, inversion. The geometric steps are fused into one projective
    warp that keeps the whole word in the frame; uncovered areas take the border's mean colour.

    `strength` scales magnitudes and probabilities (0 disables everything). All randomness comes from the
    `rng` passed per call, so the same seed gives the same output. The output has the input's size and mode.
    Work on small images (see `shrink_to_height`): cost grows with the pixel count.
    """

    def __init__(self, strength: float = 1.0) -> None:
        if strength < 0:
            raise UserError(f"augmentation strength must be >= 0, got {strength}")
        self.strength = float(strength)

    def __repr__(self) -> str:
        return f"Augment(strength={self.strength})"

    def _p(self, rng: random.Random, p: float) -> bool:
        return rng.random() < p * min(1.0, self.strength)

    def __call__(self, img: Image.Image, rng: random.Random) -> Image.Image:
        if self.strength <= 0:
            return img
        if img.mode not in ("RGB", "L"):
            img = to_rgb(img)
        img = self._geometry(img, rng)
        s = self.strength
        if self._p(rng, 0.5):
            img = ImageEnhance.Brightness(img).enhance(1 + rng.uniform(-0.3, 0.3) * s)
        if self._p(rng, 0.5):
            img = ImageEnhance.Contrast(img).enhance(max(0.2, 1 + rng.uniform(-0.5, 0.3) * s))
        if img.mode == "RGB" and self._p(rng, 0.3):
            img = ImageEnhance.Color(img).enhance(max(0.0, 1 + rng.uniform(-0.8, 0.8) * s))
        if img.mode == "RGB" and self._p(rng, 0.1):
            bands = list(img.split())
            rng.shuffle(bands)
            img = Image.merge("RGB", bands)
        if self._p(rng, 0.3):
            img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2) * s))
        if self._p(rng, 0.3):
            img = self._noise(img, rng.uniform(2.0, 12.0) * s, rng.getrandbits(64))
        if self._p(rng, 0.05):
            img = ImageOps.invert(img)
        return img

    def _geometry(self, img: Image.Image, rng: random.Random) -> Image.Image:
        w, h = img.size
        s = self.strength
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
        pts = corners - [w / 2, h / 2]
        changed = False
        if self._p(rng, 0.5):
            # a 4-degree tilt of a 4000-pixel line would push its ends out of the frame: bound by aspect
            max_deg = 4.0 * s * min(1.0, 4.0 * h / w)
            a = math.radians(rng.uniform(-max_deg, max_deg))
            ca, sa = math.cos(a), math.sin(a)  # elementwise, not a BLAS matmul: the same bits on every CPU
            pts = np.stack([ca * pts[:, 0] - sa * pts[:, 1], sa * pts[:, 0] + ca * pts[:, 1]], axis=1)
            changed = True
        if self._p(rng, 0.5):
            pts[:, 0] += rng.uniform(-0.3, 0.3) * s * pts[:, 1]
            changed = True
        if self._p(rng, 0.5):
            pts += [[rng.uniform(-0.05, 0.05) * s * w, rng.uniform(-0.08, 0.08) * s * h] for _ in range(4)]
            changed = True
        # target box: the frame, with each side moved in (pad) or out (crop) by a few pixels
        box = [0.0, 0.0, float(w), float(h)]
        if self._p(rng, 0.5):
            mx, my = min(3.0 * s, 0.1 * w), min(3.0 * s, 0.1 * h)
            box = [
                rng.uniform(-mx, mx),
                rng.uniform(-my, my),
                w - rng.uniform(-mx, mx),
                h - rng.uniform(-my, my),
            ]
            changed = True
        if not changed or box[2] - box[0] < 1 or box[3] - box[1] < 1:
            return img
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        span = np.maximum(hi - lo, 1e-6)
        dst = (pts - lo) / span * [box[2] - box[0], box[3] - box[1]] + [box[0], box[1]]
        try:
            coeffs = homography(dst, corners)  # PIL wants the output -> input map
        except np.linalg.LinAlgError:  # degenerate corner jitter: skip the warp
            return img
        return img.transform(
            (w, h),
            Image.Transform.PERSPECTIVE,
            tuple(coeffs),
            Image.Resampling.BILINEAR,
            fillcolor=_border_fill(img),
        )

    @staticmethod
    def _noise(img: Image.Image, sigma: float, seed: int) -> Image.Image:
        arr = np.asarray(img, dtype=np.float32)
        noise = np.random.default_rng(seed).standard_normal(arr.shape, dtype=np.float32) * sigma
        return Image.fromarray(np.clip(arr + noise, 0, 255).astype(np.uint8))
