"""ResNet-31-like backbone with Multi-Aspect Global Context attention (GCA), as in MASTER.

Output feature map: (B, C, H/8, W/4); the last stage pools height only, so the sequence keeps horizontal
resolution for narrow characters.

Variable-width batches (text lines padded on the right) pass `widths`, each image's valid width in pixels:
every 3x3 convolution then sees zeros past an image's valid columns (what its own zero padding would give it
alone), GCA pools over the valid columns only and its layer norm takes their statistics only, so the valid
part of the feature map is the same whatever the batch's width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from masterocr.model.config import MasterConfig

STRIDE = 4  # the backbone's horizontal downsampling: batches are padded to a multiple of it


def column_mask(widths: torch.Tensor, width: int) -> torch.Tensor:
    """(B,) valid widths -> (B, 1, 1, width) float mask, 1 on an image's valid columns."""
    cols = torch.arange(width, device=widths.device)
    return (cols < widths[:, None]).to(torch.float32)[:, None, None, :]


def downsampled_widths(widths: torch.Tensor, stride: int) -> torch.Tensor:
    """Valid widths after a pooling of horizontal `stride`: a column with any valid pixel stays valid."""
    return torch.div(widths + stride - 1, stride, rounding_mode="floor")


def masked_layer_norm(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Layer norm over (C, H, W) without affine parameters, with the statistics of the valid columns only
    (`mask` (B, 1, 1, W)); padded columns come out 0."""
    n = (mask.sum((1, 2, 3)) * x.size(1) * x.size(2)).clamp_min(1.0)[:, None, None, None]
    mean = (x * mask).sum((1, 2, 3), keepdim=True) / n
    var = (((x - mean) * mask) ** 2).sum((1, 2, 3), keepdim=True) / n
    return (x - mean) * torch.rsqrt(var + eps) * mask


class MaskedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics (the batch's, and the running ones they update) come from the
    valid columns of a padded batch only (`mask` (B, 1, 1, W)); without a mask, or in eval mode, it is
    BatchNorm2d. Padded columns would otherwise pull the mean towards what the network computes on padding,
    by the padding's share of the batch, and a line read alone (no padding) would meet other statistics."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None or not self.training or not self.track_running_stats:
            return super().forward(x)
        n = (mask.sum() * x.size(2)).clamp_min(2.0)
        mean = (x * mask).sum((0, 2, 3)) / n
        centred = (x - mean[None, :, None, None]) * mask
        var = (centred**2).sum((0, 2, 3)) / n
        with torch.no_grad():
            self.num_batches_tracked += 1
            m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1), alpha=m)
        out = (x - mean[None, :, None, None]) * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            out = out * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return out


def _stride_w(pool: nn.Module) -> int:
    stride = getattr(pool, "stride", 1)
    return int(stride[1] if isinstance(stride, (tuple, list)) else stride)


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False)


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A conv equal to bn(conv(x)) with the BN's running statistics (exact up to float rounding in eval mode,
    where BN is a fixed per-channel affine map)."""
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


class FusesConvBN:
    """A block that can fold its conv -> BatchNorm pairs into single convs (inference only)."""

    def fuse(self) -> int:
        """Fold in place every conv -> BN pair of this block (the BN becomes nn.Identity); returns how many."""
        raise NotImplementedError


class ConvBN(nn.Sequential, FusesConvBN):
    """conv -> BatchNorm2d (-> more layers, e.g. a ReLU); the state dict keys are those of an nn.Sequential.
    `mask` (B, 1, 1, W): the valid columns of a padded batch, for the BatchNorm's training statistics."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self:
            x = layer(x, mask) if isinstance(layer, MaskedBatchNorm2d) else layer(x)
        return x

    def fuse(self) -> int:
        if not _foldable(self[0], self[1]):
            return 0
        self[0], self[1] = fuse_conv_bn(self[0], self[1]), nn.Identity()
        return 1


def conv_bn_relu(cin: int, cout: int) -> ConvBN:
    return ConvBN(conv3x3(cin, cout), MaskedBatchNorm2d(cout), nn.ReLU(inplace=True))


def fuse_model(model: nn.Module) -> int:
    """Ask every block of `model` that can (FusesConvBN) to fold its conv -> BN pairs, in place; returns how
    many pairs were folded. Call it on an eval copy: the folded convs use the BNs' running statistics."""
    return sum(m.fuse() for m in list(model.modules()) if isinstance(m, FusesConvBN))


class MultiAspectGCA(nn.Module):
    """Global context over the whole map, per channel group ("aspect"), fused back into the features.

    Each of `headers` groups gets one attention logit per position (a 1x1 conv shared by the groups), a
    softmax over H*W and a weighted sum of its channels; the context (B, C, 1, 1) is transformed by a
    bottleneck (C -> C*ratio -> C) and fused by concat+1x1 conv (default), addition or a sigmoid gate.

    `static_shapes` (the export-safe form) passes the final layer norm its shape as Python ints: traced, the
    `out.shape[1:]` would be a graph value, which the TorchScript ONNX exporter rejects for LayerNorm's
    normalized_shape; C, H, W are fixed by the config, so the constants are exact.
    """

    def __init__(
        self, channels: int, ratio: float, headers: int, fusion: str, att_scale: bool, static_shapes: bool = False
    ) -> None:
        super().__init__()
        self.static_shapes = static_shapes
        if channels % headers:
            raise ValueError(f"GCA: {channels} channels do not split into {headers} headers")
        self.headers = headers
        self.head_channels = channels // headers
        self.fusion = fusion
        self.scale = self.head_channels**-0.5 if (att_scale and headers > 1) else 1.0
        planes = max(1, int(channels * ratio))
        self.conv_mask = nn.Conv2d(self.head_channels, 1, kernel_size=1)
        self.transform = nn.Sequential(
            nn.Conv2d(channels, planes, kernel_size=1),
            nn.LayerNorm([planes, 1, 1]),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, channels, kernel_size=1),
        )
        if fusion == "channel_concat":
            self.cat_conv = nn.Conv2d(2 * channels, channels, kernel_size=1)

    def context(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        xg = x.reshape(b * self.headers, self.head_channels, h, w)
        logits = self.conv_mask(xg).reshape(b * self.headers, 1, h * w) * self.scale
        if mask is not None:  # pool over the valid columns only
            keep = mask.expand(b, 1, h, w).repeat_interleave(self.headers, 0).reshape(b * self.headers, 1, h * w)
            logits = logits.masked_fill(keep == 0, float("-inf"))
        attn = logits.softmax(dim=-1)  # (B*heads, 1, HW)
        ctx = torch.bmm(xg.reshape(b * self.headers, self.head_channels, h * w), attn.transpose(1, 2))
        return ctx.reshape(b, c, 1, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """`mask` (B, 1, 1, W): the valid columns of a padded batch (None: every column is valid)."""
        term = self.transform(self.context(x, mask))  # (B, C, 1, 1)
        if self.fusion == "channel_add":
            return x + term
        if self.fusion == "channel_mul":
            return x * torch.sigmoid(term)
        out = self.concat_conv(x, term)
        if mask is not None:
            return F.relu(masked_layer_norm(out, mask))
        # LayerNorm over (C, H, W) without affine parameters, as in the original
        shape = [int(s) for s in out.shape[1:]] if self.static_shapes else out.shape[1:]
        return F.relu(F.layer_norm(out, shape))

    def concat_conv(self, x: torch.Tensor, term: torch.Tensor) -> torch.Tensor:
        """cat_conv(cat([x, term broadcast over H, W])) without building the 2C-channel tensor: the term's half
        of the 1x1 conv is the same at every position, so it becomes a per-image bias (same result, half the
        FLOPs; the parameters keep the original's layout)."""
        c = x.size(1)
        weight = self.cat_conv.weight.flatten(1)  # (C, 2C)
        bias = torch.addmm(self.cat_conv.bias, term.flatten(1), weight[:, c:].t())  # (B, C)
        return F.conv2d(x, weight[:, :c, None, None]) + bias[:, :, None, None]


class BasicBlock(nn.Module, FusesConvBN):
    """Two 3x3 convs; GCA (optional) after the second BN, before the residual add."""

    def __init__(self, cin: int, cout: int, gca: MultiAspectGCA | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(cin, cout)
        self.bn1 = MaskedBatchNorm2d(cout)  # PyTorch's default momentum (the original's 0.9 was a mistake)
        self.conv2 = conv3x3(cout, cout)
        self.bn2 = MaskedBatchNorm2d(cout)
        self.gca = gca
        self.downsample = (
            ConvBN(nn.Conv2d(cin, cout, kernel_size=1, bias=False), MaskedBatchNorm2d(cout)) if cin != cout else None
        )

    def fuse(self) -> int:
        """conv1/bn1 and conv2/bn2 (the downsample is a ConvBN of its own)."""
        folded = 0
        for c, b in (("conv1", "bn1"), ("conv2", "bn2")):
            if _foldable(getattr(self, c), getattr(self, b)):
                setattr(self, c, fuse_conv_bn(getattr(self, c), getattr(self, b)))
                setattr(self, b, nn.Identity())
                folded += 1
        return folded

    @staticmethod
    def _bn(bn: nn.Module, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return bn(x, mask) if isinstance(bn, MaskedBatchNorm2d) else bn(x)  # folded: an Identity

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """`mask` (B, 1, 1, W): zeroes the padded columns before each 3x3 conv (see the module docstring)."""
        if mask is not None:
            x = x * mask
        out = F.relu(self._bn(self.bn1, self.conv1(x), mask), inplace=True)
        if mask is not None:
            out = out * mask
        out = self._bn(self.bn2, self.conv2(out), mask)
        if self.gca is not None:
            out = self.gca(out, mask)
        identity = x if self.downsample is None else self.downsample(x, mask)
        return F.relu(out + identity, inplace=True)


class Backbone(nn.Module):
    """Stem, then four stages of BasicBlocks each followed by conv-BN-ReLU; pools 2x2, 2x2, (2,1)."""

    def __init__(self, cfg: MasterConfig, exportable: bool = False) -> None:
        super().__init__()
        w = cfg.widths
        self.stem = nn.Sequential(conv_bn_relu(cfg.in_channels, w[0]), conv_bn_relu(w[0], w[1]))
        pools = [nn.MaxPool2d(2, 2), nn.MaxPool2d(2, 2), nn.MaxPool2d((2, 1), (2, 1)), nn.Identity()]
        stages = []
        cin = w[1]
        for i, (cout, n) in enumerate(zip(w[2:], cfg.blocks)):
            blocks = []
            for j in range(n):
                use_gca = cfg.gca_layers[i] and (j == 0 or cfg.gca_all_blocks)
                gca = (
                    MultiAspectGCA(cout, cfg.gca_ratio, cfg.gca_headers, cfg.gca_fusion, cfg.gca_att_scale, exportable)
                    if use_gca
                    else None
                )
                blocks.append(BasicBlock(cin if j == 0 else cout, cout, gca))
            # pool before the stage, conv-BN-ReLU after it: the original's order
            stages.append(nn.Sequential(pools[i], *blocks, conv_bn_relu(cout, cout)))
            cin = cout
        self.stages = nn.Sequential(*stages)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor, widths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H/8, W/4). `widths` (B,): valid widths in pixels of a right-padded batch;
        the output is then 0 past each image's valid columns."""
        if widths is None:
            return self.stages(self.stem(x))
        for layer in self.stem:
            mask = column_mask(widths, x.size(-1))
            x = layer(x * mask, mask)
        for stage in self.stages:
            for layer in stage:
                if isinstance(layer, (nn.MaxPool2d, nn.Identity)):
                    x = layer(x)
                    widths = downsampled_widths(widths, _stride_w(layer))
                elif isinstance(layer, BasicBlock):
                    x = layer(x, column_mask(widths, x.size(-1)))
                else:
                    mask = column_mask(widths, x.size(-1))
                    x = layer(x * mask, mask)
        return x * column_mask(widths, x.size(-1))

    @staticmethod
    def output_widths(widths: torch.Tensor) -> torch.Tensor:
        """Valid widths (pixels) -> valid columns of the output feature map."""
        return downsampled_widths(downsampled_widths(widths, 2), 2)
