"""Pre-norm Transformer layers with a key/value cache for greedy decoding.

The decoder is pre-LN (LayerNorm before each sublayer, one final LayerNorm), as in MASTER. Every layer owns
its norms; the original shared one LayerNorm module across all of them, a quirk we do not copy.

Queries/keys/values of self-attention are one Linear (`qkv`), the memory's keys/values another (`kv_proj`): one
GEMM instead of three or two. `DecoderLayer.forward` serves training, full recompute and ONNX export;
`DecoderLayer.step` is greedy decoding's fast path (one position, preallocated key/value buffers, no dropout).
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


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool,
    need_weights: bool,
    dropout: float,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scaled dot-product attention over (B, H, T, Dh) heads; returns (B, T, H * Dh) and, when asked, the
    attention weights (B, H, T, S). `mask` (B, 1, 1, S) bool, True where a key may be attended (the valid
    memory positions of a padded batch); not combined with `causal`."""
    weights = None
    if need_weights:  # explicit path: the attention map is wanted (e.g. to show it in the web page)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))
        if causal:
            t, s = scores.shape[-2:]
            scores = scores.masked_fill(torch.ones(t, s, dtype=torch.bool, device=q.device).triu(1), -1e9)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = scores.softmax(-1)
        out = weights @ v
    elif mask is not None:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
    else:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal, dropout_p=dropout)
    b, h, t, dh = out.shape
    return out.transpose(1, 2).reshape(b, t, h * dh), weights


