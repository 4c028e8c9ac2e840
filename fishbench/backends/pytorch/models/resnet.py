"""ResNet50 in PyTorch: torchvision's ``resnet50`` (v1.5, stride on the 3x3 conv), untrained.

25.56 M parameters at 1000 classes. Its parameter names are mirrored one-to-one by
``fishbench.backends.mindspore.models.resnet``.
"""
from __future__ import annotations

from torch import nn
from torchvision.models import resnet50 as _tv_resnet50


def resnet50(num_classes: int = 1000) -> nn.Module:
    """torchvision ResNet50 with random (torchvision default) initialisation."""
    return _tv_resnet50(weights=None, num_classes=num_classes)
