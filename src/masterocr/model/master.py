"""MASTER = backbone with GCA -> positional memory (-> optional encoder) -> Transformer decoder -> generator."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from masterocr.charset import PAD
from masterocr.model.backbone import STRIDE, Backbone
from masterocr.model.config import MasterConfig
from masterocr.model.ctc import FRAMES_PER_COLUMN, CTCHead
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
from masterocr.model.decoding import (
    BufferCache,
    DecodeOutput,
    GrowingCache,
    decode_with,
    row_major,
    step_bound,
    torch_step,
)


def _stack(layer: nn.Module, n: int, share: bool) -> nn.ModuleList:
    """n layers; with `share` the same module n times (the original's share_parameter)."""
    return nn.ModuleList([layer] * n if share else [copy.deepcopy(layer) for _ in range(n)])


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

    def decoder_step(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor,
        mem_kv: list[KV],
        cache: GrowingCache | BufferCache,
        memory_mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The one composition of a decoder step, for every path that decodes (the cached loops, the full
        recompute, the exported step graph): tokens (B, T) with their positional rows (T, D) or (1, D) ->
        logits of the last position (B, V) and, when asked, the last layer's cross-attention of the last
        position averaged over heads (B, S). `cache` says how self-attention keeps the earlier steps."""
        x = self.embed(tokens) * math.sqrt(self.cfg.d_model) + positions  # dropout is the identity in eval
        weights = None
        last = len(self.decoder) - 1
        for i, layer in enumerate(self.decoder):
            x, w = cache.layer(i, layer, x, mem_kv[i], memory_mask, need_weights and i == last)
            if w is not None:
                weights = w[:, :, -1].mean(1)
        return fast_linear(self.generator, fast_layer_norm(self.decoder_norm, x[:, -1])), weights

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
        position (B, V), the grown self-attention cache and the last layer's cross-attention (B, S)."""
        grown = GrowingCache(cache)
        positions = self.token_pos.pe[offset : offset + tokens.size(1)]
        logits, weights = self.decoder_step(tokens, positions, mem_kv, grown, memory_mask, need_weights)
        return logits, grown.present, weights

    def _cached_step(
        self, tokens: torch.Tensor, mem_kv: list[KV], caches: list[KV], pos: int, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Inference fast path: tokens (B,) at position `pos` -> logits (B, V), through preallocated caches."""
        positions = self.token_pos.pe[pos : pos + 1]
        return self.decoder_step(tokens[:, None], positions, mem_kv, BufferCache(caches, pos), mask)[0]

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
        rescores and bounds (model/joint.py); the rule is model/decoding.py's `decode_with`. Each row of a
        keep-ratio model stops after `step_bound` characters of its width (no runaway on a blank or noisy
        line); plainly resized crops (the word presets) run to max_len. `widths` (B,): valid pixel widths of a
        right-padded variable-width batch. `use_cache=False` is the reference that re-runs the decoder over the
        whole prefix at every step. `suppress_eos` forbids EOS (fixed-length decoding, for benchmarks).
        `return_attention`: the last layer's cross-attention maps (B, T, H/8 * W/4, row-major).
        """
        mode = self.cfg.decode if mode is None else mode
        max_len = self.cfg.max_len if max_len is None else max_len
        memory = self.encode(images, widths)
        cols = self.memory_columns(images, widths)
        maps: list[torch.Tensor] | None = [] if return_attention else None
        steps = int(step_bound(cols, self.cfg.img_h, max_len, self.cfg.keep_ratio).max()) + 1
        step_fn = torch_step(self, memory, self.memory_mask(images, widths), steps, use_cache, maps)
        out = decode_with(step_fn, cols, lambda: self.ctc_logits(memory), mode, self.cfg.img_h, max_len,
                          self.cfg.keep_ratio, suppress_eos)  # fmt: skip
        if maps:
            rows, width = images.size(-2) // 8, images.size(-1) // STRIDE
            out.attention = row_major(torch.stack(maps, 1), rows, width, self.cfg.variable_width)
        return out
