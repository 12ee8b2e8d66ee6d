"""Pre-norm Transformer layers with a key/value cache for greedy decoding.

The decoder is pre-LN (LayerNorm before each sublayer, one final LayerNorm), as in MASTER. Every layer owns
its norms; the original shared one LayerNorm module across all of them, a quirk we do not copy.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

KV = tuple[torch.Tensor, torch.Tensor]  # keys, values: (B, heads, S, head_dim)


class PositionalEncoding(nn.Module):
    """Sinusoidal positions added to a sequence, then dropout."""

    def __init__(self, d_model: int, dropout: float, max_positions: int = 5000) -> None:
        super().__init__()
        pos = torch.arange(max_positions).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_positions, d_model)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.register_buffer("pe", pe, persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        return self.dropout(x + self.pe[offset : offset + x.size(1)])


class Attention(nn.Module):
    """Multi-head attention through scaled_dot_product_attention; keys/values can be projected once."""

    def __init__(self, d_model: int, nhead: int, dropout: float) -> None:
        super().__init__()
        self.nhead = nhead
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.nhead, d // self.nhead).transpose(1, 2)  # (B, H, T, Dh)

    def project_kv(self, x: torch.Tensor) -> KV:
        return self._heads(self.k_proj(x)), self._heads(self.v_proj(x))

    def forward(
        self, x: torch.Tensor, kv: KV, causal: bool = False, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        q = self._heads(self.q_proj(x))
        k, v = kv
        weights = None
        if need_weights:  # explicit path: the attention map is wanted (e.g. to show it in the web page)
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))
            if causal:
                t, s = scores.shape[-2:]
                scores = scores.masked_fill(torch.ones(t, s, dtype=torch.bool, device=q.device).triu(1), -1e9)
            weights = scores.softmax(-1)
            out = weights @ v
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, is_causal=causal, dropout_p=self.dropout if self.training else 0.0
            )
        b, h, t, dh = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, t, h * dh)), weights


class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, d_ff: int, dropout: float) -> None:
        super().__init__(nn.Linear(d_model, d_ff), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(d_ff, d_model))


class EncoderLayer(nn.Module):
    """Pre-norm self-attention + FFN over the memory (used only with `with_encoder`)."""

    def __init__(self, d_model: int, nhead: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = Attention(d_model, nhead, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.drop(self.attn(h, self.attn.project_kv(h))[0])
        return x + self.drop(self.ffn(self.norm2(x)))


class DecoderLayer(nn.Module):
    """Pre-norm masked self-attention, cross-attention over the memory, FFN."""

    def __init__(self, d_model: int, nhead: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.self_attn = Attention(d_model, nhead, dropout)
        self.cross_attn = Attention(d_model, nhead, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, memory_kv: KV, past: KV | None = None, need_weights: bool = False
    ) -> tuple[torch.Tensor, KV, torch.Tensor | None]:
        """x: (B, T, D). With `past` the new positions attend to the cached ones (T is then the new steps).

        Returns the output, the self-attention keys/values to cache, and the cross-attention weights when
        asked (B, heads, T, S).
        """
        h = self.norm1(x)
        k, v = self.self_attn.project_kv(h)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        if past is not None and x.size(1) != 1:
            raise ValueError("cached decoding advances one position at a time")
        # a single new step attends to every cached position: it needs no mask
        x = x + self.drop(self.self_attn(h, (k, v), causal=past is None)[0])
        attn_out, weights = self.cross_attn(self.norm2(x), memory_kv, need_weights=need_weights)
        x = x + self.drop(attn_out)
        x = x + self.drop(self.ffn(self.norm3(x)))
        return x, (k, v), weights
