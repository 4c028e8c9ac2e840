"""FishNet99 (Sun et al., NeurIPS 2018) in MindSpore.

Structure, parameter names (up to the BatchNorm suffixes, see ``fishbench.models.names``) and
computation mirror ``fishbench.backends.pytorch.models.fishnet`` exactly: a tail that
down-samples, a bridge with a squeeze-excitation branch, a body that up-samples and
concatenates transferred tail features, and a head that down-samples again and concatenates
transferred body features. 16.62 M parameters at 1000 classes.

Unlike the MindSpore model-zoo reference (which hard-codes up-sampling output sizes 14/28/56
and so only runs at 224x224), up-sampling is nearest-neighbour to twice the current side, so
any input side that is a multiple of 32 (>= 32) is accepted. Works in PyNative and Graph mode.
"""
from __future__ import annotations

import math
from typing import Sequence

from mindspore import Tensor, nn, ops
from mindspore.common.initializer import HeNormal, Uniform

# The FishNet99 constants, the stage plan and the input-side check (compiled into ``construct``
# in Graph mode) are shared with the PyTorch model.
from fishbench.models.fishnet import (NETWORK_PLANES, NUM_RES_BLOCKS, NUM_TRANSFER_BLOCKS,
                                     check_input_side, fishnet_plan)


def conv2d(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0,
           dilation: int = 1, has_bias: bool = False) -> nn.Conv2d:
    """Zero-padded conv like ``torch.nn.Conv2d``; kaiming-normal (fan-out) weights as the
    reference, bias U(+-1/sqrt(fan_in)) as PyTorch's default."""
    bias_bound = 1.0 / math.sqrt(in_ch * kernel_size * kernel_size)
    return nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, pad_mode="pad", padding=padding,
                     dilation=dilation, has_bias=has_bias,
                     weight_init=HeNormal(mode="fan_out", nonlinearity="relu"),
                     bias_init=Uniform(bias_bound) if has_bias else "zeros")


def batch_norm(ch: int) -> nn.BatchNorm2d:
    """BatchNorm with PyTorch's defaults (eps 1e-5, torch momentum 0.1 == MindSpore 0.9)."""
    return nn.BatchNorm2d(ch, eps=1e-5, momentum=0.9, gamma_init="ones", beta_init="zeros")


