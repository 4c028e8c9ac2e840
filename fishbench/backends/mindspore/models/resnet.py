"""ResNet50 in MindSpore, mirroring torchvision's ``resnet50`` exactly.

Same structure and parameter names as torchvision (``conv1``, ``bn1``, ``layer1.0.conv2``,
``layer1.0.downsample.0``/``.1``, ``fc``; BatchNorm parameters use MindSpore's names, see
``fishbench.models.names``): v1.5 bottlenecks with the stride on the 3x3 conv, zero padding,
BN eps 1e-5 (torch momentum 0.1 == MindSpore momentum 0.9), 25.56 M parameters at 1000
classes. Initialisation as torchvision: kaiming-normal (fan-out) convs, BN gamma=1 beta=0,
classifier weight and bias U(+-1/sqrt(fan_in)).
"""
from __future__ import annotations

import math

from mindspore import Tensor, nn
from mindspore.common.initializer import HeNormal, Uniform

from fishbench.models.resnet import RESNET50_BLOCKS

EXPANSION = 4


def conv2d(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1,
           padding: int = 0) -> nn.Conv2d:
    """Bias-free zero-padded conv like ``torch.nn.Conv2d``, kaiming-normal (fan-out) weights."""
    return nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, pad_mode="pad", padding=padding,
                     has_bias=False, weight_init=HeNormal(mode="fan_out", nonlinearity="relu"))


def batch_norm(ch: int) -> nn.BatchNorm2d:
    """BatchNorm with PyTorch's defaults (eps 1e-5, torch momentum 0.1 == MindSpore 0.9)."""
    return nn.BatchNorm2d(ch, eps=1e-5, momentum=0.9, gamma_init="ones", beta_init="zeros")


class Bottleneck(nn.Cell):
    """torchvision's Bottleneck (v1.5): 1x1 -> 3x3 (stride) -> 1x1 x4, post-activation."""

    def __init__(self, in_ch: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = planes * EXPANSION
        self.conv1 = conv2d(in_ch, planes, 1)
        self.bn1 = batch_norm(planes)
        self.conv2 = conv2d(planes, planes, 3, stride=stride, padding=1)
        self.bn2 = batch_norm(planes)
        self.conv3 = conv2d(planes, out_ch, 1)
        self.bn3 = batch_norm(out_ch)
        self.relu = nn.ReLU()
        self.has_downsample = stride != 1 or in_ch != out_ch
        if self.has_downsample:
            self.downsample = nn.SequentialCell([conv2d(in_ch, out_ch, 1, stride=stride),
                                                 batch_norm(out_ch)])

    def construct(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = self.downsample(x) if self.has_downsample else x
        return self.relu(out + identity)


class ResNet(nn.Cell):
    """torchvision-compatible ResNet built from :class:`Bottleneck` blocks."""

    def __init__(self, layers: tuple[int, ...] = RESNET50_BLOCKS,
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = conv2d(3, 64, 7, stride=2, padding=3)
        self.bn1 = batch_norm(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="pad", padding=1)
        in_ch = 64
        stages = []
        for i, (planes, count) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if i == 0 else 2
            blocks = [Bottleneck(in_ch, planes, stride)]
            in_ch = planes * EXPANSION
            blocks += [Bottleneck(in_ch, planes) for _ in range(count - 1)]
            stages.append(nn.SequentialCell(blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        bound = 1.0 / math.sqrt(in_ch)
        self.fc = nn.Dense(in_ch, num_classes, weight_init=Uniform(bound), bias_init=Uniform(bound))

    def construct(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = x.mean(axis=(2, 3))
        return self.fc(x)


def resnet50(num_classes: int = 1000) -> ResNet:
    """ResNet50 (25.56 M parameters at 1000 classes), untrained."""
    return ResNet(RESNET50_BLOCKS, num_classes)
