"""The error of ``fishbench compare`` and of the sweep summary it shares its code with."""

from fishbench.errors import FishbenchError


class CompareError(FishbenchError):
    """A path that holds no run, a filter or sort key no run has, or an output file in a folder
    that does not exist."""
