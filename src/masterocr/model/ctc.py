"""The CTC branch of MASTER: a frame classifier on the encoder's memory, its loss, greedy decoding and the
CTC prefix score that keeps attention decoding honest (joint CTC-attention, Watanabe et al. 2017).

Frames: the memory's rows of each column (one column per STRIDE = 4 px of input width) are concatenated and
projected to FRAMES_PER_COLUMN frames, so a frame covers 2 px. CTC needs a blank between two equal
characters, so "1111" takes 7 frames; at 2 px a frame a character may be as narrow as 4 px, 0.125 of a 32 px
line's height (the narrowest running text measured in the installed fonts is 0.19, `MIN_CHAR_WIDTH` in
master.py). The blank is PAD: PAD is never a character, so the CTC classes are the decoder's classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from masterocr.charset import EOS, PAD, SOS, UNK

FRAMES_PER_COLUMN = 2
BLANK = PAD
NEG_INF = float("-inf")


class CTCHead(nn.Module):
    """memory (B, S, D) -> frame logits (B, cols * FRAMES_PER_COLUMN, V); `column_major` says how the memory
    was flattened (variable-width models: column by column; fixed-width: row by row)."""

    def __init__(self, d_model: int, rows: int, num_classes: int) -> None:
        super().__init__()
        self.rows = rows
        self.proj = nn.Linear(rows * d_model, FRAMES_PER_COLUMN * d_model)
        self.norm = nn.LayerNorm(d_model)
        self.classifier = nn.Linear(d_model, num_classes)

    def forward(self, memory: torch.Tensor, column_major: bool) -> torch.Tensor:
        b, s, d = memory.shape
        cols = s // self.rows
        if column_major:
            per_column = memory.reshape(b, cols, self.rows * d)
        else:
            per_column = memory.reshape(b, self.rows, cols, d).transpose(1, 2).reshape(b, cols, self.rows * d)
        frames = self.proj(per_column).reshape(b, cols * FRAMES_PER_COLUMN, d)
        return self.classifier(self.norm(F.gelu(frames)))


def ctc_targets(targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder targets (B, T) = [SOS] text [EOS] PAD... -> the characters of each row concatenated (N,) and
    their lengths (B,): what `F.ctc_loss` takes."""
    chars = targets[:, 1:]
    keep = chars >= UNK  # UNK and the characters; not PAD, EOS or SOS
    return chars[keep], keep.sum(1)


def frame_log_probs(logits: torch.Tensor) -> torch.Tensor:
    """The CTC frames' log-probabilities (B, F, V) in float32, what `ctc_loss` and the teacher's `distill_loss`
    take: computed once a step, since a softmax over the charset for every 2 px frame is one of a line step's
    largest costs (bench/line_train_speed.py)."""
    return logits.float().log_softmax(-1)


