"""ResNet50's structure as weight conversion sees it: torchvision's parameter layout (standard
library only; the MindSpore model mirrors it, the PyTorch backend uses torchvision's)."""
from __future__ import annotations

from typing import Iterator

from fishbench.models.registry import LayerSpec, register_model

#: Bottleneck blocks in each of ResNet50's four stages.
RESNET50_BLOCKS: tuple[int, ...] = (3, 4, 6, 3)


def resnet_layers(blocks: tuple[int, ...]) -> Iterator[LayerSpec]:
    """Every parameterised layer of a bottleneck ResNet with ``blocks`` blocks per stage as
    (prefix, kind), in the order of the torch state dict."""
    yield "conv1", "conv"
    yield "bn1", "bn"
    for stage, count in enumerate(blocks, start=1):
        for i in range(count):
            block = f"layer{stage}.{i}"
            for k in (1, 2, 3):
                yield f"{block}.conv{k}", "conv"
                yield f"{block}.bn{k}", "bn"
            if i == 0:  # every stage's first block changes channels (and stage 2+ the stride)
                yield f"{block}.downsample.0", "conv"
                yield f"{block}.downsample.1", "bn"
    yield "fc", "dense"


@register_model("resnet50")
def resnet50_layers() -> list[LayerSpec]:
    """ResNet50's parameterised layers."""
    return list(resnet_layers(RESNET50_BLOCKS))
