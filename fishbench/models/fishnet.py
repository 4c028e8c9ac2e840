"""FishNet: the stage plan both backends build from, and FishNet99's layer list (standard
library only).

A FishNet is a stem followed by 10 "fish" stages: 3 tail stages that down-sample, a bridge at
the lowest resolution, 3 body stages that up-sample and concatenate a transferred tail feature,
and 3 head stages that down-sample again and concatenate a transferred body (or bridge)
feature; a classifier follows. ``fishnet_plan`` turns the three configuration tuples into the
channel bookkeeping of every stage, so both backends build the same network (and the same
parameter names) from one place; ``fishnet_layers`` lists the parameterised layers those
names follow, which weight conversion checks against (registered as "fishnet99").
``check_input_side`` is the input-size check of both models; it is kept simple enough to be
compiled inside a MindSpore ``construct`` in Graph mode.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

from fishbench.models.registry import LayerSpec, register_model

#: Output channels of the stem followed by the 10 fish stages (3 tail, bridge, 3 body, 3 head).
NETWORK_PLANES: tuple[int, ...] = (64, 128, 256, 512, 512, 512, 384, 256, 320, 832, 1600)
#: Residual blocks in each of the 10 fish stages.
NUM_RES_BLOCKS: tuple[int, ...] = (2, 2, 6, 2, 1, 1, 1, 1, 2, 2)
#: Transfer blocks of the 3 body stages followed by the 3 head stages.
NUM_TRANSFER_BLOCKS: tuple[int, ...] = (1, 1, 1, 1, 1, 4)
#: The input side must be a multiple of this (total down-sampling of the network).
SIDE_MULTIPLE = 32


@dataclass(frozen=True)
class FishStage:
    """One fish stage: ``blocks`` residual blocks ``in_ch -> out_ch`` (with ``dilation``), and
    for body and head stages a transferred feature of ``skip_ch`` channels passed through
    ``transfer_blocks`` residual blocks and concatenated to the trunk (0 / 0 for tail stages
    and the bridge)."""

    in_ch: int
    out_ch: int
    blocks: int
    skip_ch: int = 0
    transfer_blocks: int = 0
    dilation: int = 1

    @property
    def cat_ch(self) -> int:
        """Channels the stage outputs: trunk and transferred feature concatenated."""
        return self.out_ch + self.skip_ch


@dataclass(frozen=True)
class FishPlan:
    """Every stage of a FishNet, in order, and the classifier's input channels.

    The bridge's layers are sized by ``bridge.out_ch`` (it keeps its channels); ``bridge.in_ch``
    is the channel count the last tail stage hands it.
    """

    stem_ch: int
    tail: tuple[FishStage, FishStage, FishStage]
    bridge: FishStage
    body: tuple[FishStage, FishStage, FishStage]
    head: tuple[FishStage, FishStage, FishStage]
    classifier_in_ch: int


def fishnet_plan(network_planes: Sequence[int] = NETWORK_PLANES,
                 num_res_blocks: Sequence[int] = NUM_RES_BLOCKS,
                 num_transfer_blocks: Sequence[int] = NUM_TRANSFER_BLOCKS) -> FishPlan:
    """The stage plan of a FishNet (FishNet99 by default).

    ``network_planes``: 11 output channels (stem, then the 10 stages); ``num_res_blocks``: 10
    residual-block counts (one per stage); ``num_transfer_blocks``: 6 transfer-block counts (the
    3 body stages, then the 3 head stages). Raises ValueError when a length is wrong.
    """
    p, r, t = list(network_planes), list(num_res_blocks), list(num_transfer_blocks)
    if len(p) != 11 or len(r) != 10 or len(t) != 6:
        raise ValueError("expected 11 network_planes, 10 num_res_blocks, 6 num_transfer_blocks; "
                         f"got {len(p)}, {len(r)}, {len(t)}")
    # tail: stem (p0) -> p1 -> p2 -> p3, each halving the side
    tail = tuple(FishStage(p[i], p[i + 1], r[i]) for i in range(3))
    bridge = FishStage(p[3], p[4], r[3])
    # body: up-sample 3 times, each concatenating the tail input feature of its resolution
    # (p2, p1, then the stem's p0); the first block's identity sums channel groups, and the
    # dilation doubles from stage to stage
    body, ch = [], bridge.out_ch
    for j in range(3):
        stage = FishStage(ch, p[5 + j], r[4 + j], skip_ch=tail[2 - j].in_ch,
                          transfer_blocks=t[j], dilation=2 ** j)
        body.append(stage)
        ch = stage.cat_ch
    # head: down-sample 3 times, each concatenating the body/bridge feature of its resolution
    body_out_ch = (bridge.out_ch, body[0].cat_ch, body[1].cat_ch)
    head = []
    for j in range(3):
        stage = FishStage(ch, p[8 + j], r[7 + j], skip_ch=body_out_ch[2 - j],
                          transfer_blocks=t[3 + j])
        head.append(stage)
        ch = stage.cat_ch
    return FishPlan(stem_ch=p[0], tail=tail, bridge=bridge, body=tuple(body), head=tuple(head),
                    classifier_in_ch=ch)


def _bottlenecks(prefix: str, in_ch: int, out_ch: int, count: int,
                 group_identity: bool = False) -> Iterator[LayerSpec]:
    """Layers of ``count`` pre-activation bottlenecks; the first has a projection shortcut when
    it changes channels, unless its identity is a (parameter-free) channel-group sum."""
    for i in range(count):
        block = f"{prefix}.{i}"
        for name, kind in (("bn1", "bn"), ("conv1", "conv"), ("bn2", "bn"), ("conv2", "conv"),
                           ("bn3", "bn"), ("conv3", "conv")):
            yield f"{block}.{name}", kind
        if i == 0 and in_ch != out_ch and not group_identity:
            yield f"{block}.shortcut.bn", "bn"
            yield f"{block}.shortcut.conv", "conv"


def fishnet_layers(plan: FishPlan) -> Iterator[LayerSpec]:
    """Every parameterised layer of the FishNet of ``plan`` as (prefix, kind), in the order of
    the torch state dict."""
    for i in (1, 2, 3):
        yield f"stem.conv{i}", "conv"
        yield f"stem.bn{i}", "bn"
    for i, stage in enumerate(plan.tail):
        yield from _bottlenecks(f"tail.{i}.blocks", stage.in_ch, stage.out_ch, stage.blocks)
    bridge = plan.bridge.out_ch
    yield from (("bridge.score.bn1", "bn"), ("bridge.score.conv", "conv"),
                ("bridge.score.bn2", "bn"), ("bridge.score_fc", "conv_bias"))
    yield from _bottlenecks("bridge.blocks", 2 * bridge, bridge, plan.bridge.blocks)
    yield from (("bridge.se_bn", "bn"), ("bridge.se_squeeze", "conv_bias"),
                ("bridge.se_excite", "conv_bias"))
    for part, stages in (("body", plan.body), ("head", plan.head)):
        for j, stage in enumerate(stages):
            yield from _bottlenecks(f"{part}.{j}.blocks", stage.in_ch, stage.out_ch,
                                    stage.blocks, group_identity=part == "body")
            yield from _bottlenecks(f"{part}.{j}.transfer", stage.skip_ch, stage.skip_ch,
                                    stage.transfer_blocks)
    yield from (("classifier.trunk.bn1", "bn"), ("classifier.trunk.conv", "conv"),
                ("classifier.trunk.bn2", "bn"), ("classifier.fc", "conv_bias"))


@register_model("fishnet99")
def fishnet99_layers() -> list[LayerSpec]:
    """FishNet99's parameterised layers (the default plan)."""
    return list(fishnet_layers(fishnet_plan()))


def check_input_side(h: int, w: int) -> None:
    """Raise ValueError unless both sides are multiples of ``SIDE_MULTIPLE`` (32) and at least
    that.

    Written for MindSpore's Graph mode too (called from ``construct`` with static shapes):
    plain comparisons and string concatenation, no f-string.
    """
    if h < SIDE_MULTIPLE or w < SIDE_MULTIPLE or h % SIDE_MULTIPLE != 0 or w % SIDE_MULTIPLE != 0:
        raise ValueError("FishNet needs input sides that are multiples of " + str(SIDE_MULTIPLE)
                         + " (>= " + str(SIDE_MULTIPLE) + "), got " + str(h) + "x" + str(w))
