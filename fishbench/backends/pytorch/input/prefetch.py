"""Work ahead in a thread: on CUDA, on a stream of its own, the results handed to the iterating
thread's stream. timm's ``PrefetchLoader`` copies on a side stream; a thread is needed too
because ``decode_jpeg`` on the GPU blocks its caller until the decode has finished (with the GIL
released)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

PIPELINE_STREAM_PRIORITY = 0  # the prefetch threads' CUDA streams (0: the default, lowest)


class Prefetcher:
    """Runs ``step`` over ``items`` in a thread, up to :attr:`depth` results ahead (on CUDA on a
    stream of its own). ``step`` returns its result and the tensors in it; iterating yields the
    results in order, on CUDA each one ordered on the iterating thread's current stream (that
    stream waits for the step's work and takes its tensors over, ``record_stream``). An error in
    the thread is raised in the iterating one."""

    depth = 2
    _END = object()

    def __init__(self, step: Callable[[Any], tuple[Any, list[torch.Tensor]]], items: Iterable,
                 device: torch.device) -> None:
        self.step, self.items, self.device = step, items, device
        self.ready: queue.Queue = queue.Queue(maxsize=self.depth)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fishbench-prefetch", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        stream = (torch.cuda.Stream(self.device, priority=PIPELINE_STREAM_PRIORITY)
                  if self.device.type == "cuda" else None)
        try:
            with torch.cuda.stream(stream):  # no stream: a no-op
                for item in self.items:
                    result, tensors = self.step(item)
                    done = stream.record_event() if stream is not None else None
                    if not self._put((result, tensors, done)):
                        return
            self._put(self._END)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, raised there
            self._put(err)

    def _put(self, item: object) -> bool:
        """Queue ``item`` unless the consumer stopped; False when it did."""
        while not self.stopping.is_set():
            try:
                self.ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Any]:
        current = torch.cuda.current_stream(self.device) if self.device.type == "cuda" else None
        while (item := self.ready.get()) is not self._END:
            if isinstance(item, BaseException):
                raise item
            result, tensors, done = item
            if current is not None:
                current.wait_event(done)
                for tensor in tensors:
                    tensor.record_stream(current)
            yield result

    def stop(self) -> None:
        """Stop the thread (it finishes the item it is on) and wait for it."""
        self.stopping.set()
        self.thread.join()
