"""Grow a trained model into a deeper one that starts out computing the same function.

Training a larger preset from scratch throws away what a smaller one has learned. Instead, the deeper model
keeps every trained tensor, and each layer it adds starts as an identity:
- a new backbone block (appended to its stage, after the trained ones) has its last BatchNorm's scale and
  shift at zero, so the block returns relu(x) = x (its input already passed a ReLU);
- a new decoder layer (appended after the trained ones) has the output projections of both attentions and of
  its feed-forward at zero, so each pre-norm residual branch adds nothing.
Gradients still reach the zeroed tensors, so the new layers start learning at the first step.
"""

from __future__ import annotations

import dataclasses

import torch

from masterocr.model.config import MasterConfig
from masterocr.model.master import MASTER

# the fields that may differ between the source and the grown config: the rest must match for tensors to carry
GROWABLE = ("blocks", "num_decoder_layers")


def _check_growable(src: MasterConfig, dst: MasterConfig) -> None:
    for field in dataclasses.fields(MasterConfig):
        if field.name not in GROWABLE and getattr(src, field.name) != getattr(dst, field.name):
            raise ValueError(
                f"cannot grow: {field.name} differs ({getattr(src, field.name)!r} -> {getattr(dst, field.name)!r}); "
                f"only {', '.join(GROWABLE)} may grow"
            )
    if any(d < s for s, d in zip(src.blocks, dst.blocks)) or dst.num_decoder_layers < src.num_decoder_layers:
        raise ValueError(
            f"cannot grow blocks {src.blocks} x {src.num_decoder_layers} decoder layers into "
            f"{dst.blocks} x {dst.num_decoder_layers}: a grown model has at least as many of each"
        )


def _rename_backbone_key(key: str, src: MasterConfig, dst: MasterConfig) -> str:
    """A stage is (pool, block 1..n, conv-BN-ReLU): the closing conv-BN-ReLU moves from index n+1 to n'+1."""
    parts = key.split(".")
    if parts[:2] != ["backbone", "stages"]:
        return key
    stage, index = int(parts[2]), int(parts[3])
    if index == src.blocks[stage] + 1:
        parts[3] = str(dst.blocks[stage] + 1)
    return ".".join(parts)


def grow_state_dict(
    state: dict[str, torch.Tensor], src: MasterConfig, dst: MasterConfig, num_classes: int, seed: int = 0
) -> dict[str, torch.Tensor]:
    """The state dict of a `dst` model that holds `state` (a `src` model's) and identity-initialised new layers.

    `dst` may differ from `src` only in `blocks` (per stage, at least as many) and `num_decoder_layers` (at
    least as many). The new layers' other tensors get the model's usual random init, seeded by `seed`.
    """
    _check_growable(src, dst)
    with torch.random.fork_rng(devices=[]):  # seed the new layers without touching the caller's RNG
        torch.manual_seed(seed)
        grown = MASTER(dst, num_classes).state_dict()
    carried = {_rename_backbone_key(k, src, dst): v for k, v in state.items()}
    unknown = sorted(set(carried) - set(grown))
    if unknown:
        raise ValueError(f"cannot grow: the source state has tensors the {dst} model lacks: {unknown[:4]}")
    for key, value in carried.items():
        if grown[key].shape != value.shape:
            want = tuple(grown[key].shape)
            raise ValueError(f"cannot grow: {key} is {tuple(value.shape)}, the grown model wants {want}")
        grown[key] = value.clone()
    for stage, (n_src, n_dst) in enumerate(zip(src.blocks, dst.blocks)):
        for index in range(n_src + 1, n_dst + 1):
            grown[f"backbone.stages.{stage}.{index}.bn2.weight"].zero_()
            grown[f"backbone.stages.{stage}.{index}.bn2.bias"].zero_()
    for layer in range(src.num_decoder_layers, dst.num_decoder_layers):
        for name in ("self_attn.out_proj", "cross_attn.out_proj", "ffn.3"):
            grown[f"decoder.{layer}.{name}.weight"].zero_()
            grown[f"decoder.{layer}.{name}.bias"].zero_()
    return grown


def carry_classes(
    state: dict[str, torch.Tensor], src_keys: str, dst_keys: str, fresh: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """`state` with its class rows (embedding, generator) re-indexed from charset `src_keys` to `dst_keys`.

    The specials (PAD, EOS, SOS, UNK: ids 0-3) and every character both charsets hold keep their trained row;
    the new characters keep the rows of `fresh` (a freshly initialised state dict of the destination model)."""
    specials = 4
    src_index = {ch: specials + i for i, ch in enumerate(src_keys)}
    rows = [(i, i) for i in range(specials)]
    rows += [(specials + j, src_index[ch]) for j, ch in enumerate(dst_keys) if ch in src_index]
    dst_ids = torch.tensor([d for d, _ in rows])
    src_ids = torch.tensor([s for _, s in rows])
    out = dict(state)
    for key in ("embed.weight", "generator.weight", "generator.bias"):
        table = fresh[key].clone()
        table[dst_ids] = state[key][src_ids].to(table.dtype)
        out[key] = table
    return out
