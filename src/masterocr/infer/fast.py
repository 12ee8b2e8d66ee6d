"""Inference-only speedups for MASTER on CPU, each applied to a copy of the model.

* `fold_conv_bn`: every conv -> BatchNorm2d pair of the backbone becomes one conv with a bias (exact up to
  float rounding in eval mode, since BN then is a fixed per-channel affine map).
* channels_last memory format for the backbone (oneDNN convolutions prefer NHWC).
* dynamic int8 quantization of the decoder's and generator's Linear layers (weights int8, activations
  quantized per call); changes the numbers slightly, so accuracy is checked in the benchmark.
* `torch.compile` of the encoder (inductor); the first call pays the compilation.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from masterocr.model import MASTER


def _fuse(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A conv equal to bn(conv(x)) with running statistics."""
    fused = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
        conv.groups, bias=True, padding_mode=conv.padding_mode,
    )  # fmt: skip
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return fused.to(conv.weight.device, conv.weight.dtype)


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (
        isinstance(conv, nn.Conv2d)
        and isinstance(bn, nn.BatchNorm2d)
        and bn.track_running_stats
        and bn.running_mean is not None
        and bn.affine
        and bn.num_features == conv.out_channels
    )


def fold_conv_bn(model: MASTER) -> MASTER:
    """An eval copy of the model with every backbone conv->BatchNorm2d pair fused into one conv.

    Pairs: consecutive entries of an nn.Sequential (stem, the conv-BN-ReLU after each stage, downsample) and
    conv1/bn1, conv2/bn2 of each BasicBlock. The BN is replaced by nn.Identity.
    """
    from masterocr.model.backbone import BasicBlock

    model = copy.deepcopy(model).eval()
    folded = 0
    for module in model.backbone.modules():
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                if _foldable(module[i], module[i + 1]):
                    module[i] = _fuse(module[i], module[i + 1])
                    module[i + 1] = nn.Identity()
                    folded += 1
        elif isinstance(module, BasicBlock):
            for c, b in (("conv1", "bn1"), ("conv2", "bn2")):
                if _foldable(getattr(module, c), getattr(module, b)):
                    setattr(module, c, _fuse(getattr(module, c), getattr(module, b)))
                    setattr(module, b, nn.Identity())
                    folded += 1
    model.folded_conv_bn = folded
    return model


class _ChannelsLastBackbone(nn.Module):
    """Feeds the backbone NHWC input; its output goes back to contiguous NCHW for the flatten."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.inner = backbone.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.contiguous(memory_format=torch.channels_last)).contiguous()


def quantize_decoder_int8(model: MASTER) -> MASTER:
    """Dynamic int8 quantization of the decoder and generator Linear layers (in place on `model`)."""
    with warnings.catch_warnings():  # torch.ao.quantization is deprecated in favour of torchao, still works
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic

        return _quantize(model, quantize_dynamic)


def _quantize(model: MASTER, quantize_dynamic) -> MASTER:
    model.decoder = quantize_dynamic(model.decoder, {nn.Linear}, dtype=torch.qint8)
    model.generator = quantize_dynamic(nn.Sequential(model.generator), {nn.Linear}, dtype=torch.qint8)[0]
    if model.encoder is not None:
        model.encoder = quantize_dynamic(model.encoder, {nn.Linear}, dtype=torch.qint8)
    return model


def optimize(
    model: MASTER, *, fold_bn: bool = True, channels_last: bool = False, int8: bool = False, compile: bool = False
) -> MASTER:
    """An inference copy of `model` (eval, CPU float32) with the chosen speedups; the original is untouched."""
    model = fold_conv_bn(model) if fold_bn else copy.deepcopy(model).eval()
    if channels_last:
        model.backbone = _ChannelsLastBackbone(model.backbone)
    if int8:
        model = quantize_decoder_int8(model)
    if compile:
        model.backbone = torch.compile(model.backbone, dynamic=True)
    return model
