"""FishNet99 (Sun et al., NeurIPS 2018) in PyTorch.

The network is a "fish": a tail that down-samples (like a ResNet), a body that up-samples
back while concatenating tail features carried over by transfer blocks, and a head that
down-samples again while concatenating body features. All residual blocks are
pre-activation bottlenecks. With the FishNet99 configuration it has 16.62 M parameters at
1000 classes.

Unlike the MindSpore reference, up-sampling is nearest-neighbour by a factor of 2, so any
input side that is a multiple of 32 (>= 32) is accepted, not only 224.

Parameter names here are mirrored one-to-one by the MindSpore implementation
(``fishbench.backends.mindspore.models.fishnet``); ``fishbench.models.names`` relies on that.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# The FishNet99 constants and the stage plan are shared with the MindSpore model.
from fishbench.models.fishnet import (NETWORK_PLANES, NUM_RES_BLOCKS, NUM_TRANSFER_BLOCKS,
                                     check_input_side, fishnet_plan)


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck: three BN-ReLU-conv steps (1x1, 3x3, 1x1), mid = out / 4.

    Identity path: a BN-ReLU-conv1x1 projection when the channel count changes; in an
    up-sampling stage (``channel_groups`` = k) the first block instead sums each group of k
    adjacent input channels, which reduces ``in_ch`` to ``in_ch / k`` without parameters.
    """

    def __init__(self, in_ch: int, out_ch: int, dilation: int = 1,
                 channel_groups: int | None = None) -> None:
        super().__init__()
        mid = out_ch // 4
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, mid, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, kernel_size=3, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_ch, kernel_size=1, bias=False)
        self.relu = nn.ReLU(inplace=False)
        self.channel_groups = channel_groups
        if channel_groups is not None:
            if in_ch != out_ch * channel_groups:
                raise ValueError(f"channel-group identity needs in_ch == out_ch * k, got "
                                 f"{in_ch} != {out_ch} * {channel_groups}")
            self.shortcut: nn.Module | None = None
        elif in_ch != out_ch:
            self.shortcut = Projection(in_ch, out_ch)
        else:
            self.shortcut = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        if self.channel_groups is not None:
            identity = group_sum_channels(x, self.channel_groups)
        elif self.shortcut is not None:
            identity = self.shortcut(x)
        else:
            identity = x
        return out + identity


class Projection(nn.Module):
    """Pre-activation 1x1 projection shortcut: BN-ReLU-conv1x1."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_ch)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.relu(self.bn(x)))


def group_sum_channels(x: torch.Tensor, k: int) -> torch.Tensor:
    """Sum each group of ``k`` adjacent channels: (N, C, H, W) -> (N, C / k, H, W)."""
    if k == 1:
        return x
    n, c, h, w = x.shape
    return x.reshape(n, c // k, k, h, w).sum(dim=2)


def make_blocks(in_ch: int, out_ch: int, count: int, dilation: int = 1,
                channel_groups: int | None = None) -> nn.Sequential:
    """``count`` bottlenecks; only the first changes channels (projection or group sum)."""
    blocks = [PreActBottleneck(in_ch, out_ch, dilation, channel_groups)]
    blocks += [PreActBottleneck(out_ch, out_ch, dilation) for _ in range(count - 1)]
    return nn.Sequential(*blocks)


class BNReLUConv(nn.Module):
    """BN-ReLU-conv1x1 that halves the channels, then BN-ReLU (the score/classifier trunk)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn2(self.conv(F.relu(self.bn1(x)))))


class Stem(nn.Module):
    """Three conv3x3-BN-ReLU (the first with stride 2) and a 3x3/2 max-pool: side / 4."""

    def __init__(self, out_ch: int) -> None:
        super().__init__()
        mid = out_ch // 2
        self.conv1 = nn.Conv2d(3, mid, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_ch, kernel_size=3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        return self.pool(x)


class TailStage(nn.Module):
    """Residual blocks, then 2x2 max-pool down-sampling."""

    def __init__(self, in_ch: int, out_ch: int, num_blocks: int) -> None:
        super().__init__()
        self.blocks = make_blocks(in_ch, out_ch, num_blocks)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.blocks(x))


