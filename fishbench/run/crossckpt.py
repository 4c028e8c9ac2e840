"""Checkpoints across backends: read the other framework's file and rename its weights.

A ``.pt`` file (PyTorch backend) holds ``{"meta", "state_dict", ...}``; a ``.ckpt`` file
(MindSpore backend) holds the parameters plus the run's meta as a JSON string under
:data:`MINDSPORE_META_KEY`. Each reader imports its framework lazily, only to parse the format;
:mod:`fishbench.models.names` maps the names. Only weights cross: a resume needs the same backend.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from fishbench.models import names as convert
from fishbench.config import RunConfig
from fishbench.run.engine import check_meta
from fishbench.errors import CheckpointError

MINDSPORE_META_KEY = "fishbench_meta"
TORCH_SUFFIX, MINDSPORE_SUFFIX = ".pt", ".ckpt"
Arrays = dict[str, np.ndarray]


def read_mindspore_checkpoint(path: Path) -> tuple[Arrays, dict[str, Any]]:
    """The arrays and the JSON entries (meta under :data:`MINDSPORE_META_KEY`, RNG states) of a
    fishbench MindSpore checkpoint."""
    import mindspore as ms  # noqa: PLC0415  (only to parse the file format)

    try:
        saved = ms.load_checkpoint(str(path))
        entries = {k: json.loads(v) for k, v in saved.items() if isinstance(v, str)}
    except Exception as err:  # noqa: BLE001  (any file: MindSpore's parser raises many kinds)
        entries, saved = {"error": f"{type(err).__name__}: {err}"}, {}
    if MINDSPORE_META_KEY not in entries:
        raise CheckpointError(f"ckpt_path '{path}' is not a fishbench MindSpore checkpoint "
                              f"({entries.get('error', 'it has no ' + MINDSPORE_META_KEY)}). "
                              "Pass a .ckpt file from a run's checkpoints/ dir, or the run dir.")
    return {k: v.asnumpy() for k, v in saved.items() if not isinstance(v, str)}, entries


def load_torch_checkpoint(path: Path) -> dict[str, Any]:
    """A fishbench PyTorch checkpoint's contents: ``meta``, ``state_dict`` and training state."""
    import torch  # noqa: PLC0415  (only to parse the file format)

    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
        if not {"meta", "state_dict"} <= set(saved):
            raise KeyError("it has no meta and state_dict")
    except Exception as err:  # noqa: BLE001  (any file: unpickling raises many kinds)
        raise CheckpointError(
            f"ckpt_path '{path}' is not a fishbench PyTorch checkpoint ({type(err).__name__}: "
            f"{err}). Pass a .pt file from a run's checkpoints/ dir, or the run dir."
        ) from None
    return saved


def read_torch_checkpoint(path: Path) -> tuple[Arrays, dict[str, Any]]:
    """The model's state dict (as arrays) and the fishbench meta of a PyTorch checkpoint."""
    saved = load_torch_checkpoint(path)
    return {k: v.numpy() for k, v in saved["state_dict"].items()}, saved["meta"]


def foreign_weights(path: Path, cfg: RunConfig, full: bool) -> tuple[Arrays, dict[str, Any]]:
    """Weights of the other backend's checkpoint at ``path``, named for ``cfg.backend``."""
    if full:
        raise CheckpointError(
            f"resume=true continues a run of the same backend, but '{path}' was written by the "
            f"other one. Resume with the backend that wrote it, or start a new run from its "
            f"weights with ckpt_path={path} resume=false."
        )
    if path.suffix == TORCH_SUFFIX:
        arrays, meta = read_torch_checkpoint(path)
        rename = convert.torch_state_to_mindspore
    else:
        arrays, entries = read_mindspore_checkpoint(path)
        meta = entries[MINDSPORE_META_KEY]
        model = set(convert.name_map(cfg.model.name).values())  # not the optimizer's entries
        arrays = {k: v for k, v in arrays.items() if k in model}
        rename = convert.mindspore_params_to_torch
    check_meta(meta, cfg, path)
    try:
        return rename(arrays, cfg.model.name), meta
    except ValueError as err:
        raise CheckpointError(f"ckpt_path '{path}': {err}. Was it written by another version "
                              "of fishbench?") from None
