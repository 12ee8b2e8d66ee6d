"""The line model's CPU recipe: width pools (little padding, deterministic, exact resume mid-pool), the chunk
curriculum, and the hanzi sampler that gives the under-seen hanzi their share."""

from __future__ import annotations

import random

import torch
from torch.utils.data import Dataset

from masterocr.charset import Charset
from masterocr.data.datasets import collate
from masterocr.data.synth.linetext import CHUNK_LATIN, LineTextSampler, gb2312_hanzi
from masterocr.train.sampler import ResumableSampler, WidthPools, padding_share
from masterocr.train.setup import TrainData, train_batches

ZH_LATIN = Charset.from_file("src/masterocr/charsets/zh_latin.txt")


class Lines(Dataset):
    """Blank lines of drawn widths 40-1,600 px (typical of real lines at height 32), labelled by index."""

    def __init__(self, n: int, seed: int = 0) -> None:
        rng = random.Random(seed)
        self.widths = [rng.randint(40, 1600) for _ in range(n)]

    def __len__(self) -> int:
        return len(self.widths)

    def __getitem__(self, i: int):
        return torch.zeros(1, 32, self.widths[i]), f"line {i}"


def test_width_pools_pad_under_a_tenth_and_keep_every_line_once():
    items = [Lines(96)[i] for i in range(96)]
    batches = WidthPools(collate, 12)(items)
    assert len(batches) == 8 and all(len(b.labels) == 12 for b in batches)
    assert sorted(label for b in batches for label in b.labels) == sorted(label for _, label in items)
    pooled = padding_share(batches)
    drawn = padding_share([collate(items[i : i + 12]) for i in range(0, 96, 12)])
    assert pooled < 0.10 < 0.3 < drawn
    again = WidthPools(collate, 12)(list(items))  # the same pool gives the same batches in the same order
    assert [b.labels for b in again] == [b.labels for b in batches]


def test_width_pools_count_unreadable_items():
    items = [Lines(24)[i] for i in range(24)]
    items[3] = None
    batches = WidthPools(collate, 12)(items)
    assert sum(b.skipped for b in batches) == 1 and sum(len(b.labels) for b in batches) == 23
    assert padding_share([]) == 0.0


def _data(pool: int) -> TrainData:
    ds = Lines(240, seed=1)
    sampler = ResumableSampler(ds, 1, 0, shuffle=True, seed=3, batch_size=6 * pool)
    collate_fn = WidthPools(collate, 6) if pool > 1 else collate
    kwargs = dict(batch_size=6 * pool, num_workers=0, collate_fn=collate_fn, drop_last=True)
    return TrainData(ds, sampler, kwargs, 240 // 6, 40, None, pool=pool)


def test_a_run_resumed_mid_pool_sees_the_batches_it_had_not_trained():
    data = _data(pool=4)
    whole = [b.labels for b in train_batches(data, 1, 0, seed=3)]
    assert len(whole) == 40 and len({label for labels in whole for label in labels}) == 240
    for done in (1, 4, 7, 13):  # micro-batches trained before the stop: inside and at the end of a pool
        resumed = [b.labels for b in train_batches(data, 1, done * 6, seed=3)]
        assert resumed == whole[done:]


def test_the_first_epochs_draw_chunks_then_whole_lines():
    sampler = LineTextSampler(ZH_LATIN, max_len=160)
    rng = random.Random(5)
    chunks = [sampler.sample(rng, "latin", chunk=True) for _ in range(200)]
    lines = [sampler.sample(rng, "latin") for _ in range(200)]
    assert max(map(len, chunks)) <= CHUNK_LATIN[1] + 25  # the last word may overshoot the target
    assert sum(map(len, chunks)) / 200 < 25 < sum(map(len, lines)) / 200
    zh_chunks = [sampler.sample(rng, "zh", chunk=True) for _ in range(200)]
    assert sum(map(len, zh_chunks)) / 200 < 16


def test_uniform_hanzi_draws_go_to_the_under_seen():
    sampler = LineTextSampler(ZH_LATIN, max_len=160)
    hanzi = gb2312_hanzi()
    rare = set(hanzi[-50:])  # level-2 hanzi
    sampler.set_views({h: 1000 for h in hanzi if h not in rare})
    rng = random.Random(0)
    drawn = sampler.draw_hanzi(rng, 5000)
    # weights 1 each for the 50 against 1/1001 (x3 for level 1) for the rest: 78 %; 0.7 % without the views
    assert sum(c in rare for c in drawn) / len(drawn) > 0.7
    sampler.set_views({})
    level1, level2 = set(hanzi[:3755]), set(hanzi[3755:])
    drawn = sampler.draw_hanzi(rng, 40000)
    per1 = sum(c in level1 for c in drawn) / len(level1)
    per2 = sum(c in level2 for c in drawn) / len(level2)
    assert 2.0 < per1 / max(per2, 1e-9) < 4.5  # level 1 weighted 3 to 1


def test_batch_norm_statistics_leave_the_padding_out():
    """A padded batch's training statistics equal those of its valid columns laid side by side."""
    from masterocr.model.backbone import MaskedBatchNorm2d, column_mask

    torch.manual_seed(0)
    x = torch.randn(2, 5, 4, 12) * 3 + 1
    widths = torch.tensor([12, 5])
    x[1, :, :, 5:] = 100.0  # what the padding computes must not matter
    masked, plain = MaskedBatchNorm2d(5).train(), torch.nn.BatchNorm2d(5).train()
    out = masked(x, column_mask(widths, 12))
    valid = torch.cat([x[0, :, :, :12], x[1, :, :, :5]], -1)[None]
    ref = plain(valid)
    assert torch.allclose(masked.running_mean, plain.running_mean, atol=1e-5)
    assert torch.allclose(masked.running_var, plain.running_var, atol=1e-4)
    assert torch.allclose(torch.cat([out[0, :, :, :12], out[1, :, :, :5]], -1)[None], ref, atol=1e-4)
    assert torch.equal(masked.eval()(x), torch.nn.functional.batch_norm(
        x, masked.running_mean, masked.running_var, masked.weight, masked.bias, False, 0.0, masked.eps))
