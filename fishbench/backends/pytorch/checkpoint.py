"""The PyTorch backend's checkpoint files: ``.pt`` files of tensors and plain values.

A file holds ``{"meta", "state_dict", "optimizer", "scaler", "rng"}``. It is read with
``torch.load(weights_only=True)``, which rebuilds tensors, containers and plain values and
refuses every other object, so a checkpoint never runs code: a pickle payload that would call
a function stops the load instead.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from fishbench.backends.base import Arrays
from fishbench.errors import CheckpointError

REQUIRED_KEYS = ("meta", "state_dict")


def write_checkpoint(path: Path, contents: dict[str, Any]) -> None:
    """Save ``contents`` (tensors and plain values only) as a fishbench ``.pt`` file. The file
    is closed however the write ends (torch's own file writer stays open when a full disk
    stops it, and its blocks are not freed when the file is removed)."""
    with open(path, "wb") as f:
        torch.save(contents, f)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A fishbench ``.pt`` file's contents, on the CPU; :class:`CheckpointError` for any file
    that holds other objects than tensors and plain values, or is not a fishbench checkpoint."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only refused an object, or not a pickle
        found = re.search(r"GLOBAL (\S+)", str(err))
        why = (f"it holds an object other than tensors and plain values: {found.group(1)}"
               if found else "it is not a torch file")
        raise _not_a_checkpoint(path, why) from None
    except Exception as err:  # noqa: BLE001  (any file: torch's readers raise many kinds)
        first_line = str(err).partition("\n")[0]
        raise _not_a_checkpoint(path, f"{type(err).__name__}: {first_line}") from None
    if not isinstance(saved, dict) or not set(REQUIRED_KEYS) <= set(saved):
        raise _not_a_checkpoint(path, "it has no meta and state_dict")
    return saved


def _not_a_checkpoint(path: Path, why: str) -> CheckpointError:
    return CheckpointError(
        f"ckpt_path '{path}' is not a fishbench PyTorch checkpoint ({why}). fishbench never "
        "runs code from a checkpoint: it loads only tensors and plain values. Pass a .pt file "
        "from a run's checkpoints/ dir, or the run dir."
    )


def read_weights(path: Path, model_name: str) -> tuple[Arrays, dict[str, Any]]:
    """The model's state dict (as arrays, already named as torch's) and the run's meta; the
    names are checked by the trainer that loads them, against ``model_name``'s."""
    saved = read_checkpoint(path)
    return {k: v.numpy() for k, v in saved["state_dict"].items()}, saved["meta"]
