"""MindSpore model zoo of fishbench: ``build_model(name, num_classes)``.

The models mirror ``fishbench.backends.pytorch.models`` (same structure, parameter count and
computation); ``fishbench.models.names`` maps weights between the two.
"""
from __future__ import annotations

from typing import Callable

from mindspore import nn

from .fishnet import FishNet, fishnet99
from .resnet import ResNet, resnet50

MODELS: dict[str, Callable[[int], nn.Cell]] = {"fishnet99": fishnet99, "resnet50": resnet50}

__all__ = ["MODELS", "FishNet", "ResNet", "build_model", "fishnet99", "resnet50"]


def build_model(name: str, num_classes: int) -> nn.Cell:
    """Build an untrained model by name ("fishnet99" or "resnet50") with ``num_classes`` outputs."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return MODELS[name](num_classes)
