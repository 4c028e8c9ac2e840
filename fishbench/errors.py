"""User-facing errors: one clear paragraph naming the key or path and the fix, never a traceback."""


class FishbenchError(Exception):
    """An error the user can fix; ``run.py`` prints its message and exits non-zero."""


class ConfigError(FishbenchError):
    """A config key holds an impossible value."""


class DataError(FishbenchError):
    """The dataset is missing, has the wrong layout, or holds an unreadable image."""


class DeviceError(FishbenchError):
    """The chosen device or its runtime is not available on this host."""


class CheckpointError(FishbenchError):
    """A checkpoint is missing or belongs to another model."""


class TrainingDiverged(FishbenchError):
    """The loss became NaN or infinite."""