class Bridge(nn.Module):
    """Lowest-resolution stage: score trunk (C -> C/2 -> 2C), residual blocks (2C -> C) and a
    squeeze-excitation branch (2C -> C/16 -> C, sigmoid), combined as ``out * att + att``."""

    def __init__(self, ch: int, num_blocks: int) -> None:
        super().__init__()
        self.score = BNReLUConv(ch, ch // 2)
        self.score_fc = nn.Conv2d(ch // 2, ch * 2, kernel_size=1, bias=True)
        self.blocks = make_blocks(ch * 2, ch, num_blocks)
        self.se_bn = nn.BatchNorm2d(ch * 2)
        self.se_squeeze = nn.Conv2d(ch * 2, ch // 16, kernel_size=1, bias=True)
        self.se_excite = nn.Conv2d(ch // 16, ch, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.score_fc(self.score(x))
        att = F.relu(self.se_bn(feat)).mean(dim=(2, 3), keepdim=True)
        att = torch.sigmoid(self.se_excite(F.relu(self.se_squeeze(att))))
        return self.blocks(feat) * att + att


class BodyStage(nn.Module):
    """Residual blocks (first one with a channel-group-sum identity), nearest x2 up-sampling,
    concatenated with a transferred tail feature of the new resolution."""

    def __init__(self, in_ch: int, out_ch: int, num_blocks: int, transfer_ch: int,
                 num_transfer: int, dilation: int) -> None:
        super().__init__()
        self.blocks = make_blocks(in_ch, out_ch, num_blocks, dilation,
                                  channel_groups=in_ch // out_ch)
        self.transfer = make_blocks(transfer_ch, transfer_ch, num_transfer)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        trunk = F.interpolate(self.blocks(x), scale_factor=2.0, mode="nearest")
        return torch.cat([trunk, self.transfer(skip)], dim=1)


class HeadStage(nn.Module):
    """Residual blocks, 2x2 max-pool, concatenated with a transferred body feature."""

    def __init__(self, in_ch: int, out_ch: int, num_blocks: int, transfer_ch: int,
                 num_transfer: int) -> None:
        super().__init__()
        self.blocks = make_blocks(in_ch, out_ch, num_blocks)
        self.transfer = make_blocks(transfer_ch, transfer_ch, num_transfer)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.pool(self.blocks(x)), self.transfer(skip)], dim=1)


class Classifier(nn.Module):
    """BN-ReLU-conv1x1 (C -> C/2)-BN-ReLU, global average pool, conv1x1 with bias -> classes."""

    def __init__(self, in_ch: int, num_classes: int) -> None:
        super().__init__()
        self.trunk = BNReLUConv(in_ch, in_ch // 2)
        self.fc = nn.Conv2d(in_ch // 2, num_classes, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.trunk(x).mean(dim=(2, 3), keepdim=True)
        return torch.flatten(self.fc(x), 1)


class FishNet(nn.Module):
    """FishNet with 3 tail, 1 bridge, 3 body and 3 head stages (FishNet99 by default)."""

    def __init__(self, num_classes: int = 1000,
                 network_planes: Sequence[int] = NETWORK_PLANES,
                 num_res_blocks: Sequence[int] = NUM_RES_BLOCKS,
                 num_transfer_blocks: Sequence[int] = NUM_TRANSFER_BLOCKS) -> None:
        super().__init__()
        plan = fishnet_plan(network_planes, num_res_blocks, num_transfer_blocks)
        self.stem = Stem(plan.stem_ch)
        self.tail = nn.ModuleList([TailStage(s.in_ch, s.out_ch, s.blocks) for s in plan.tail])
        self.bridge = Bridge(plan.bridge.out_ch, plan.bridge.blocks)
        self.body = nn.ModuleList([BodyStage(s.in_ch, s.out_ch, s.blocks, s.skip_ch,
                                             s.transfer_blocks, dilation=s.dilation)
                                   for s in plan.body])
        self.head = nn.ModuleList([HeadStage(s.in_ch, s.out_ch, s.blocks, s.skip_ch,
                                             s.transfer_blocks) for s in plan.head])
        self.classifier = Classifier(plan.classifier_in_ch, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal conv weights (fan-out, as the reference), BN gamma=1 beta=0.

        Conv biases keep PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as the reference.
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_side(x.shape[-2], x.shape[-1])
        s4 = self.stem(x)                    # p0   @ side/4
        s8 = self.tail[0](s4)                # p1   @ side/8
        s16 = self.tail[1](s8)               # p2   @ side/16
        s32 = self.tail[2](s16)              # p3   @ side/32
        bridge = self.bridge(s32)            # p4   @ side/32
        u16 = self.body[0](bridge, s16)      # p5+p2 @ side/16
        u8 = self.body[1](u16, s8)           # p6+p1 @ side/8
        u4 = self.body[2](u8, s4)            # p7+p0 @ side/4
        d8 = self.head[0](u4, u8)            # p8+(p6+p1) @ side/8
        d16 = self.head[1](d8, u16)          # p9+(p5+p2) @ side/16
        d32 = self.head[2](d16, bridge)      # p10+p4 @ side/32
        return self.classifier(d32)


def fishnet99(num_classes: int = 1000) -> FishNet:
    """FishNet99 (16.62 M parameters at 1000 classes)."""
    return FishNet(num_classes)