def ctc_loss(log_probs: torch.Tensor, frames: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """CTC loss per target character: summed over the batch, divided by the number of characters, so a padded
    batch's loss is the character-weighted mean of each line's own (as the attention cross-entropy is).
    log_probs (B, F, V) from `frame_log_probs`; frames (B,) valid frames per row; targets as the decoder's
    (B, T). A line with more characters than its frames can align contributes nothing (zero_infinity)."""
    flat, lengths = ctc_targets(targets)
    total = F.ctc_loss(log_probs.transpose(0, 1), flat, frames, lengths, blank=BLANK, reduction="sum",
                       zero_infinity=True)
    return total / lengths.sum().clamp_min(1)


def joint_loss(
    logits: torch.Tensor, gold: torch.Tensor, ctc_log_probs: torch.Tensor | None, frames: torch.Tensor,
    targets: torch.Tensor, ctc_weight: float, label_smoothing: float = 0.0,
) -> torch.Tensor:
    """(1 - ctc_weight) * attention cross-entropy + ctc_weight * CTC, each a mean over the batch's characters
    (a line's loss does not depend on its batch); the cross-entropy alone without a CTC branch. `logits` and
    `gold` as `MASTER.training_outputs` gives them, `ctc_log_probs` its CTC logits through `frame_log_probs`."""
    loss = F.cross_entropy(logits.float(), gold, label_smoothing=label_smoothing)
    if ctc_log_probs is None:
        return loss
    return (1 - ctc_weight) * loss + ctc_weight * ctc_loss(ctc_log_probs, frames, targets)


@dataclass
class CTCReading:
    """Greedy CTC decoding of a batch: tokens (B, T) ending with EOS then PAD, as attention decoding gives
    them; probs (B, T) each character's mean top probability over its frames; spans (B, T, 2) the first and
    last frame of each character (-1 after the text)."""

    tokens: torch.Tensor
    probs: torch.Tensor
    spans: torch.Tensor


def greedy_ctc(logits: torch.Tensor, frames: torch.Tensor, max_len: int) -> CTCReading:
    """Best path: the top class per frame, repeats merged, blanks dropped; at most `max_len` characters."""
    logits = logits.float()
    allowed = logits.clone()
    allowed[..., [EOS, SOS]] = float("-inf")  # never CTC targets: a frame is blank (PAD), UNK or a character
    top, best = allowed.max(-1)  # (B, F)
    probs = (top - logits.logsumexp(-1)).exp()  # the top probability without a softmax over every class
    return collapse(best, probs, frames, max_len)


def collapse(best: torch.Tensor, probs: torch.Tensor, frames: torch.Tensor, max_len: int) -> CTCReading:
    """Frame classes (B, F) and their probabilities -> characters: each run of one class is one character
    (blank runs none), scored by the mean probability of its frames."""
    rows = []
    for ids, p, n in zip(best, probs, frames.tolist()):
        ids, p = ids[:n], p[:n]
        values, counts = torch.unique_consecutive(ids, return_counts=True)
        ends = counts.cumsum(0)
        run_of_frame = torch.repeat_interleave(torch.arange(len(values)), counts)
        mean_p = torch.zeros(len(values), dtype=p.dtype).index_add_(0, run_of_frame, p) / counts
        char = values != BLANK
        rows.append((values[char][:max_len], mean_p[char][:max_len],
                     torch.stack([ends - counts, ends - 1], 1)[char][:max_len]))
    t = max((len(r[0]) for r in rows), default=0) + 1
    b = best.size(0)
    tokens = best.new_full((b, t), PAD)
    out_probs = probs.new_zeros((b, t))
    spans = best.new_full((b, t, 2), -1)
    for i, (ids, p, span) in enumerate(rows):
        k = len(ids)
        tokens[i, :k], out_probs[i, :k], spans[i, :k] = ids, p, span
        tokens[i, k] = EOS
    return CTCReading(tokens, out_probs, spans)


class CTCPrefixScorer:
    """Log-probabilities, under the CTC branch, that a line's text starts with a growing hypothesis (one per
    row), for joint CTC-attention decoding (Watanabe et al. 2017, Algorithm 2).

    The recursions over frames are linear in log space, so each is one `logcumsumexp` instead of a loop over
    frames: a path entering character c at frame s and staying to t has log-probability
    phi[s-1] + X[t] - X[s-1], with X the cumulative log-probability of c. Frame 0 is a virtual frame before
    the first. Double precision: X grows to thousands over a long line and the differences must stay exact."""

    def __init__(self, logits: torch.Tensor, frames: torch.Tensor) -> None:
        self.lp = logits.double().log_softmax(-1)  # (B, F, V)
        b, f, _ = self.lp.shape
        zero = self.lp.new_zeros((b, 1))
        self.cum_blank = torch.cat([zero, self.lp[..., BLANK].cumsum(1)], 1)  # (B, F+1)
        self.r_n = torch.full_like(self.cum_blank, NEG_INF)  # paths of the prefix ending in its last character
        self.r_b = self.cum_blank.clone()  # ... ending in a blank: the empty prefix is all blanks
        self.psi = self.lp.new_zeros(b)
        self.last = torch.full((b,), -1, dtype=torch.long, device=logits.device)
        self.frames = frames.to(logits.device).long()
        self.valid = torch.arange(1, f + 1, device=logits.device)[None, :] <= self.frames[:, None]  # (B, F)
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None

    def end_score(self) -> torch.Tensor:
        """(B,) log-probability that the text is exactly the current prefix."""
        at_end = self.frames[:, None]
        return torch.logaddexp(self.r_n.gather(1, at_end), self.r_b.gather(1, at_end))[:, 0]

    def prefix_scores(self, cands: torch.Tensor) -> torch.Tensor:
        """(B, K) log-probability that the text starts with prefix + cands[:, k] (characters, not EOS). Keeps
        the candidates' states for `advance`."""
        x = self.lp.gather(2, cands[:, None, :].expand(-1, self.lp.size(1), -1)).transpose(1, 2)  # (B, K, F)
        cum = torch.cat([x.new_zeros(x.shape[:2] + (1,)), x.cumsum(-1)], -1)  # X: (B, K, F+1)
        phi = torch.logaddexp(self.r_b, self.r_n)[:, None, :].expand_as(cum)
        repeat = (cands == self.last[:, None])[..., None]  # a repeated character needs a blank between
        phi = torch.where(repeat, self.r_b[:, None, :].expand_as(cum), phi)
        r_n = cum[..., 1:] + torch.logcumsumexp(phi[..., :-1] - cum[..., :-1], -1)
        start = torch.full_like(cum[..., :1], NEG_INF)
        r_n = torch.cat([start, r_n], -1)
        blank = self.cum_blank[:, None, :]
        r_b = torch.cat([start, blank[..., 1:] + torch.logcumsumexp(r_n[..., :-1] - blank[..., :-1], -1)], -1)
        terms = (phi[..., :-1] + x).masked_fill(~self.valid[:, None, :], NEG_INF)
        self._pending = (r_n, r_b)
        return torch.logsumexp(terms, -1)

    def advance(self, pick: torch.Tensor, tokens: torch.Tensor, scores: torch.Tensor, moving: torch.Tensor) -> None:
        """Extend the rows in `moving` (B,) by candidate `pick` (B,) of the last `prefix_scores` call, whose
        token is `tokens` (B,) and prefix score `scores` (B,)."""
        r_n, r_b = self._pending
        rows = torch.arange(pick.size(0), device=pick.device)
        m = moving[:, None]
        self.r_n = torch.where(m, r_n[rows, pick], self.r_n)
        self.r_b = torch.where(m, r_b[rows, pick], self.r_b)
        self.psi = torch.where(moving, scores, self.psi)
        self.last = torch.where(moving, tokens, self.last)
