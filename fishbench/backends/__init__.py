"""Backends: each one is imported only when it is chosen (``backend=pytorch|mindspore``)."""

from __future__ import annotations

import importlib
from types import ModuleType


def load_backend(name: str) -> ModuleType:
    """The backend package ``fishbench.backends.<name>``; it exposes ``create_trainer``."""
    return importlib.import_module(f"fishbench.backends.{name}")