def group_sum_channels(x: Tensor, k: int) -> Tensor:
    """Sum each group of ``k`` adjacent channels: (N, C, H, W) -> (N, C / k, H, W)."""
    if k == 1:
        return x
    n, c, h, w = x.shape
    return x.reshape((n, c // k, k, h, w)).sum(axis=2)


def upsample_nearest2x(x: Tensor) -> Tensor:
    """Nearest-neighbour up-sampling to twice the height and width (any input side)."""
    h, w = x.shape[-2:]
    return ops.interpolate(x, size=(h * 2, w * 2), mode="nearest")


class Projection(nn.Cell):
    """Pre-activation 1x1 projection shortcut: BN-ReLU-conv1x1."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.bn = batch_norm(in_ch)
        self.conv = conv2d(in_ch, out_ch, 1)

    def construct(self, x: Tensor) -> Tensor:
        return self.conv(ops.relu(self.bn(x)))


class PreActBottleneck(nn.Cell):
    """Pre-activation bottleneck: three BN-ReLU-conv steps (1x1, 3x3, 1x1), mid = out / 4.

    Identity path: a BN-ReLU-conv1x1 projection when the channel count changes; in an
    up-sampling stage (``channel_groups`` = k) the first block instead sums each group of k
    adjacent input channels, which reduces ``in_ch`` to ``in_ch / k`` without parameters.
    """

    def __init__(self, in_ch: int, out_ch: int, dilation: int = 1,
                 channel_groups: int | None = None) -> None:
        super().__init__()
        mid = out_ch // 4
        self.bn1 = batch_norm(in_ch)
        self.conv1 = conv2d(in_ch, mid, 1)
        self.bn2 = batch_norm(mid)
        self.conv2 = conv2d(mid, mid, 3, padding=dilation, dilation=dilation)
        self.bn3 = batch_norm(mid)
        self.conv3 = conv2d(mid, out_ch, 1)
        if channel_groups is not None and in_ch != out_ch * channel_groups:
            raise ValueError(f"channel-group identity needs in_ch == out_ch * k, got "
                             f"{in_ch} != {out_ch} * {channel_groups}")
        # 0: plain identity, k >= 1: channel-group sum, -1: projection (constants in Graph mode)
        self.channel_groups = channel_groups if channel_groups is not None else 0
        self.use_projection = channel_groups is None and in_ch != out_ch
        if self.use_projection:
            self.shortcut = Projection(in_ch, out_ch)

    def construct(self, x: Tensor) -> Tensor:
        out = self.conv1(ops.relu(self.bn1(x)))
        out = self.conv2(ops.relu(self.bn2(out)))
        out = self.conv3(ops.relu(self.bn3(out)))
        if self.channel_groups > 0:
            identity = group_sum_channels(x, self.channel_groups)
        elif self.use_projection:
            identity = self.shortcut(x)
        else:
            identity = x
        return out + identity


def make_blocks(in_ch: int, out_ch: int, count: int, dilation: int = 1,
                channel_groups: int | None = None) -> nn.SequentialCell:
    """``count`` bottlenecks; only the first changes channels (projection or group sum)."""
    blocks = [PreActBottleneck(in_ch, out_ch, dilation, channel_groups)]
    blocks += [PreActBottleneck(out_ch, out_ch, dilation) for _ in range(count - 1)]
    return nn.SequentialCell(blocks)


class BNReLUConv(nn.Cell):
    """BN-ReLU-conv1x1 that halves the channels, then BN-ReLU (the score/classifier trunk)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.bn1 = batch_norm(in_ch)
        self.conv = conv2d(in_ch, out_ch, 1)
        self.bn2 = batch_norm(out_ch)

    def construct(self, x: Tensor) -> Tensor:
        return ops.relu(self.bn2(self.conv(ops.relu(self.bn1(x)))))


class Stem(nn.Cell):
    """Three conv3x3-BN-ReLU (the first with stride 2) and a 3x3/2 max-pool: side / 4."""

    def __init__(self, out_ch: int) -> None:
        super().__init__()
        mid = out_ch // 2
        self.conv1 = conv2d(3, mid, 3, stride=2, padding=1)
        self.bn1 = batch_norm(mid)
        self.conv2 = conv2d(mid, mid, 3, padding=1)
        self.bn2 = batch_norm(mid)
        self.conv3 = conv2d(mid, out_ch, 3, padding=1)
        self.bn3 = batch_norm(out_ch)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="pad", padding=1)

    def construct(self, x: Tensor) -> Tensor:
        x = ops.relu(self.bn1(self.conv1(x)))
        x = ops.relu(self.bn2(self.conv2(x)))
        x = ops.relu(self.bn3(self.conv3(x)))
        return self.pool(x)


class TailStage(nn.Cell):
    """Residual blocks, then 2x2 max-pool down-sampling."""

    def __init__(self, in_ch: int, out_ch: int, num_blocks: int) -> None:
        super().__init__()
        self.blocks = make_blocks(in_ch, out_ch, num_blocks)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)

    def construct(self, x: Tensor) -> Tensor:
        return self.pool(self.blocks(x))


