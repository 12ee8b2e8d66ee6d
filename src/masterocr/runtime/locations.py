"""Where each character was read: x-ranges in the model's input, then in the original image.

CTC decoding gives each character its frames: frame f covers input pixels [2f, 2f + 2) at the model's height
(FRAMES_PER_COLUMN frames per memory column of STRIDE px). Attention decoding gives each character a map
over the memory; its peak column c (the weights summed over the rows) covers input pixels [4c, 4c + 4).
The input is the image resized to the model's height (or width), so one factor per image maps both back.
"""

from __future__ import annotations

import torch

from masterocr.model import MasterConfig
from masterocr.model.backbone import STRIDE
from masterocr.model.ctc import FRAMES_PER_COLUMN

FRAME_PX = STRIDE // FRAMES_PER_COLUMN


def frame_ranges(spans: list[list[int]]) -> list[tuple[int, int]]:
    """Each character's first and last CTC frame -> its input x-range [x0, x1) in pixels (up to the text's
    end: a span of -1 is past it)."""
    return [(FRAME_PX * a, FRAME_PX * (b + 1)) for a, b in spans if a >= 0]


def attention_ranges(maps: torch.Tensor, rows: int) -> list[tuple[int, int]]:
    """Per-character attention maps (T, rows * cols, row-major) -> each character's input x-range [x0, x1):
    the memory column its weights peak in, summed over the rows."""
    if maps.numel() == 0:
        return []
    columns = maps.reshape(maps.size(0), rows, -1).sum(1).argmax(-1)
    return [(STRIDE * c, STRIDE * (c + 1)) for c in columns.tolist()]


def content_width(cfg: MasterConfig, width: int, height: int) -> int:
    """How many input pixels a `width` x `height` image fills across: resized to the model's height keeping
    its ratio (lines, whole or in windows; keep-ratio crops, those at most img_w), or stretched to img_w."""
    if not (cfg.variable_width or cfg.keep_ratio):
        return cfg.img_w
    resized = max(1, round(width * cfg.img_h / height))  # data.transforms.line_width
    return resized if cfg.variable_width else min(cfg.img_w, resized)


def to_image(ranges: list[tuple[int, int]], scale: float, width: int) -> list[list[float]]:
    """Input x-ranges -> the original image's, `scale` = its width / `content_width`, clipped to `width`."""
    return [[round(min(width, a * scale), 1), round(min(width, b * scale), 1)] for a, b in ranges]


def place(cfg: MasterConfig, ranges: list | None, size: tuple[int, int]) -> list[list[float]] | None:
    """Input x-ranges of an image of `size` (width, height) -> the image's own (None stays None)."""
    if ranges is None:
        return None
    return to_image(ranges, size[0] / content_width(cfg, *size), size[0])
