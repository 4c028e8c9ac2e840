"""User-facing errors: one clear paragraph naming the key or path and the fix, never a traceback."""

import signal


class FishbenchError(Exception):
    """An error the user can fix; ``run.py`` prints its message and exits with ``exit_code``."""

    exit_code = 2  # refused: a bad value, a missing file or device


class ConfigError(FishbenchError):
    """A config key holds an impossible value."""


class DataError(FishbenchError):
    """The dataset is missing, has the wrong layout, or holds an unreadable image."""


class DeviceError(FishbenchError):
    """The chosen device or its runtime is not available on this host."""


class CheckpointError(FishbenchError):
    """A checkpoint is missing or belongs to another model."""


class WriteFailed(FishbenchError):
    """A file of the run could not be written (a full disk, a lost mount): the run failed."""

    exit_code = 1


class TrainingDiverged(FishbenchError):
    """The loss became NaN or infinite."""


class RunInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM (what Slurm sends at a time limit) stopped the run."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum
