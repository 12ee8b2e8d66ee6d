"""Greedy decoding of MASTER, for every backend: the step caches, the step bound, the loop and the modes.

The loop (`greedy_loop`) and the mode rule (`decode_with`) take the decoder step as a function, so the
PyTorch model (`MASTER.decode`) and the onnxruntime graphs (runtime/onnx.py) run the same decoding: the same
bound, the same choice at each step (greedy or joint CTC-attention), the same CTC reading. The step itself is
composed once, in `MASTER.decoder_step`, over one of two caches: `BufferCache` (preallocated key/value
buffers, the inference fast path) or `GrowingCache` (keys/values concatenated step by step: the path that
yields attention maps, the full-recompute reference and the exported step graph's past/present).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from masterocr.charset import EOS, PAD, SOS
from masterocr.model.backbone import STRIDE
from masterocr.model.config import DECODE_MODES
from masterocr.model.ctc import FRAMES_PER_COLUMN, CTCPrefixScorer, greedy_ctc
from masterocr.model.decoder import KV
from masterocr.model.joint import joint_pick, joint_step_bound


@dataclass
class DecodeOutput:
    """Greedy decoding result; `attention` is (B, T, S) averaged over heads of the last layer, when asked;
    `spans` (B, T, 2) the first and last CTC frame of each character (ctc decoding; -1 after the text)."""

    tokens: torch.Tensor  # (B, T) without SOS, PAD after EOS
    probs: torch.Tensor  # (B, T) top probability at each step, 0 after EOS
    attention: torch.Tensor | None = None
    spans: torch.Tensor | None = None

    def __iter__(self):  # `tokens, probs = model.decode(...)`
        return iter((self.tokens, self.probs))


# The decoding-step bound of a line: a character is at least MIN_CHAR_WIDTH times the line's height wide. On
# text drawn at 0.75 of the crop height, the narrowest Latin fonts installed here (Liberation Sans Narrow,
# Beteckna Condensed) average 0.27 height per character on running English and 0.19 on "illicit filling of
# little lilies, 1111 |||"; hanzi are about 0.6. 0.15 leaves room for text drawn smaller in its crop.
# STEPS_EXTRA covers the rounding and EOS. Only keep-ratio inputs are bounded: a plainly resized crop (the word
# presets, the paper's 48x160) squeezes any text into its width, so its width says nothing of its length.
MIN_CHAR_WIDTH = 0.15
STEPS_EXTRA = 4


def step_bound(cols: torch.Tensor, img_h: int, max_len: int, keep_ratio: bool = True) -> torch.Tensor:
    """Most characters a line of `cols` valid memory columns (B,) can hold: min(max_len,
    ceil(cols * STRIDE / (MIN_CHAR_WIDTH * img_h)) + STEPS_EXTRA); max_len when not `keep_ratio`."""
    if not keep_ratio:
        return torch.full_like(cols, max_len)
    per_column = STRIDE / (MIN_CHAR_WIDTH * img_h)
    bound = torch.ceil(cols.double() * per_column).long() + STEPS_EXTRA
    return bound.clamp_max(max_len)


def greedy_pick(
    logits: torch.Tensor, done: torch.Tensor, suppress_eos: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One greedy step's choice: the top token and its probability per row (PAD and 0 for rows that have
    ended), and the rows ended so far. `suppress_eos` forbids EOS (fixed-length decoding, for benchmarks)."""
    if suppress_eos:
        logits[:, EOS] = float("-inf")
    p, nxt = logits.float().softmax(-1).max(-1)
    nxt = nxt.masked_fill(done, PAD)
    return nxt, p.masked_fill(done, 0.0), done | (nxt == EOS)


