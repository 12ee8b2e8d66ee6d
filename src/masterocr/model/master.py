"""MASTER = backbone with GCA -> positional memory (-> optional encoder) -> Transformer decoder -> generator."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from masterocr.charset import EOS, PAD, SOS
from masterocr.model.backbone import STRIDE, Backbone
from masterocr.model.config import DECODE_MODES, MasterConfig
from masterocr.model.ctc import FRAMES_PER_COLUMN, CTCHead, CTCPrefixScorer, greedy_ctc
from masterocr.model.decoder import (
    KV,
    CrossAttention,
    DecoderLayer,
    EncoderLayer,
    PositionalEncoding,
    SelfAttention,
    fast_layer_norm,
    fast_linear,
)
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


def _stack(layer: nn.Module, n: int, share: bool) -> nn.ModuleList:
    """n layers; with `share` the same module n times (the original's share_parameter)."""
    return nn.ModuleList([layer] * n if share else [copy.deepcopy(layer) for _ in range(n)])


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


class MASTER(nn.Module):
    """`exportable=True` builds the export-safe form (for masterocr.export): GCA with static layer-norm shapes
    and positional tables cut to the positions the graphs reach (the memory's length and max_len + 1 steps;
    the full 5,000-row tables would be 3.8 MB of constants per graph at d_model 192). Same parameters either way."""

    def __init__(self, cfg: MasterConfig, num_classes: int, exportable: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_classes = num_classes
        d = cfg.d_model
        self.backbone = Backbone(cfg, exportable)
        positions = (cfg.memory_len, cfg.max_len + 1) if exportable else (5000, 5000)
        self.memory_pos = PositionalEncoding(d, cfg.dropout, positions[0])
        self.encoder = None
        if cfg.with_encoder:  # built only when asked: the original always built it and never used it
            enc = EncoderLayer(d, cfg.nhead, cfg.d_ff, cfg.dropout)
            self.encoder = _stack(enc, cfg.num_encoder_layers, cfg.share_parameter)
            self.encoder_norm = nn.LayerNorm(d)
        self.embed = nn.Embedding(num_classes, d)
        self.token_pos = PositionalEncoding(d, cfg.dropout, positions[1])
        dec = DecoderLayer(d, cfg.nhead, cfg.d_ff, cfg.dropout)
        self.decoder = _stack(dec, cfg.num_decoder_layers, cfg.share_parameter)
        self.decoder_norm = nn.LayerNorm(d)
        self.generator = nn.Linear(d, num_classes)
        self.ctc = CTCHead(d, cfg.img_h // 8, num_classes) if cfg.ctc_weight > 0 else None
        # the original applies Xavier to every matrix, convolutions included, after the backbone's Kaiming init
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for m in self.modules():  # fused q/k/v projections: each block initialised as its own matrix
            if isinstance(m, (SelfAttention, CrossAttention)):
                m.reset_blocks()

    # encoder side -----------------------------------------------------------------------------------------------
    def encode(self, images: torch.Tensor, widths: torch.Tensor | None = None) -> torch.Tensor:
        """images (B, C, H, W) -> memory (B, H/8 * W/4, D).

        Fixed-width models flatten the feature map row by row (the original's order). `variable_width` models
        flatten it column by column, so that a position's index (and its positional encoding) does not depend
        on the batch's width and the valid positions of a right-padded line are a prefix; `widths` (B,) are
        then the valid widths in pixels (None: the whole tensor)."""
        if self.cfg.variable_width:
            feat = self.backbone(images, widths)
            seq = feat.permute(0, 3, 2, 1).flatten(1, 2)  # (B, W/4 * H/8, D): column-major
        else:
            seq = self.backbone(images).flatten(2).transpose(1, 2)  # (B, H/8 * W/4, D): row-major
        memory = self.memory_pos(seq)
        if self.encoder is not None:
            mask = self.memory_mask(images, widths)
            for layer in self.encoder:
                memory = layer(memory, mask)
            memory = self.encoder_norm(memory)
        return memory

    def memory_columns(self, images: torch.Tensor, widths: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) valid memory columns of each image (all W/4 when `widths` is None)."""
        if widths is None:
            return torch.full((images.size(0),), images.size(-1) // STRIDE, dtype=torch.long, device=images.device)
        return self.backbone.output_widths(widths.to(images.device).long())

    def memory_mask(
        self, images: torch.Tensor, widths: torch.Tensor | None, always: bool = False
    ) -> torch.Tensor | None:
        """(B, 1, 1, S) bool, True on the memory positions of each image's valid columns. None without widths
        or when every position is valid (unmasked attention is a fifth faster per step on a CPU), unless
        `always` (the export, whose graph must not depend on the batch)."""
        if widths is None or not self.cfg.variable_width:
            return None
        rows, cols = images.size(-2) // 8, self.memory_columns(images, widths)
        total = rows * (images.size(-1) // STRIDE)
        if not always and bool((cols * rows >= total).all()):
            return None
        positions = torch.arange(total, device=images.device)
        return (positions[None, :] < (cols * rows)[:, None])[:, None, None, :]

    def memory_kv(self, memory: torch.Tensor) -> list[KV]:
        """Cross-attention keys/values of the memory, once per image, for every decoder layer."""
        return [layer.cross_attn.project_kv(memory) for layer in self.decoder]

    def ctc_logits(self, memory: torch.Tensor) -> torch.Tensor:
        """The CTC branch's frame logits (B, F, V) of a memory (blank = PAD)."""
        if self.ctc is None:
            raise ValueError("this model has no CTC branch (ctc_weight 0); decode with mode='attention'")
        return self.ctc(memory, self.cfg.variable_width)

    def ctc_frames(self, images: torch.Tensor, widths: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) valid CTC frames of each image."""
        return self.memory_columns(images, widths) * FRAMES_PER_COLUMN

    # decoder side -----------------------------------------------------------------------------------------------
    def _embed(self, tokens: torch.Tensor, offset: int = 0) -> torch.Tensor:
        return self.token_pos(self.embed(tokens) * math.sqrt(self.cfg.d_model), offset)

    def decode_step(
        self,
        tokens: torch.Tensor,
        mem_kv: list[KV],
        cache: list[KV] | None,
        offset: int,
        need_weights: bool = False,
        memory_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[KV], torch.Tensor | None]:
        """Run the decoder over `tokens` (B, T) starting at position `offset`; returns logits of the last
        position (B, V), the updated self-attention cache and the last layer's cross-attention (B, S)."""
        x = self._embed(tokens, offset)
        new_cache, weights = [], None
        for i, layer in enumerate(self.decoder):
            last = i == len(self.decoder) - 1
            past = None if cache is None else cache[i]
            x, kv, w = layer(x, mem_kv[i], past, need_weights and last, memory_mask)
            new_cache.append(kv)
            if w is not None:
                weights = w[:, :, -1].mean(1)  # (B, S): heads averaged, last position
        return self.generator(self.decoder_norm(x[:, -1])), new_cache, weights

    def _cached_step(
        self, tokens: torch.Tensor, mem_kv: list[KV], caches: list[KV], pos: int, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Inference fast path: tokens (B,) at position `pos` -> logits (B, V), through preallocated caches."""
        x = self.embed(tokens) * math.sqrt(self.cfg.d_model) + self.token_pos.pe[pos]
        for layer, kv, cache in zip(self.decoder, mem_kv, caches):
            x = layer.step(x, kv, cache, pos, mask)
        return fast_linear(self.generator, fast_layer_norm(self.decoder_norm, x))

    def forward(
        self, images: torch.Tensor, targets: torch.Tensor, widths: torch.Tensor | None = None, masked: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Teacher forcing. targets (B, T) = [SOS] text [EOS] PAD...; returns logits (B, T-1, V) that
        predict targets[:, 1:]. `widths` (B,): valid pixel widths of a right-padded variable-width batch.
        `masked=True` returns `training_outputs` instead (through forward, so that DDP sees the call)."""
        if masked:
            return self.training_outputs(images, targets, widths)
        return self.generator(self.decoder_states(images, targets, widths))

    def decoder_states(
        self, images: torch.Tensor, targets: torch.Tensor, widths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The final decoder states (B, T-1, D) of teacher forcing, before the generator."""
        return self._teacher_states(self.encode(images, widths), images, targets, widths)

    def _teacher_states(
        self, memory: torch.Tensor, images: torch.Tensor, targets: torch.Tensor, widths: torch.Tensor | None
    ) -> torch.Tensor:
        mem_kv = self.memory_kv(memory)
        mask = self.memory_mask(images, widths)
        x = self._embed(targets[:, :-1])
        for i, layer in enumerate(self.decoder):
            x, _, _ = layer(x, mem_kv[i], memory_mask=mask)
        return self.decoder_norm(x)

    def masked_logits(
        self, images: torch.Tensor, targets: torch.Tensor, widths: torch.Tensor | None = None, pad: int = PAD
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, V) of the N non-pad target positions only and their targets (N,): the same loss as
        `forward` with ignore_index=pad, without projecting the padding onto the whole charset."""
        logits, gold, _ = self.training_outputs(images, targets, widths, pad)
        return logits, gold

    def training_outputs(
        self, images: torch.Tensor, targets: torch.Tensor, widths: torch.Tensor | None = None, pad: int = PAD
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One encoder pass for both losses: the decoder's logits (N, V) at the N non-pad target positions,
        their targets (N,), and the CTC branch's frame logits (B, F, V) (None without the branch)."""
        memory = self.encode(images, widths)
        states = self._teacher_states(memory, images, targets, widths)
        gold = targets[:, 1:]
        keep = gold != pad
        ctc = self.ctc_logits(memory) if self.ctc is not None else None
        return self.generator(states[keep]), gold[keep], ctc

    @torch.no_grad()
    def decode(
        self,
        images: torch.Tensor,
        max_len: int | None = None,
        use_cache: bool = True,
        suppress_eos: bool = False,
        return_attention: bool = False,
        widths: torch.Tensor | None = None,
        mode: str | None = None,
    ) -> DecodeOutput:
        """Greedy decoding of up to max_len characters plus EOS; stops once every sequence has ended.

        `mode` (default: the config's `decode`): "attention", the decoder alone; "ctc", the CTC branch's best
        path in one pass (with each character's frame span); "joint", attention decoding that the CTC branch
        rescores and bounds (model/joint.py). Each row of a keep-ratio model stops after `step_bound`
        characters of its width (no runaway on a blank or noisy line); plainly resized crops (the word presets)
        run to max_len. `widths` (B,): valid pixel widths of a right-padded variable-width batch.
        `use_cache=False` is the reference that re-runs the decoder over the whole prefix at every step.
        `suppress_eos` forbids EOS (fixed-length decoding, for benchmarks).
        """
        mode = self.cfg.decode if mode is None else mode
        if mode not in DECODE_MODES:
            raise ValueError(f"unknown decoding mode {mode!r}; use one of {', '.join(DECODE_MODES)}")
        max_len = self.cfg.max_len if max_len is None else max_len
        memory = self.encode(images, widths)
        cols = self.memory_columns(images, widths)
        limits = step_bound(cols, self.cfg.img_h, max_len, self.cfg.keep_ratio) + 1  # steps, EOS's too
        scorer = None
        if mode != "attention":
            frames = cols * FRAMES_PER_COLUMN
            ctc_logits = self.ctc_logits(memory)
            reading = greedy_ctc(ctc_logits, frames, max_len)
            if mode == "ctc":
                return DecodeOutput(reading.tokens, reading.probs, None, reading.spans)
            lengths = (reading.tokens != PAD).sum(1) - 1
            limits = torch.minimum(limits, joint_step_bound(lengths) + 1)
            scorer = CTCPrefixScorer(ctc_logits, frames)
        return self._greedy(memory, images, widths, limits, use_cache, suppress_eos, return_attention, scorer)

    def _greedy(
        self, memory: torch.Tensor, images: torch.Tensor, widths: torch.Tensor | None, limits: torch.Tensor,
        use_cache: bool, suppress_eos: bool, return_attention: bool, scorer: CTCPrefixScorer | None,
    ) -> DecodeOutput:
        """The autoregressive loop: each row stops at EOS or after `limits` steps; with a `scorer` each step's
        choice is the joint one."""
        mem_kv = self.memory_kv(memory)
        mask = self.memory_mask(images, widths)
        steps = int(limits.max())
        b = images.size(0)
        prefix = torch.full((b, 1), SOS, dtype=torch.long, device=images.device)  # grows only without the cache
        last = prefix[:, 0]
        done = torch.zeros(b, dtype=torch.bool, device=images.device)
        tokens, probs, attns = [], [], []
        cache, caches, w = None, None, None
        if use_cache and not return_attention:  # fast path: keys/values written into preallocated buffers
            shape = (b, self.cfg.nhead, steps, self.cfg.d_model // self.cfg.nhead)
            caches = [(memory.new_empty(shape), memory.new_empty(shape)) for _ in self.decoder]
        for step in range(steps):
            if caches is not None:  # the fast path: preallocated buffers, no module-call overhead
                logits = self._cached_step(last, mem_kv, caches, step, mask)
            elif use_cache:  # the growing cache: the path that also yields the attention maps
                logits, cache, w = self.decode_step(last.unsqueeze(1), mem_kv, cache, step, return_attention, mask)
            else:  # the full recompute: the reference the cached paths are tested against
                logits, _, w = self.decode_step(prefix, mem_kv, None, 0, return_attention, mask)
            if scorer is None:
                nxt, p, done = greedy_pick(logits, done, suppress_eos)
            else:
                nxt, p, done = joint_pick(logits, scorer, done)
            done = done | (limits <= step + 1)  # a row at its bound ends here
            tokens.append(nxt)
            probs.append(p)
            if w is not None:
                attns.append(self._row_major(w, images))
            last = nxt
            if not use_cache:
                prefix = torch.cat([prefix, nxt.unsqueeze(1)], dim=1)
            if bool(done.all()):
                break
        attention = torch.stack(attns, 1) if attns else None
        return DecodeOutput(torch.stack(tokens, 1), torch.stack(probs, 1), attention)

    def _row_major(self, weights: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """Attention (B, S) over a column-major memory -> the row-major (H/8 x W/4) order maps are read in."""
        if not self.cfg.variable_width:
            return weights
        rows, cols = images.size(-2) // 8, images.size(-1) // STRIDE
        return weights.reshape(-1, cols, rows).transpose(1, 2).reshape(weights.shape)
