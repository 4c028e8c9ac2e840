"""PyTorch model zoo of fishbench: ``build_model(name, num_classes)`` for every registered model
(``fishbench.models.registry``)."""
from __future__ import annotations

from torch import nn

from fishbench.models.registry import ModelBuilders

from .fishnet import FishNet, fishnet99
from .resnet import resnet50

BUILDERS: ModelBuilders[nn.Module] = ModelBuilders(
    "pytorch", {"fishnet99": fishnet99, "resnet50": resnet50})

__all__ = ["BUILDERS", "FishNet", "build_model", "fishnet99", "resnet50"]


def build_model(name: str, num_classes: int) -> nn.Module:
    """Build an untrained registered model by name with ``num_classes`` outputs (see
    :meth:`ModelBuilders.build` for the errors)."""
    return BUILDERS.build(name, num_classes)
