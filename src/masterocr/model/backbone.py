"""ResNet-31-like backbone with Multi-Aspect Global Context attention (GCA), as in MASTER.

Output feature map: (B, C, H/8, W/4); the last stage pools height only, so the sequence keeps horizontal
resolution for narrow characters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from masterocr.model.config import MasterConfig


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False)


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv3x3(cin, cout), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class MultiAspectGCA(nn.Module):
    """Global context over the whole map, per channel group ("aspect"), fused back into the features.

    Each of `headers` groups gets one attention logit per position (a 1x1 conv shared by the groups), a
    softmax over H*W and a weighted sum of its channels; the context (B, C, 1, 1) is transformed by a
    bottleneck (C -> C*ratio -> C) and fused by concat+1x1 conv (default), addition or a sigmoid gate.
    """

    def __init__(self, channels: int, ratio: float, headers: int, fusion: str, att_scale: bool) -> None:
        super().__init__()
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

    def context(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        xg = x.reshape(b * self.headers, self.head_channels, h, w)
        logits = self.conv_mask(xg).reshape(b * self.headers, 1, h * w) * self.scale
        attn = logits.softmax(dim=-1)  # (B*heads, 1, HW)
        ctx = torch.bmm(xg.reshape(b * self.headers, self.head_channels, h * w), attn.transpose(1, 2))
        return ctx.reshape(b, c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        term = self.transform(self.context(x))  # (B, C, 1, 1)
        if self.fusion == "channel_add":
            return x + term
        if self.fusion == "channel_mul":
            return x * torch.sigmoid(term)
        out = self.concat_conv(x, term)
        # LayerNorm over (C, H, W) without affine parameters, as in the original
        return F.relu(F.layer_norm(out, out.shape[1:]))

    def concat_conv(self, x: torch.Tensor, term: torch.Tensor) -> torch.Tensor:
        """cat_conv(cat([x, term broadcast over H, W])) without building the 2C-channel tensor: the term's half
        of the 1x1 conv is the same at every position, so it becomes a per-image bias (same result, half the
        FLOPs; the parameters keep the original's layout)."""
        c = x.size(1)
        weight = self.cat_conv.weight.flatten(1)  # (C, 2C)
        bias = torch.addmm(self.cat_conv.bias, term.flatten(1), weight[:, c:].t())  # (B, C)
        return F.conv2d(x, weight[:, :c, None, None]) + bias[:, :, None, None]


class BasicBlock(nn.Module):
    """Two 3x3 convs; GCA (optional) after the second BN, before the residual add."""

    def __init__(self, cin: int, cout: int, gca: MultiAspectGCA | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(cin, cout)
        self.bn1 = nn.BatchNorm2d(cout)  # PyTorch's default momentum (the original's 0.9 was a mistake)
        self.conv2 = conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.gca = gca
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, kernel_size=1, bias=False), nn.BatchNorm2d(cout))
            if cin != cout
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        if self.gca is not None:
            out = self.gca(out)
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity, inplace=True)


class Backbone(nn.Module):
    """Stem, then four stages of BasicBlocks each followed by conv-BN-ReLU; pools 2x2, 2x2, (2,1)."""

    def __init__(self, cfg: MasterConfig) -> None:
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
                    MultiAspectGCA(cout, cfg.gca_ratio, cfg.gca_headers, cfg.gca_fusion, cfg.gca_att_scale)
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))  # (B, C, H/8, W/4)
