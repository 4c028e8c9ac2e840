"""MindSpore model zoo of fishbench: ``build_model(name, num_classes)`` for every registered model
(``fishbench.models.registry``).

The models mirror ``fishbench.backends.pytorch.models`` (same structure, parameter count and
computation); ``fishbench.models.names`` maps weights between the two.
"""
from __future__ import annotations

from mindspore import nn

from fishbench.models.registry import ModelBuilders

from .fishnet import FishNet, fishnet99
from .resnet import ResNet, resnet50

BUILDERS: ModelBuilders[nn.Cell] = ModelBuilders(
    "mindspore", {"fishnet99": fishnet99, "resnet50": resnet50})

__all__ = ["BUILDERS", "FishNet", "ResNet", "build_model", "fishnet99", "resnet50"]


def build_model(name: str, num_classes: int) -> nn.Cell:
    """Build an untrained registered model by name with ``num_classes`` outputs (see
    :meth:`ModelBuilders.build` for the errors)."""
    return BUILDERS.build(name, num_classes)
