"""preprocess: shapes, value range, keep_ratio padding; ModelInput: the rule per model; Augment: deterministic
and shape-preserving."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from masterocr.data.transforms import PAD_VALUE, Augment, ModelInput, preprocess, shrink_to_height
from masterocr.errors import UserError
from masterocr.model import get_preset


def _word(size: tuple[int, int] = (128, 32), mode: str = "RGB") -> Image.Image:
    img = Image.new("RGB", size, "white")
    ImageDraw.Draw(img).text((4, size[1] // 4), "Hello", fill=(200, 0, 0))
    return img.convert(mode)


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_normalisation(channels: int) -> None:
    out = preprocess(_word(), 48, 160, channels=channels)
    assert out.shape == (channels, 48, 160) and out.dtype == torch.float32
    assert out.max().item() == 1.0  # white -> (255 - 127.5) / 127.5
    black = preprocess(Image.new("RGB", (10, 10), "black"), 8, 8, channels=channels)
    assert torch.all(black == -1.0)


def test_grayscale_uses_luminance() -> None:
    red = preprocess(Image.new("RGB", (4, 4), (255, 0, 0)), 4, 4, channels=1)
    assert torch.allclose(red, torch.full_like(red, (76 - 127.5) / 127.5))


def test_plain_resize_ignores_aspect() -> None:
    left_black = Image.new("L", (20, 10), 255)
    left_black.paste(0, (0, 0, 10, 10))
    out = preprocess(left_black, 10, 100)
    assert torch.all(out[:, :, :45] == -1.0) and torch.all(out[:, :, 55:] == 1.0)


def test_keep_ratio_pads_right_with_pad_value() -> None:
    img = Image.new("RGB", (40, 20), "black")  # ratio 2: 32 wide at height 16
    out = preprocess(img, 16, 100, keep_ratio=True)
    assert out.shape == (3, 16, 100)
    assert torch.all(out[:, :, :32] == -1.0)
    assert torch.all(out[:, :, 32:] == PAD_VALUE)


def test_keep_ratio_squashes_wide_and_keeps_thin_visible() -> None:
    wide = preprocess(Image.new("RGB", (4000, 1), "black"), 32, 100, keep_ratio=True)
    assert wide.shape == (3, 32, 100) and torch.all(wide == -1.0)  # squashed, no padding
    tall = preprocess(Image.new("RGB", (1, 4000), "black"), 32, 100, keep_ratio=True)
    assert torch.all(tall[:, :, 0] == -1.0)  # at least one column of image
    assert torch.all(tall[:, :, 1:] == PAD_VALUE)


@pytest.mark.parametrize("size", [(1, 1), (1, 4000), (4000, 1), (3, 700)])
@pytest.mark.parametrize("keep_ratio", [False, True])
def test_extreme_sizes(size: tuple[int, int], keep_ratio: bool) -> None:
    out = preprocess(Image.new("RGB", size, "white"), 32, 128, keep_ratio=keep_ratio)
    assert out.shape == (3, 32, 128) and torch.isfinite(out).all()


@pytest.mark.parametrize("preset", ["tiny", "line"])
def test_model_input_reads_a_config_object_or_its_dict(preset: str) -> None:
    cfg = get_preset(preset)
    rule = ModelInput.from_config(cfg)
    assert rule == ModelInput.from_config(cfg.to_dict())
    assert (rule.height, rule.width, rule.channels) == (cfg.img_h, cfg.img_w, cfg.in_channels)
    assert (rule.keep_ratio, rule.variable_width) == (cfg.keep_ratio, cfg.variable_width)


def test_model_input_fixed_width_stacks_without_widths() -> None:
    rule = ModelInput(32, 128, 1, keep_ratio=True)
    words = [_word((64, 32)), _word((300, 20))]
    tensors = [rule.tensor(w) for w in words]
    assert all(t.shape == (1, 32, 128) for t in tensors)
    assert torch.equal(tensors[0], preprocess(words[0], 32, 128, 1, keep_ratio=True))
    assert torch.equal(rule.training_tensor(words[1]), tensors[1])
    assert torch.equal(rule.full_width_tensor(words[1]), tensors[1])
    batch, widths = rule.batch(tensors)
    assert batch.shape == (2, 1, 32, 128) and widths is None


def test_model_input_lines_keep_their_width_and_batch_padded() -> None:
    rule = ModelInput(32, 200, 1, keep_ratio=True, variable_width=True)
    short, long = _word((90, 40)), _word((500, 40))  # 72 and 400 px wide at height 32
    assert rule.tensor(short).shape == (1, 32, 72)
    with pytest.raises(UserError, match="long.png: 500x40 px is 400 px wide.*maximum 200"):
        rule.tensor(long, "long.png")  # reading refuses a line wider than the model reads
    assert rule.training_tensor(long).shape == (1, 32, 200)  # training squeezes it
    assert rule.full_width_tensor(short).shape == (1, 32, 200)  # calibration pads to the full width
    assert (rule.full_width_tensor(short)[:, :, 72:] == PAD_VALUE).all()
    batch, widths = rule.batch([rule.tensor(short), rule.tensor(_word((70, 40)))])  # 72 and 56 px
    assert batch.shape == (2, 1, 32, 72) and widths.tolist() == [72, 56]
    assert (batch[1, :, :, 56:] == PAD_VALUE).all()


def test_bad_channels() -> None:
    with pytest.raises(Exception, match="in_channels"):
        preprocess(_word(), 32, 128, channels=2)


MODES = ["L", "RGB", "RGBA", "P", "I;16", "CMYK", "1"]


@settings(max_examples=60, deadline=None)
@given(
    w=st.integers(1, 600),
    h=st.integers(1, 600),
    mode=st.sampled_from(MODES),
    channels=st.sampled_from([1, 3]),
    keep_ratio=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_image_gives_a_valid_tensor(w, h, mode, channels, keep_ratio, seed) -> None:
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    else:
        img = Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8), "RGBA").convert(mode)
    assert img.mode == mode
    out = preprocess(img, 32, 100, channels=channels, keep_ratio=keep_ratio)
    assert out.shape == (channels, 32, 100)
    assert torch.isfinite(out).all()
    assert out.min() >= -1.0 and out.max() <= 1.0


# augmentation -------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_augment_is_deterministic_and_keeps_shape(mode: str) -> None:
    img = _word(mode=mode)
    aug = Augment()
    outs = [np.asarray(aug(img, random.Random(seed))) for seed in range(30)]
    again = [np.asarray(aug(img, random.Random(seed))) for seed in range(30)]
    for a, b in zip(outs, again, strict=True):
        assert a.shape == np.asarray(img).shape
        assert np.array_equal(a, b)
    distinct = {a.tobytes() for a in outs}
    assert len(distinct) > 20  # it really does vary with the seed
    assert any(not np.array_equal(a, np.asarray(img)) for a in outs)


def test_augment_extreme_shapes_and_zero_strength() -> None:
    for size in [(1, 1), (1, 300), (2000, 16), (5, 5)]:
        img = Image.new("RGB", size, "white")
        for seed in range(20):
            assert Augment(strength=2.0)(img, random.Random(seed)).size == size
    img = _word()
    assert Augment(strength=0.0)(img, random.Random(0)) is img


def test_augment_fills_with_border_colour() -> None:
    # photometric steps change a uniform image uniformly; only a bad warp fill (e.g. black corners) would
    # leave pixels far from the image's median colour
    img = Image.new("RGB", (128, 32), (20, 40, 200))
    for seed in range(40):
        out = np.asarray(Augment()(img, random.Random(seed))).astype(int)
        deviation = np.abs(out - np.median(out.reshape(-1, 3), axis=0)).max(axis=2)
        assert np.percentile(deviation, 99) < 40, seed


def test_shrink_to_height() -> None:
    assert shrink_to_height(Image.new("RGB", (1000, 400)), 64).size == (160, 64)
    small = Image.new("RGB", (50, 20))
    assert shrink_to_height(small, 64) is small
    assert shrink_to_height(Image.new("RGB", (1, 4000)), 64).size == (1, 64)
