"""The MindSpore backend's checkpoint files: ``.ckpt`` files of parameters plus JSON text.

A file holds the training network's parameters (the model's, the optimizer's state) and, as
JSON strings, the run's meta under :data:`META_KEY` and every rank's RNG states under
:data:`RNG_KEY`. MindSpore's format is protobuf and the extra entries are JSON, so reading a
file never runs code from it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import mindspore as ms

from fishbench.backends.base import Arrays
from fishbench.errors import CheckpointError
from fishbench.models import names

META_KEY = "fishbench_meta"
RNG_KEY = "fishbench_rng"


def write_checkpoint(net: ms.nn.Cell, path: Path, meta: dict[str, Any],
                     rng_states: list[Any]) -> None:
    """Save ``net``'s parameters with ``meta`` and ``rng_states`` at ``path``."""
    # MindSpore appends ".ckpt" to other names (and makes the file read-only): save there.
    target = path.with_name(path.name + ".ckpt")
    try:
        ms.save_checkpoint(net, str(target), append_dict={META_KEY: json.dumps(meta),
                                                          RNG_KEY: json.dumps(rng_states)})
        os.replace(target, path)
    finally:  # a failed save (a full disk) leaves no partial file behind
        target.unlink(missing_ok=True)


def read_checkpoint(path: Path) -> tuple[Arrays, dict[str, Any], Any]:
    """The arrays, the meta and the RNG states (None when absent) of a fishbench MindSpore
    checkpoint; :class:`CheckpointError` for any other file."""
    try:
        saved = ms.load_checkpoint(str(path))
        entries = {k: json.loads(v) for k, v in saved.items() if isinstance(v, str)}
    except Exception as err:  # noqa: BLE001  (any file: MindSpore's parser raises many kinds)
        entries, saved = {"error": f"{type(err).__name__}: {err}"}, {}
    if META_KEY not in entries:
        raise CheckpointError(f"ckpt_path '{path}' is not a fishbench MindSpore checkpoint "
                              f"({entries.get('error', 'it has no ' + META_KEY)}). "
                              "Pass a .ckpt file from a run's checkpoints/ dir, or the run dir.")
    arrays = {k: v.asnumpy() for k, v in saved.items() if not isinstance(v, str)}
    return arrays, entries[META_KEY], entries.get(RNG_KEY)


def read_weights(path: Path, model_name: str) -> tuple[Arrays, dict[str, Any]]:
    """The model's weights named as torch's state dict, and the run's meta. The names are those
    of the model the file says it holds (``model_name`` for a file that does not say), so that
    the caller's meta check names a checkpoint of another model."""
    arrays, meta, _ = read_checkpoint(path)
    model = meta.get("model") or model_name
    try:
        own = set(names.name_map(model).values())  # not the optimizer's entries
        return names.mindspore_params_to_torch(
            {k: v for k, v in arrays.items() if k in own}, model), meta
    except ValueError as err:
        raise CheckpointError(f"ckpt_path '{path}': {err}. Was it written by another version "
                              "of fishbench?") from None
