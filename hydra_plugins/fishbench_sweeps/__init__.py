"""Hydra plugin: the repository's ``sweeps/`` folder as the config group ``sweep``."""