class Bridge(nn.Cell):
    """Lowest-resolution stage: score trunk (C -> C/2 -> 2C), residual blocks (2C -> C) and a
    squeeze-excitation branch (2C -> C/16 -> C, sigmoid), combined as ``out * att + att``."""

    def __init__(self, ch: int, num_blocks: int) -> None:
        super().__init__()
        self.score = BNReLUConv(ch, ch // 2)
        self.score_fc = conv2d(ch // 2, ch * 2, 1, has_bias=True)
        self.blocks = make_blocks(ch * 2, ch, num_blocks)
        self.se_bn = batch_norm(ch * 2)
        self.se_squeeze = conv2d(ch * 2, ch // 16, 1, has_bias=True)
        self.se_excite = conv2d(ch // 16, ch, 1, has_bias=True)

    def construct(self, x: Tensor) -> Tensor:
        feat = self.score_fc(self.score(x))
        att = ops.relu(self.se_bn(feat)).mean(axis=(2, 3), keep_dims=True)
        att = ops.sigmoid(self.se_excite(ops.relu(self.se_squeeze(att))))
        return self.blocks(feat) * att + att


class BodyStage(nn.Cell):
    """Residual blocks (first one with a channel-group-sum identity), nearest x2 up-sampling,
    concatenated with a transferred tail feature of the new resolution."""

    def __init__(self, in_ch: int, out_ch: int, num_blocks: int, transfer_ch: int,
                 num_transfer: int, dilation: int) -> None:
        super().__init__()
        self.blocks = make_blocks(in_ch, out_ch, num_blocks, dilation,
                                  channel_groups=in_ch // out_ch)
        self.transfer = make_blocks(transfer_ch, transfer_ch, num_transfer)

    def construct(self, x: Tensor, skip: Tensor) -> Tensor:
        trunk = upsample_nearest2x(self.blocks(x))
        return ops.cat((trunk, self.transfer(skip)), axis=1)


class HeadStage(nn.Cell):
    """Residual blocks, 2x2 max-pool, concatenated with a transferred body feature."""

    def __init__(self, in_ch: int, out_ch: int, num_blocks: int, transfer_ch: int,
                 num_transfer: int) -> None:
        super().__init__()
        self.blocks = make_blocks(in_ch, out_ch, num_blocks)
        self.transfer = make_blocks(transfer_ch, transfer_ch, num_transfer)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)

    def construct(self, x: Tensor, skip: Tensor) -> Tensor:
        return ops.cat((self.pool(self.blocks(x)), self.transfer(skip)), axis=1)


class Classifier(nn.Cell):
    """BN-ReLU-conv1x1 (C -> C/2)-BN-ReLU, global average pool, conv1x1 with bias -> classes."""

    def __init__(self, in_ch: int, num_classes: int) -> None:
        super().__init__()
        self.trunk = BNReLUConv(in_ch, in_ch // 2)
        self.fc = conv2d(in_ch // 2, num_classes, 1, has_bias=True)

    def construct(self, x: Tensor) -> Tensor:
        x = self.trunk(x).mean(axis=(2, 3), keep_dims=True)
        return ops.flatten(self.fc(x))


class FishNet(nn.Cell):
    """FishNet with 3 tail, 1 bridge, 3 body and 3 head stages (FishNet99 by default)."""

    def __init__(self, num_classes: int = 1000,
                 network_planes: Sequence[int] = NETWORK_PLANES,
                 num_res_blocks: Sequence[int] = NUM_RES_BLOCKS,
                 num_transfer_blocks: Sequence[int] = NUM_TRANSFER_BLOCKS) -> None:
        super().__init__()
        plan = fishnet_plan(network_planes, num_res_blocks, num_transfer_blocks)
        self.stem = Stem(plan.stem_ch)
        self.tail = nn.CellList([TailStage(s.in_ch, s.out_ch, s.blocks) for s in plan.tail])
        self.bridge = Bridge(plan.bridge.out_ch, plan.bridge.blocks)
        self.body = nn.CellList([BodyStage(s.in_ch, s.out_ch, s.blocks, s.skip_ch,
                                           s.transfer_blocks, dilation=s.dilation)
                                 for s in plan.body])
        self.head = nn.CellList([HeadStage(s.in_ch, s.out_ch, s.blocks, s.skip_ch,
                                           s.transfer_blocks) for s in plan.head])
        self.classifier = Classifier(plan.classifier_in_ch, num_classes)

    def construct(self, x: Tensor) -> Tensor:
        check_input_side(x.shape[2], x.shape[3])
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
