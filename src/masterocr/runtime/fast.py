"""Inference-only speedups for the PyTorch backend on a CPU, each applied to a copy of the model.

* conv+BN folding (`model.backbone.fuse_model`): exact up to float rounding in eval mode.
* channels_last memory format for the backbone (oneDNN convolutions prefer NHWC).
* dynamic int8 quantization of the decoder's and generator's Linear layers (weights int8, activations
  quantized per call); changes the numbers slightly, so accuracy is checked in the benchmark.
* `torch.compile` of the backbone (inductor); the first call pays the compilation.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from masterocr.model import MASTER
from masterocr.model.backbone import fuse_model


def fold_conv_bn(model: MASTER) -> MASTER:
    """An eval copy of the model with every backbone conv -> BatchNorm2d pair folded into one conv; the copy's
    `folded_conv_bn` says how many pairs were folded."""
    model = copy.deepcopy(model).eval()
    model.folded_conv_bn = fuse_model(model.backbone)
    return model


class _ChannelsLastBackbone(nn.Module):
    """Feeds the backbone NHWC input; its output goes back to contiguous NCHW for the flatten."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.inner = backbone.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor, widths: torch.Tensor | None = None) -> torch.Tensor:
        return self.inner(x.contiguous(memory_format=torch.channels_last), widths).contiguous()

    def output_widths(self, widths: torch.Tensor) -> torch.Tensor:
        return self.inner.output_widths(widths)


def quantize_decoder_int8(model: MASTER) -> MASTER:
    """Dynamic int8 quantization of the Linear layers of the decoder, the generator, the transformer encoder and
    the CTC branch (in place on `model`)."""
    with warnings.catch_warnings():  # torch.ao.quantization is deprecated in favour of torchao, still works
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic

        model.decoder = quantize_dynamic(model.decoder, {nn.Linear}, dtype=torch.qint8)
        model.generator = quantize_dynamic(nn.Sequential(model.generator), {nn.Linear}, dtype=torch.qint8)[0]
        if model.encoder is not None:
            model.encoder = quantize_dynamic(model.encoder, {nn.Linear}, dtype=torch.qint8)
        if model.ctc is not None:  # its classifier over the charset is a line's largest matmul
            model.ctc = quantize_dynamic(model.ctc, {nn.Linear}, dtype=torch.qint8)
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