class GrowingCache:
    """Self-attention keys/values of the steps so far, concatenated at each step: `past` per layer (None
    before the first step); after a step `present` holds the grown ones."""

    def __init__(self, past: list[KV] | None = None) -> None:
        self.past = past
        self.present: list[KV] = []

    def layer(self, i: int, layer: nn.Module, x: torch.Tensor, mem_kv: KV, mask: torch.Tensor | None,
              need_weights: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decoder layer `i` over x (B, T, D); the cross-attention weights (B, heads, T, S) when asked."""
        if i == 0:
            self.present = []
        x, kv, w = layer(x, mem_kv, None if self.past is None else self.past[i], need_weights, mask)
        self.present.append(kv)
        return x, w


class BufferCache:
    """Preallocated key/value buffers (B, heads, steps, Dh) per layer, written at position `pos`: the
    inference fast path (no concatenation, no module-call overhead, no attention weights)."""

    def __init__(self, buffers: list[KV], pos: int) -> None:
        self.buffers = buffers
        self.pos = pos

    def layer(self, i: int, layer: nn.Module, x: torch.Tensor, mem_kv: KV, mask: torch.Tensor | None,
              need_weights: bool) -> tuple[torch.Tensor, None]:
        return layer.step(x[:, 0], mem_kv, self.buffers[i], self.pos, mask)[:, None], None


# a decoder step as the loop sees it: the previous tokens (B,) and the step -> logits (B, V)
StepFn = Callable[[torch.Tensor, int], torch.Tensor]


def greedy_loop(
    step_fn: StepFn, limits: torch.Tensor, suppress_eos: bool = False, scorer: CTCPrefixScorer | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The autoregressive loop: from SOS, each row stops at EOS or after `limits` (B,) steps; with a `scorer`
    each step's choice is the joint one (model/joint.py). `suppress_eos` forbids EOS in either (fixed-length
    decoding, for benchmarks). Returns tokens and probs (B, T)."""
    b, device = limits.size(0), limits.device
    last = torch.full((b,), SOS, dtype=torch.long, device=device)
    done = torch.zeros(b, dtype=torch.bool, device=device)
    tokens, probs = [], []
    for step in range(int(limits.max())):
        logits = step_fn(last, step)
        if suppress_eos:
            logits[:, EOS] = float("-inf")
        if scorer is None:
            nxt, p, done = greedy_pick(logits, done, False)
        else:
            nxt, p, done = joint_pick(logits, scorer, done)
        done = done | (limits <= step + 1)  # a row at its bound ends here
        tokens.append(nxt)
        probs.append(p)
        last = nxt
        if bool(done.all()):
            break
    return torch.stack(tokens, 1), torch.stack(probs, 1)


def decode_with(
    step_fn: StepFn,
    cols: torch.Tensor,
    ctc_logits: Callable[[], torch.Tensor],
    mode: str,
    img_h: int,
    max_len: int,
    keep_ratio: bool,
    suppress_eos: bool = False,
) -> DecodeOutput:
    """One image batch's reading in `mode`, given its decoder step, its valid memory columns (B,) and its CTC
    frame logits (asked only by the ctc and joint modes): "attention", the decoder alone; "ctc", the CTC
    branch's best path (no decoder step); "joint", attention decoding that the CTC branch rescores and bounds.
    Each row of a keep-ratio model stops after `step_bound` characters of its width."""
    if mode not in DECODE_MODES:
        raise ValueError(f"unknown decoding mode {mode!r}; use one of {', '.join(DECODE_MODES)}")
    limits = step_bound(cols, img_h, max_len, keep_ratio) + 1  # steps, EOS's too
    scorer = None
    if mode != "attention":
        frames = cols * FRAMES_PER_COLUMN
        logits = ctc_logits()
        reading = greedy_ctc(logits, frames, max_len)
        if mode == "ctc":
            return DecodeOutput(reading.tokens, reading.probs, None, reading.spans)
        lengths = (reading.tokens != PAD).sum(1) - 1
        limits = torch.minimum(limits, joint_step_bound(lengths) + 1)
        scorer = CTCPrefixScorer(logits, frames)
    tokens, probs = greedy_loop(step_fn, limits, suppress_eos, scorer)
    return DecodeOutput(tokens, probs)


def torch_step(
    model: nn.Module, memory: torch.Tensor, mask: torch.Tensor | None, steps: int, use_cache: bool,
    attention: list[torch.Tensor] | None,
) -> StepFn:
    """MASTER's decoder step for `greedy_loop`: preallocated buffers (the fast path), a growing cache (when
    `attention` is a list: each step's last-layer weights (B, S) are appended to it), or with `use_cache=False`
    the full recompute over the whole prefix (the reference the cached paths are tested against)."""
    mem_kv = model.memory_kv(memory)
    if use_cache and attention is None:
        b, cfg = memory.size(0), model.cfg
        shape = (b, cfg.nhead, steps, cfg.d_model // cfg.nhead)
        buffers = [(memory.new_empty(shape), memory.new_empty(shape)) for _ in model.decoder]
        return lambda last, step: model._cached_step(last, mem_kv, buffers, step, mask)
    state: dict = {"cache": None, "prefix": None}

    def step_fn(last: torch.Tensor, step: int) -> torch.Tensor:
        if use_cache:
            logits, state["cache"], w = model.decode_step(last[:, None], mem_kv, state["cache"], step,
                                                          attention is not None, mask)
        else:
            prev = state["prefix"]
            state["prefix"] = last[:, None] if prev is None else torch.cat([prev, last[:, None]], 1)
            logits, _, w = model.decode_step(state["prefix"], mem_kv, None, 0, attention is not None, mask)
        if attention is not None:
            attention.append(w)
        return logits

    return step_fn


def row_major(weights: torch.Tensor, rows: int, cols: int, column_major: bool) -> torch.Tensor:
    """Attention (..., S) over a column-major memory -> the row-major (rows x cols) order maps are read in."""
    if not column_major:
        return weights
    return weights.reshape(*weights.shape[:-1], cols, rows).transpose(-1, -2).reshape(weights.shape)
