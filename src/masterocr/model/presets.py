"""Named model sizes. Parameters, GFLOPs and training speed on a 2-core CPU are listed in the README."""

from __future__ import annotations

from dataclasses import replace

from masterocr.model.config import MasterConfig

PRESETS: dict[str, MasterConfig] = {
    # the paper's network: 48x160 RGB, ResNet-31-like backbone with GCA, d_model 512, 3 decoder layers
    "paper": MasterConfig(),
    # CPU presets: grayscale 32x128 (memory of 4x32 positions), slimmer stages, smaller decoder
    "medium": MasterConfig(
        img_h=32, img_w=128, in_channels=1,
        widths=(16, 32, 64, 128, 192, 192), blocks=(1, 1, 1, 1),
        d_model=192, nhead=6, d_ff=768, num_decoder_layers=3, dropout=0.1, max_len=25,
    ),
    # medium with one more block in stages 3 and 4 and a fourth decoder layer: grown from trained medium weights
    # by masterocr.model.grow (scripts/grow_weights.py), then trained on (configs/synth_gpu_large.json)
    "large": MasterConfig(
        img_h=32, img_w=128, in_channels=1,
        widths=(16, 32, 64, 128, 192, 192), blocks=(1, 1, 2, 2),
        d_model=192, nhead=6, d_ff=768, num_decoder_layers=4, dropout=0.1, max_len=25,
    ),
    "small": MasterConfig(
        img_h=32, img_w=128, in_channels=1,
        widths=(16, 32, 32, 64, 96, 128), blocks=(1, 1, 1, 1),
        d_model=128, nhead=4, d_ff=512, num_decoder_layers=3, dropout=0.1, max_len=25,
    ),
    "tiny": MasterConfig(
        img_h=32, img_w=128, in_channels=1,
        widths=(8, 16, 32, 32, 64, 64), blocks=(1, 1, 1, 1),
        d_model=64, nhead=4, d_ff=256, num_decoder_layers=2, dropout=0.1, max_len=25,
    ),
    # text lines: grayscale, height 32, keep-ratio widths up to 1,600 px (memory of 4 x 400 positions), padded
    # batches masked, up to 200 characters. Height 32, not 48: one line read at both heights (1,600 px wide at
    # 32, 2,400 at 48; 7,000 classes; one thread of the 2-core CPU) took 112 vs 229 ms to encode and 338 vs
    # 704 ms with 100 decoding steps (the memory is 1,600 vs 3,600 positions); at the same 1,600 px, 131 vs
    # 208 ms and 497 vs 670 ms. 32 px is also the word presets' height, so their trained stems can seed it.
    "line": MasterConfig(
        img_h=32, img_w=1600, in_channels=1, keep_ratio=True, variable_width=True,
        widths=(16, 32, 64, 128, 192, 192), blocks=(1, 1, 2, 2),
        d_model=192, nhead=6, d_ff=768, num_decoder_layers=3, dropout=0.1, max_len=200,
    ),
}  # fmt: skip


def get_preset(name: str, **overrides) -> MasterConfig:
    """A copy of a named preset, with field overrides."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)
