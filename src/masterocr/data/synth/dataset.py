"""On-the-fly synthetic training data: `SynthDataset[i] -> (tensor (C, H, W), label)`, deterministic per seed."""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from masterocr.charset import Charset
from masterocr.data.synth.families import select_fonts
from masterocr.data.synth.synthesizer import Synthesizer
from masterocr.data.transforms import ModelInput
from masterocr.errors import UserError
from masterocr.model.config import MasterConfig

__all__ = ["RENDER_ERROR", "SynthDataset"]

log = logging.getLogger(__name__)
RENDER_ERROR = "synthetic render error"


class SynthDataset(torch.utils.data.Dataset):
    """Synthetic word images rendered on the fly: `ds[i] -> (tensor (C, H, W), label)`.

    Sample i of epoch e depends only on (seed, e, i) when `training`; with `training=False` it depends on
    (seed, i) only (a fixed validation set) and `augment` is not applied. `augment` is a callable
    `augment(img, rng) -> img` (e.g. `transforms.Augment()`) applied to the rendered crop before
    `ModelInput.training_tensor`. `fonts` picks the font split ("train", "heldout" or "all"; see
    `fonts.split_fonts`); the split itself does not depend on `seed`, so a training set and a validation set
    with different seeds still use disjoint font families. Samples whose rendering raises (e.g. a font file
    deleted mid-run) are replaced by another rendering and counted in `skipped`.
    """

    def __init__(
        self,
        *,
        charset: Charset,
        img_h: int,
        img_w: int,
        in_channels: int = 3,
        keep_ratio: bool = False,
        max_len: int = 100,
        training: bool = True,
        seed: int = 0,
        augment=None,
        length: int = 100000,
        font_dirs: Sequence[str | Path] | None = None,
        fonts: str = "train",
        holdout_fraction: float = 0.15,
    ) -> None:
        if length < 1:
            raise UserError(f"synthetic dataset length must be >= 1, got {length}")
        self.charset = charset
        self.model_input = ModelInput(img_h, img_w, in_channels, keep_ratio)
        self.training = training
        self.seed = seed
        self.augment = augment
        self.length = length
        self.epoch = 0
        self.skipped: Counter[str] = Counter()
        font_files = select_fonts(font_dirs, fonts, holdout_fraction, seed=0, charset_keys=charset.keys)
        self.synth = Synthesizer(charset, font_files, height=img_h, max_len=min(25, max_len), seed=seed)
        self.fonts = self.synth.fonts
        log.info(
            "synthetic data: %d font files in %d families (%s fonts), %d samples",
            len(self.fonts),
            len(self.synth.families),
            fonts,
            length,
        )

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def rng_for(self, index: int, attempt: int = 0) -> random.Random:
        retry = f":retry{attempt}" if attempt else ""
        if self.training:
            return random.Random(f"synth-train:{self.seed}:{self.epoch}:{index}{retry}")
        return random.Random(f"synth-val:{self.seed}:{index}{retry}")

    def rendered(self) -> list[tuple[Image.Image, str, str]]:
        """Every sample as drawn, before preprocessing: (image, label, font file). A fixed set
        (`training=False`) gives the benchmarks' held-out words."""
        return [self.synth.sample_with_font(self.rng_for(i)) for i in range(self.length)]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        for attempt in range(4):
            rng = self.rng_for(index, attempt)
            try:
                img, label = self.synth.sample(rng)
                break
            except (OSError, ValueError, MemoryError) as exc:  # e.g. a font file removed mid-run
                self.skipped[RENDER_ERROR] += 1
                if attempt == 3:
                    raise UserError(f"synthetic rendering keeps failing ({exc}); check the font files") from exc
                log.warning("synthetic sample %d failed to render (%s); rendering another one", index, exc)
        if self.training and self.augment is not None:
            img = self.augment(img, rng)
        tensor = self.model_input.training_tensor(img)
        return tensor, self.charset.clean(label)



def evaluation_set(
    charset: Charset,
    cfg: MasterConfig,
    count: int,
    seed: int,
    fonts: str = "heldout",
    font_dirs: Sequence[str | Path] | None = None,
) -> SynthDataset:
    """A fixed set (`training=False`) of `count` words for a model of `cfg`, drawn in the `fonts` split ("heldout":
    families the training split never saw; "train": the training fonts): the benchmarks' words, the same for the
    same seed and count."""
    return SynthDataset(
        charset=charset,
        img_h=cfg.img_h,
        img_w=cfg.img_w,
        in_channels=3,
        max_len=cfg.max_len,
        training=False,
        seed=seed,
        length=count,
        fonts=fonts,
        font_dirs=font_dirs,
    )
