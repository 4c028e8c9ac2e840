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

Which prefixes are BatchNorm layers is not guessed from the names: each model registers the
framework-free list of its layers (``fishbench.models.registry.layer_specs``), and both functions
check the given keys against it, raising ValueError that names the missing and unexpected keys.
Arrays are copied unchanged (dtype and values), so both directions round-trip exactly.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from fishbench.models.registry import LayerKind, layer_specs

#: Parameter suffixes of each layer kind, as (torch, mindspore) pairs.
_SUFFIXES: dict[LayerKind, tuple[tuple[str, str], ...]] = {
    "conv": (("weight", "weight"),),
    "conv_bias": (("weight", "weight"), ("bias", "bias")),
    "dense": (("weight", "weight"), ("bias", "bias")),
    "bn": (("weight", "gamma"), ("bias", "beta"),
           ("running_mean", "moving_mean"), ("running_var", "moving_variance")),
}
_TORCH_BN_EXTRA = "num_batches_tracked"


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
