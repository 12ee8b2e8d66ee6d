"""Joint CTC-attention decoding: the attention decoder proposes, the CTC branch keeps it honest.

At each step the decoder's JOINT_TOPK likeliest characters and EOS are scored by
(1 - JOINT_CTC_WEIGHT) * log p_attention + JOINT_CTC_WEIGHT * (CTC prefix score gain), and the best one is
taken (one hypothesis per line: greedy, as attention decoding is). A decoder that loses its place and repeats
words proposes text that the CTC branch gives almost no probability, so EOS wins; and no line decodes more
than its CTC reading's length plus a margin.
"""

from __future__ import annotations

import torch

from masterocr.charset import EOS, PAD, SOS
from masterocr.model.ctc import CTCPrefixScorer

JOINT_CTC_WEIGHT = 0.3  # espnet's default decoding weight for joint CTC-attention models
JOINT_TOPK = 5


def joint_step_bound(ctc_lengths: torch.Tensor) -> torch.Tensor:
    """Most characters joint decoding reads for a line whose greedy CTC reading has `ctc_lengths` (B,)
    characters: 10 % and 2 more, for characters the CTC path merged or dropped."""
    return ctc_lengths + 2 + ctc_lengths // 10


def joint_pick(
    att_logits: torch.Tensor, scorer: CTCPrefixScorer, done: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One joint step: the chosen token (B,) (PAD for ended rows), its attention probability, and the rows
    ended so far; advances `scorer` on the rows that took a character."""
    att = att_logits.float().log_softmax(-1)
    proposals = att.clone()
    proposals[:, [PAD, SOS, EOS]] = float("-inf")
    cand_lp, cands = proposals.topk(JOINT_TOPK, -1)
    prefix = scorer.prefix_scores(cands)
    w = JOINT_CTC_WEIGHT
    gain = prefix - scorer.psi[:, None]
    char_score = (1 - w) * cand_lp.double() + w * gain
    eos_score = (1 - w) * att[:, EOS].double() + w * (scorer.end_score() - scorer.psi)
    scores = torch.cat([char_score, eos_score[:, None]], 1)
    scores = torch.nan_to_num(scores, nan=float("-inf"))
    pick = scores.argmax(1)
    is_eos = pick == JOINT_TOPK
    k = pick.clamp_max(JOINT_TOPK - 1)
    token = torch.where(is_eos, torch.full_like(pick, EOS), cands.gather(1, k[:, None])[:, 0])
    token = token.masked_fill(done, PAD)
    prob = att.gather(1, token[:, None])[:, 0].exp().masked_fill(done, 0.0)
    moving = ~done & ~is_eos
    scorer.advance(k, token, prefix.gather(1, k[:, None])[:, 0], moving)
    return token, prob, done | is_eos
