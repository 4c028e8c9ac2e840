"""A run's training batches as one stream over its epochs, taken epoch by epoch.

Every epoch's order is known in advance (:meth:`DatasetIndex.epoch_order` is a pure function of
seed, epoch and rank), so a backend's loader can plan all the remaining epochs at once: its
workers, decoders and prefetching then carry on across an epoch's end instead of starting cold
at each epoch (and keep their next batches ready while validation runs).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from itertools import islice
from typing import Any

# a loader's stream of epochs first..end-1, the first `steps` batches of each
OpenStream = Callable[[int, int, int], Generator[Any, None, None]]


class TrainingStream:
    """The batches of epochs up to ``end`` from ``open_stream``, ``steps`` per epoch.

    The stream opens at the first epoch asked for (a resumed run's) and serves the epochs that
    follow in turn; an epoch out of turn opens it again there. It closes (its workers and
    threads stop) once the last epoch's batches are taken, or on :meth:`close`.
    """

    def __init__(self, open_stream: OpenStream, end: int, steps: int) -> None:
        self.open_stream, self.end, self.steps = open_stream, end, steps
        self._stream: Generator[Any, None, None] | None = None
        self._next_epoch = 0  # the epoch of the open stream's next batch

    def epoch(self, epoch: int) -> Iterator[Any]:
        """The ``steps`` batches of ``epoch``."""
        if self._stream is None or epoch != self._next_epoch:
            self.close()
            self._stream = self.open_stream(epoch, max(self.end, epoch + 1), self.steps)
        self._next_epoch = epoch + 1
        return self._take(self._stream)

    def _take(self, stream: Generator[Any, None, None]) -> Iterator[Any]:
        yield from islice(stream, self.steps)
        if self._next_epoch >= self.end and stream is self._stream:
            self.close()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