def _split_heads(x: torch.Tensor, nhead: int, parts: int) -> tuple[torch.Tensor, ...]:
    """(B, T, parts * D) -> `parts` tensors of (B, H, T, Dh)."""
    b, t, d = x.shape
    return x.view(b, t, parts, nhead, d // (parts * nhead)).permute(2, 0, 3, 1, 4).unbind(0)


def _xavier_blocks(weight: torch.Tensor, blocks: int) -> None:
    """Xavier-uniform init of each (D, D) block of a fused projection, as if they were separate matrices
    (the original initialised q, k and v one by one)."""
    for block in weight.data.chunk(blocks, dim=0):
        nn.init.xavier_uniform_(block)


class _FusedProjection(nn.Module):
    """An attention whose Linear `FUSED` stacks the Linears `SEPARATE` of the separate-projection layout (the
    layout masterocr 0.1.0 wrote): each block is initialised like its own matrix, and state dicts in that
    layout are concatenated on load."""

    FUSED: str
    SEPARATE: tuple[str, ...]

    def reset_blocks(self) -> None:
        _xavier_blocks(getattr(self, self.FUSED).weight, len(self.SEPARATE))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self.fuse_separate(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @classmethod
    def fuse_separate(cls, state_dict: dict, prefix: str) -> None:
        """In place: the SEPARATE tensors under `prefix` (if all there) become the FUSED one."""
        for kind in ("weight", "bias"):
            keys = [f"{prefix}{name}.{kind}" for name in cls.SEPARATE]
            if all(k in state_dict for k in keys):
                state_dict[f"{prefix}{cls.FUSED}.{kind}"] = torch.cat([state_dict.pop(k) for k in keys])


def fuse_separate_projections(state_dict: dict) -> dict:
    """A copy of a state dict with separate q/k/v projections fused, for code that compares keys before
    loading (finetuning keeps the tensors whose name and shape match)."""
    state = dict(state_dict)
    for key in [k for k in state if k.endswith(".k_proj.weight")]:  # every separate-layout attention has a k_proj
        prefix = key.removesuffix("k_proj.weight")
        (CrossAttention if prefix.endswith(".cross_attn.") else SelfAttention).fuse_separate(state, prefix)
    return state


class SelfAttention(_FusedProjection):
    """Multi-head self-attention; queries, keys and values come from one fused projection (one GEMM)."""

    FUSED, SEPARATE = "qkv", ("q_proj", "k_proj", "v_proj")

    def __init__(self, d_model: int, nhead: int, dropout: float) -> None:
        super().__init__()
        self.nhead = nhead
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, T, D) -> queries, keys, values (B, H, T, Dh)."""
        return _split_heads(self.qkv(x), self.nhead, 3)  # type: ignore[return-value]

    def forward(
        self, x: torch.Tensor, past: KV | None = None, causal: bool = False, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, KV]:
        """Attend over `past` keys/values (if any) and x's own; returns the output and the keys/values so far.
        `mask` (B, 1, 1, T) bool: the keys that may be attended (the encoder's valid memory positions)."""
        q, k, v = self.project(x)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        drop = self.dropout if self.training else 0.0
        return self.out_proj(attend(q, k, v, causal, False, drop, mask)[0]), (k, v)


class CrossAttention(_FusedProjection):
    """Multi-head attention over the memory; its keys/values are projected once per image (one fused GEMM)."""

    FUSED, SEPARATE = "kv_proj", ("k_proj", "v_proj")

    def __init__(self, d_model: int, nhead: int, dropout: float) -> None:
        super().__init__()
        self.nhead = nhead
        self.q_proj = nn.Linear(d_model, d_model)
        self.kv_proj = nn.Linear(d_model, 2 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def project_kv(self, memory: torch.Tensor) -> KV:
        """memory (B, S, D) -> keys, values (B, H, S, Dh)."""
        return _split_heads(self.kv_proj(memory), self.nhead, 2)  # type: ignore[return-value]

    def forward(
        self, x: torch.Tensor, memory_kv: KV, need_weights: bool = False, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`mask` (B, 1, 1, S) bool: the memory positions that may be attended (None: all)."""
        (q,) = _split_heads(self.q_proj(x), self.nhead, 1)
        drop = self.dropout if self.training else 0.0
        out, weights = attend(q, memory_kv[0], memory_kv[1], False, need_weights, drop, mask)
        return self.out_proj(out), weights


class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, d_ff: int, dropout: float) -> None:
        super().__init__(nn.Linear(d_model, d_ff), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(d_ff, d_model))


class EncoderLayer(nn.Module):
    """Pre-norm self-attention + FFN over the memory (used only with `with_encoder`)."""

    def __init__(self, d_model: int, nhead: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, nhead, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), mask=mask)[0])
        return x + self.drop(self.ffn(self.norm2(x)))


class DecoderLayer(nn.Module):
    """Pre-norm masked self-attention, cross-attention over the memory, FFN."""

    def __init__(self, d_model: int, nhead: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.self_attn = SelfAttention(d_model, nhead, dropout)
        self.cross_attn = CrossAttention(d_model, nhead, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        memory_kv: KV,
        past: KV | None = None,
        need_weights: bool = False,
        memory_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, KV, torch.Tensor | None]:
        """x: (B, T, D). With `past` the new positions attend to the cached ones (T is then the new steps).
        `memory_mask` (B, 1, 1, S) bool: the memory positions cross-attention may use (None: all).

        Returns the output, the self-attention keys/values to cache, and the cross-attention weights when
        asked (B, heads, T, S).
        """
        if past is not None and x.size(1) != 1:
            raise ValueError("cached decoding advances one position at a time")
        # a single new step attends to every cached position: it needs no mask
        attn_out, kv = self.self_attn(self.norm1(x), past, causal=past is None)
        x = x + self.drop(attn_out)
        attn_out, weights = self.cross_attn(self.norm2(x), memory_kv, need_weights, memory_mask)
        x = x + self.drop(attn_out)
        x = x + self.drop(self.ffn(self.norm3(x)))
        return x, kv, weights

    def step(
        self, x: torch.Tensor, memory_kv: KV, cache: KV, pos: int, memory_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Inference fast path for one new position: x (B, D); `cache` holds preallocated keys/values
        (B, H, max_steps, Dh) and this step's are written at `pos`. No dropout, no attention weights."""
        sa, ca, ffn = self.self_attn, self.cross_attn, self.ffn
        q, k, v = _split_heads(fast_linear(sa.qkv, fast_layer_norm(self.norm1, x)).unsqueeze(1), sa.nhead, 3)
        cache[0][:, :, pos : pos + 1] = k
        cache[1][:, :, pos : pos + 1] = v
        out = F.scaled_dot_product_attention(q, cache[0][:, :, : pos + 1], cache[1][:, :, : pos + 1])
        x = x + fast_linear(sa.out_proj, out.flatten(1))
        (q,) = _split_heads(fast_linear(ca.q_proj, fast_layer_norm(self.norm2, x)).unsqueeze(1), ca.nhead, 1)
        out = F.scaled_dot_product_attention(q, memory_kv[0], memory_kv[1], attn_mask=memory_mask)
        x = x + fast_linear(ca.out_proj, out.flatten(1))
        return x + fast_linear(ffn[-1], F.relu(fast_linear(ffn[0], fast_layer_norm(self.norm3, x))))


# The cached step makes ~40 module calls for a few microseconds of arithmetic each at batch 1; going around
# nn.Module.__call__ (hook bookkeeping) saves a fifth of the step on a CPU. Quantized Linears keep their call.
def fast_linear(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x, layer.weight, layer.bias) if type(layer) is nn.Linear else layer(x)


def fast_layer_norm(layer: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, layer.normalized_shape, layer.weight, layer.bias, layer.eps)
