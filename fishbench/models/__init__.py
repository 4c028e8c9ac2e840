"""Framework-free model knowledge: the registry, each model family's structure (the FishNet plan,
the layer lists), weight names across frameworks.

Importing this package imports every model family file, so each has registered its names before
anyone reads :func:`fishbench.models.registry.list_models`.
"""
from fishbench.models import fishnet, resnet  # noqa: F401  (they register their models)
