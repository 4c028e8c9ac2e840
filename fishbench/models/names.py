"""Weight conversion between the PyTorch and MindSpore models of fishbench (numpy only).

Both backends build each model with the same module tree and attribute names, and both store
conv and dense weights in the same layout ((out, in, kH, kW) and (out, in)), so a parameter keeps
its name and its array; only BatchNorm parameters are renamed:

    torch state dict             MindSpore parameter
    <bn>.weight            <->   <bn>.gamma
    <bn>.bias              <->   <bn>.beta
    <bn>.running_mean      <->   <bn>.moving_mean
    <bn>.running_var       <->   <bn>.moving_variance
    <bn>.num_batches_tracked      (skipped: MindSpore has no counterpart; torch's
                                   ``load_state_dict`` fills it in when absent)
    everything else        <->   the same name, the same array

Which prefixes are BatchNorm layers is not guessed from the names: this module carries a
framework-free list of every layer of each model (``layer_specs``), and both functions check
the given keys against it, raising ValueError that names the missing and unexpected keys.
Arrays are copied unchanged (dtype and values), so both directions round-trip exactly.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

import numpy as np

from fishbench.models.fishnet_plan import fishnet_plan

MODEL_NAMES: tuple[str, ...] = ("fishnet99", "resnet50")

#: Parameter suffixes of each layer kind, as (torch, mindspore) pairs.
_SUFFIXES: dict[str, tuple[tuple[str, str], ...]] = {
    "conv": (("weight", "weight"),),
    "conv_bias": (("weight", "weight"), ("bias", "bias")),
    "dense": (("weight", "weight"), ("bias", "bias")),
    "bn": (("weight", "gamma"), ("bias", "beta"),
           ("running_mean", "moving_mean"), ("running_var", "moving_variance")),
}
_TORCH_BN_EXTRA = "num_batches_tracked"

_RESNET50_LAYERS = (3, 4, 6, 3)


def _fish_bottlenecks(prefix: str, in_ch: int, out_ch: int, count: int,
                      group_identity: bool = False) -> Iterator[tuple[str, str]]:
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


def _fishnet99_layers() -> Iterator[tuple[str, str]]:
    plan = fishnet_plan()
    for i in (1, 2, 3):
        yield f"stem.conv{i}", "conv"
        yield f"stem.bn{i}", "bn"
    for i, stage in enumerate(plan.tail):
        yield from _fish_bottlenecks(f"tail.{i}.blocks", stage.in_ch, stage.out_ch, stage.blocks)
    bridge = plan.bridge.out_ch
    yield from (("bridge.score.bn1", "bn"), ("bridge.score.conv", "conv"),
                ("bridge.score.bn2", "bn"), ("bridge.score_fc", "conv_bias"))
    yield from _fish_bottlenecks("bridge.blocks", 2 * bridge, bridge, plan.bridge.blocks)
    yield from (("bridge.se_bn", "bn"), ("bridge.se_squeeze", "conv_bias"),
                ("bridge.se_excite", "conv_bias"))
    for part, stages in (("body", plan.body), ("head", plan.head)):
        for j, stage in enumerate(stages):
            yield from _fish_bottlenecks(f"{part}.{j}.blocks", stage.in_ch, stage.out_ch,
                                         stage.blocks, group_identity=part == "body")
            yield from _fish_bottlenecks(f"{part}.{j}.transfer", stage.skip_ch, stage.skip_ch,
                                         stage.transfer_blocks)
    yield from (("classifier.trunk.bn1", "bn"), ("classifier.trunk.conv", "conv"),
                ("classifier.trunk.bn2", "bn"), ("classifier.fc", "conv_bias"))


def _resnet50_layers() -> Iterator[tuple[str, str]]:
    yield "conv1", "conv"
    yield "bn1", "bn"
    for stage, count in enumerate(_RESNET50_LAYERS, start=1):
        for i in range(count):
            block = f"layer{stage}.{i}"
            for k in (1, 2, 3):
                yield f"{block}.conv{k}", "conv"
                yield f"{block}.bn{k}", "bn"
            if i == 0:  # every stage's first block changes channels (and stage 2+ the stride)
                yield f"{block}.downsample.0", "conv"
                yield f"{block}.downsample.1", "bn"
    yield "fc", "dense"


def layer_specs(model_name: str) -> list[tuple[str, str]]:
    """Every parameterised layer of a model as (prefix, kind), kind in conv | conv_bias | dense |
    bn, in the order of the torch state dict."""
    if model_name == "fishnet99":
        return list(_fishnet99_layers())
    if model_name == "resnet50":
        return list(_resnet50_layers())
    raise ValueError(f"unknown model {model_name!r}; choose one of {list(MODEL_NAMES)}")


def name_map(model_name: str) -> dict[str, str]:
    """torch state-dict name -> MindSpore parameter name, for every parameter of the model
    (``num_batches_tracked`` buffers excluded)."""
    return {f"{prefix}.{t}": f"{prefix}.{m}"
            for prefix, kind in layer_specs(model_name) for t, m in _SUFFIXES[kind]}


def _to_numpy(value: Any) -> np.ndarray:
    """A copy of ``value`` as a numpy array; accepts numpy arrays and, by duck typing, torch
    tensors (``detach().cpu().numpy()``) and MindSpore tensors/parameters (``asnumpy()``)."""
    if hasattr(value, "asnumpy"):
        value = value.asnumpy()
    elif hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.array(value, copy=True)


def _check_keys(given: Mapping[str, Any], expected: set[str], ignored: set[str],
                model_name: str, what: str) -> None:
    missing = sorted(expected - given.keys())
    unexpected = sorted(given.keys() - expected - ignored)
    if missing or unexpected:
        def show(keys: list[str]) -> str:
            return ", ".join(keys[:10]) + (f", ... ({len(keys)} in all)" if len(keys) > 10 else "")
        parts = []
        if missing:
            parts.append(f"missing keys: {show(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {show(unexpected)}")
        raise ValueError(f"{what} do not match {model_name}: " + "; ".join(parts))


def torch_state_to_mindspore(state_dict: Mapping[str, Any], model_name: str
                             ) -> dict[str, np.ndarray]:
    """Convert a torch ``state_dict`` of ``model_name`` to arrays keyed by MindSpore parameter
    names (load with ``mindspore.load_param_into_net`` after wrapping them in Parameters)."""
    mapping = name_map(model_name)
    bn_prefixes = {p for p, kind in layer_specs(model_name) if kind == "bn"}
    ignored = {f"{p}.{_TORCH_BN_EXTRA}" for p in bn_prefixes}
    _check_keys(state_dict, set(mapping), ignored, model_name, "torch state-dict keys")
    return {ms_name: _to_numpy(state_dict[t_name]) for t_name, ms_name in mapping.items()}


def mindspore_params_to_torch(params: Mapping[str, Any], model_name: str
                              ) -> dict[str, np.ndarray]:
    """Convert MindSpore parameters of ``model_name`` (name -> array, e.g. from
    ``mindspore.load_checkpoint``) to arrays keyed by torch state-dict names (load with
    ``model.load_state_dict({k: torch.from_numpy(v) ...})``; ``num_batches_tracked`` is left
    out)."""
    mapping = name_map(model_name)
    _check_keys(params, set(mapping.values()), set(), model_name, "MindSpore parameter names")
    return {t_name: _to_numpy(params[ms_name]) for t_name, ms_name in mapping.items()}
