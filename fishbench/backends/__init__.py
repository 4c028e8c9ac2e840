"""The backends by name: :func:`get_backend` returns the chosen one's :class:`Backend`.

Adding a backend is a folder ``fishbench/backends/<name>/`` with a ``backend.py`` and one line in
:data:`BACKENDS`. Backend modules import their framework only inside their methods.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path

from fishbench.backends.base import Backend

#: name -> "module:class" of each backend.
BACKENDS = {
    "pytorch": "fishbench.backends.pytorch.backend:PyTorchBackend",
    "mindspore": "fishbench.backends.mindspore.backend:MindSporeBackend",
}


def backend_names() -> tuple[str, ...]:
    return tuple(BACKENDS)


@lru_cache(maxsize=None)
def get_backend(name: str) -> Backend:
    """The backend called ``name`` (one of :func:`backend_names`)."""
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)()


def checkpoint_suffixes(first: str) -> tuple[str, ...]:
    """Every backend's checkpoint suffix, ``first`` (the running backend's) first."""
    return tuple(dict.fromkeys((first, *(get_backend(n).checkpoint_suffix for n in BACKENDS))))


def backend_of_checkpoint(path: Path) -> Backend | None:
    """The backend whose checkpoint files end like ``path``; None for another suffix."""
    for name in BACKENDS:
        if path.suffix == get_backend(name).checkpoint_suffix:
            return get_backend(name)
    return None
