"""Synthetic text lines for training and evaluation, on the fly or pre-rendered into LMDB shards.

`SynthLineDataset[i] -> (tensor (C, H, W), label)`: W is the line's own width (at most `max_width`) unless
`pad_to=max_width` pads every line (keep-ratio, right padding) for the default collate. Sample i of epoch e
depends only on (seed, e, i) when training, on (seed, i) otherwise. `line_evaluation_set` is the held-out
set: lines drawn only in the held-out CJK design (LXGW WenKai) and the held-out Latin families.
`generate_lines` writes `count` lines into LMDB shards of `shard_size` lines (`OUT/shard-00000`, ...), PNG
images in the clovaai layout that `LmdbDataset` reads; sample i depends only on (seed, i).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from masterocr.charset import Charset
from masterocr.data.lmdb import write_lmdb
from masterocr.data.synth.linesynth import LineSynthesizer
from masterocr.data.synth.pools import encode_image
from masterocr.data.transforms import ModelInput
from masterocr.errors import UserError

__all__ = ["SynthLineDataset", "generate_lines", "line_evaluation_set"]


class SynthLineDataset(torch.utils.data.Dataset):
    """Synthetic text lines rendered on the fly: `ds[i] -> (tensor (C, H, W), label)`, deterministic per seed."""

    def __init__(
        self,
        *,
        charset: Charset,
        height: int = 32,
        max_width: int | None = None,
        in_channels: int = 3,
        training: bool = True,
        seed: int = 0,
        length: int = 100000,
        fonts: str = "train",
        font_dirs: Sequence[str | Path] | None = None,
        kinds: dict[str, float] | None = None,
        max_len: int = 160,
        pad_to: int | None = None,
        short_epochs: int = 0,
    ) -> None:
        if length < 1:
            raise UserError(f"synthetic line dataset length must be >= 1, got {length}")
        self.synth = LineSynthesizer(
            charset, height=height, max_width=max_width, max_len=max_len, split=fonts, font_dirs=font_dirs,
            kinds=kinds,
        )
        self.charset = charset
        self.height, self.max_width = height, self.synth.max_width
        # a line at its own width, or padded to `pad_to` (int8 calibration stacks whole batches)
        self.model_input = ModelInput(height, pad_to or self.max_width, in_channels, True, pad_to is None)
        self.training = training
        self.seed = seed
        self.length = length
        self.short_epochs = short_epochs
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def set_views(self, views: dict[str, int]) -> None:
        """How often the trainer has shown each hanzi: the uniform hanzi draws favour the under-seen ones."""
        self.synth.text.set_views(views)

    def chunks(self) -> bool:
        """True while the length curriculum draws short chunks (training epochs 1..short_epochs)."""
        return self.training and 0 < self.epoch <= self.short_epochs

    def rng_for(self, index: int) -> random.Random:
        if self.training:
            return random.Random(f"synth-line-train:{self.seed}:{self.epoch}:{index}")
        return random.Random(f"synth-line-val:{self.seed}:{index}")

    def rendered(self, index: int):
        """(image, label, face, kind) of sample `index`, before preprocessing."""
        if not 0 <= index < self.length:
            raise IndexError(index)
        return self.synth.sample(self.rng_for(index), chunk=self.chunks())

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        img, label, _, _ = self.rendered(index)
        return self.model_input.training_tensor(img), label


def line_evaluation_set(
    charset: Charset,
    count: int,
    seed: int = 0,
    *,
    height: int = 32,
    max_width: int | None = None,
    font_dirs: Sequence[str | Path] | None = None,
    kinds: dict[str, float] | None = None,
) -> SynthLineDataset:
    """A fixed set of `count` lines in the held-out faces (LXGW WenKai, held-out Latin families): the same
    for the same seed and count; for the "held-out synthetic lines CER" target."""
    return SynthLineDataset(
        charset=charset, height=height, max_width=max_width, training=False, seed=seed, length=count,
        fonts="heldout", font_dirs=font_dirs, kinds=kinds,
    )


def generate_lines(
    out_dir: str | Path,
    count: int,
    *,
    charset: Charset,
    shard_size: int = 100000,
    height: int = 32,
    max_width: int | None = None,
    seed: int = 0,
    font_split: str = "train",
    font_dirs: Sequence[str | Path] | None = None,
    progress: bool = True,
) -> dict:
    """Render `count` lines into LMDB shards under `out_dir`; returns stats (also saved as synth.json)."""
    if count < 1 or shard_size < 1:
        raise UserError(f"--count and --shard-size must be >= 1, got {count} and {shard_size}")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists and is not empty; delete it or choose another output folder")
    synth = LineSynthesizer(charset, height=height, max_width=max_width, split=font_split, font_dirs=font_dirs)
    start = time.perf_counter()
    lengths: list[int] = []

    def samples(lo: int, hi: int):
        for i in range(lo, hi):
            img, label, _, _ = synth.sample(random.Random(f"synth-line-gen:{seed}:{i}"))
            lengths.append(len(label))
            yield encode_image(img), label

    shards = []
    for k, lo in enumerate(range(0, count, shard_size)):
        hi = min(count, lo + shard_size)
        write_lmdb(samples(lo, hi), out / f"shard-{k:05d}", total=hi - lo, progress=progress)
        shards.append(f"shard-{k:05d}")
    seconds = time.perf_counter() - start
    stats = {
        "count": count,
        "shards": shards,
        "seconds": round(seconds, 3),
        "lines_per_s": round(count / max(seconds, 1e-9), 1),
        "height": height,
        "max_width": synth.max_width,
        "seed": seed,
        "font_split": font_split,
        "cjk_designs": sorted({f.split("/")[-1] for faces in synth.cjk for f in faces}),
        "charset_size": len(charset.keys),
        "mean_label_len": round(sum(lengths) / len(lengths), 1),
        "dropped_chars": dict(synth.dropped.most_common(50)),
    }
    (out / "synth.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return stats
