"""The CTC branch: loss and greedy decoding on hand-made alignments, the prefix scorer against the CTC loss,
joint decoding against a planted runaway, and decoding modes that do not depend on the batch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from masterocr import Charset, build_model
from masterocr.charset import EOS, PAD
from masterocr.data.transforms import pad_batch
from masterocr.model import get_preset
from masterocr.model.config import ConfigError, MasterConfig
from masterocr.model.ctc import BLANK, FRAMES_PER_COLUMN, CTCPrefixScorer, ctc_loss, frame_log_probs, greedy_ctc
from masterocr.model.joint import joint_step_bound

V = 9  # PAD/blank, EOS, SOS, UNK and characters 4..8


def _path_logits(path: list[int], sharp: float = 12.0) -> torch.Tensor:
    """(1, F, V) logits whose best path is `path` (one class per frame)."""
    logits = torch.zeros(1, len(path), V)
    for f, c in enumerate(path):
        logits[0, f, c] = sharp
    return logits


def _targets(*texts: list[int]) -> torch.Tensor:
    """Decoder targets [SOS] text [EOS] PAD... for id lists."""
    t = max(map(len, texts)) + 2
    out = torch.full((len(texts), t), PAD)
    for i, ids in enumerate(texts):
        out[i, : len(ids) + 2] = torch.tensor([2, *ids, EOS])
    return out


def test_greedy_merges_repeats_and_needs_a_blank_between_equal_characters():
    # "1111" as 4 runs of class 5 split by blanks; a run of 3 frames is one character
    path = [BLANK, 5, 5, BLANK, 5, BLANK, 5, 5, 5, BLANK, 5, BLANK, 6, 7, 7]
    reading = greedy_ctc(_path_logits(path), torch.tensor([len(path)]), max_len=50)
    assert reading.tokens[0].tolist() == [5, 5, 5, 5, 6, 7, EOS]
    assert reading.spans[0, :6].tolist() == [[1, 2], [4, 4], [6, 8], [10, 10], [12, 12], [13, 14]]
    assert reading.spans[0, 6].tolist() == [-1, -1]
    assert torch.all(reading.probs[0, :6] > 0.99) and reading.probs[0, 6] == 0
    # frames past a row's width are not read; max_len cuts the text
    assert greedy_ctc(_path_logits(path), torch.tensor([5]), 50).tokens[0].tolist() == [5, 5, EOS]
    assert greedy_ctc(_path_logits(path), torch.tensor([len(path)]), 2).tokens[0].tolist() == [5, 5, EOS]


def test_loss_is_near_zero_on_the_drawn_path_and_large_on_another_text():
    path = [BLANK, 4, BLANK, 4, 6, 6, BLANK]
    log_probs = frame_log_probs(_path_logits(path))
    frames = torch.tensor([len(path)])
    assert float(ctc_loss(log_probs, frames, _targets([4, 4, 6]))) < 1e-3
    assert float(ctc_loss(log_probs, frames, _targets([4, 6]))) > 5  # the repeat cannot be merged away


def test_batch_loss_is_the_character_weighted_mean_of_each_line():
    torch.manual_seed(0)
    log_probs = frame_log_probs(torch.randn(3, 10, V))
    frames = torch.tensor([10, 7, 4])
    texts = ([4, 5, 6], [7], [8, 8])
    batch = ctc_loss(log_probs, frames, _targets(*texts))
    alone = [ctc_loss(log_probs[i : i + 1, : frames[i]], frames[i : i + 1], _targets(t)) for i, t in enumerate(texts)]
    expected = sum(loss * len(t) for loss, t in zip(alone, texts)) / sum(map(len, texts))
    assert torch.allclose(batch, expected, atol=1e-5)


def test_prefix_scorer_ends_at_the_ctc_probability_of_the_text():
    torch.manual_seed(1)
    logits = torch.randn(3, 12, V) * 2
    frames = torch.tensor([12, 9, 6])
    texts = [[4, 5, 5, 6], [6, 4], [5, 5, 5]]
    scorer = CTCPrefixScorer(logits, frames)
    for step in range(4):
        tokens = torch.tensor([t[step] if step < len(t) else 4 for t in texts])
        moving = torch.tensor([step < len(t) for t in texts])
        scores = scorer.prefix_scores(tokens[:, None])
        scorer.advance(torch.zeros(3, dtype=torch.long), tokens, scores[:, 0], moving)
    log_probs = logits.double().log_softmax(-1).transpose(0, 1)
    for i, text in enumerate(texts):
        expected = -F.ctc_loss(log_probs[: frames[i], i : i + 1], torch.tensor([text]), frames[i : i + 1],
                               torch.tensor([len(text)]), blank=BLANK, reduction="sum")
        assert float(scorer.end_score()[i]) == pytest.approx(float(expected), abs=1e-6)


def _tiny_line(ctc_weight: float = 0.5, decode: str = "attention"):
    charset = Charset("abcdefgh")
    cfg = get_preset("tiny", img_w=256, keep_ratio=True, variable_width=True, max_len=40, ctc_weight=ctc_weight,
                     decode=decode)
    torch.manual_seed(3)
    return build_model(cfg, charset).eval(), charset


def test_config_checks_the_mode_and_the_branch():
    with pytest.raises(ConfigError, match="ctc_weight"):
        MasterConfig(decode="ctc")
    with pytest.raises(ConfigError, match="decode"):
        MasterConfig(ctc_weight=0.3, decode="beam")
    assert "ctc_weight" not in MasterConfig().to_dict()  # models without the branch write what they wrote
    model, _ = _tiny_line(0.0)
    assert model.ctc is None


@pytest.mark.parametrize("confidence", [2.0, 8.0])
def test_joint_decoding_stops_a_planted_runaway(monkeypatch, confidence):
    """The decoder repeats "ab" forever; the CTC branch reads "ab": attention alone runs to its bound. Joint
    decoding ends after "ab" when the decoder prefers the repeat by 2 nats over EOS (rescoring), and within
    the CTC length bound when it is sure of it (8 nats)."""
    model, charset = _tiny_line()
    a, b = charset.encode("ab")
    image = torch.zeros(1, 1, 32, 160)

    def runaway(tokens, *args, **kwargs):
        logits = torch.full((tokens.size(0), model.num_classes), -20.0)
        logits[:, EOS] = 0.0
        logits[:, torch.where(tokens == a, b, a)] = confidence  # a after SOS and b, b after a
        return logits

    def reads_ab(memory):
        frames = memory.size(1) // (32 // 8) * FRAMES_PER_COLUMN
        path = [BLANK] * frames
        path[3], path[6] = a, b
        logits = torch.full((memory.size(0), frames, model.num_classes), -8.0)
        logits[:, torch.arange(frames), torch.tensor(path)] = 8.0
        return logits

    monkeypatch.setattr(model, "_cached_step", runaway)
    monkeypatch.setattr(model, "ctc_logits", reads_ab)
    attention = charset.decode(model.decode(image, mode="attention").tokens[0].tolist())
    joint = charset.decode(model.decode(image, mode="joint").tokens[0].tolist())
    assert attention.startswith("ababab") and len(attention) > 20
    if confidence < 5:
        assert joint == "ab"
    else:
        assert joint.startswith("ab") and len(joint) <= joint_step_bound(torch.tensor(2)) + 1
    assert charset.decode(model.decode(image, mode="ctc").tokens[0].tolist()) == "ab"


@pytest.mark.parametrize("mode", ["ctc", "joint", "attention"])
def test_every_mode_reads_a_line_the_same_alone_and_in_a_padded_batch(mode):
    model, charset = _tiny_line(decode=mode)
    torch.manual_seed(4)
    lines = [torch.rand(1, 32, w) for w in (60, 200, 132)]
    batch, widths = pad_batch(lines)
    batch[0, :, :, 60:] = torch.rand_like(batch[0, :, :, 60:])  # noise in the padding must not leak in
    together = model.decode(batch, widths=widths)
    for i, line in enumerate(lines):
        alone_batch, alone_w = pad_batch([line])
        alone = model.decode(alone_batch, widths=alone_w)
        n = alone.tokens.size(1)
        assert together.tokens[i, :n].tolist() == alone.tokens[0].tolist()
        assert torch.allclose(together.probs[i, :n], alone.probs[0], atol=1e-4)
        assert charset.decode(together.tokens[i].tolist()) == charset.decode(alone.tokens[0].tolist())


def test_ctc_mode_is_the_best_path_of_the_branch():
    model, _ = _tiny_line()
    image = torch.rand(2, 1, 32, 120)
    out = model.decode(image, mode="ctc")
    memory = model.encode(image)
    frames = model.ctc_frames(image)
    assert frames.tolist() == [120 // 4 * FRAMES_PER_COLUMN] * 2
    expected = greedy_ctc(model.ctc_logits(memory), frames, model.cfg.max_len)
    assert torch.equal(out.tokens, expected.tokens) and out.spans is not None


def test_a_model_without_the_branch_refuses_ctc_modes():
    model, _ = _tiny_line(0.0)
    with pytest.raises(ValueError, match="no CTC branch"):
        model.decode(torch.rand(1, 1, 32, 64), mode="ctc")
