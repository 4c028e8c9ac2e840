"""Shared-memory slots that DataLoader workers reuse for the batches they hand over.

A worker hands a batch over in shared memory. Were that a new segment per batch, the main process
would map each one and, after use, free it, with the GIL held (milliseconds per batch of 256 at
224 px), time the training thread waits for the GIL. Instead each worker fills one of its own slots (a shared storage it
keeps), and the main process keeps every slot it has seen: a slot handed over again is found in
torch's cache of shared storages, not mapped again, and nothing is freed per batch.

A slot is busy from the worker's :meth:`WorkerSlots.take` until the main process's
:meth:`WorkerSlots.release` (one flag per slot in shared memory, behind a lock, which orders the
flag after the memory it guards on any CPU). A worker takes its smallest free slot that fits,
grows a free one that is too small, and, when all its slots are busy, a fresh segment (the slot
``-1``, freed as before). :meth:`WorkerSlots.reset` frees every slot at the start of a loader's
iteration (one per evaluation; one for all of a run's training epochs), once the last one's batches
can no longer be read (its workers shut down, or, persistent, the DataLoader drops what they still
deliver for an old iteration).
"""

from __future__ import annotations

import ctypes
import multiprocessing

import torch
from torch.utils.data import get_worker_info

FRESH = -1  # the slot of a batch in memory of its own


class WorkerSlots:
    """``per_worker`` reusable shared storages for each of ``workers`` DataLoader workers."""

    def __init__(self, workers: int, per_worker: int) -> None:
        self.per_worker = per_worker
        self.busy = multiprocessing.Array(ctypes.c_bool, max(workers, 1) * per_worker)
        self._mine: dict[int, torch.UntypedStorage] = {}  # in a worker: its slots
        self._kept: dict[int, torch.UntypedStorage] = {}  # in the main process: every slot seen

    def take(self, nbytes: int) -> tuple[int, torch.UntypedStorage]:
        """A slot of at least ``nbytes``, now busy, and its storage. Outside a worker: plain
        memory (slot :data:`FRESH`), as nothing is handed over."""
        info = get_worker_info()
        if info is None:
            return FRESH, torch.UntypedStorage(nbytes)
        first = info.id * self.per_worker
        with self.busy.get_lock():
            free = [s for s in range(first, first + self.per_worker) if not self.busy[s]]
            fits = [s for s in free if s in self._mine and self._mine[s].nbytes() >= nbytes]
            if fits:
                slot = min(fits, key=lambda s: self._mine[s].nbytes())
            elif free:
                slot = free[0]
                self._mine[slot] = torch.UntypedStorage._new_shared(nbytes * 5 // 4)
            else:
                return FRESH, torch.UntypedStorage._new_shared(nbytes)
            self.busy[slot] = True
        return slot, self._mine[slot]

    def release(self, slot: int, storage: torch.UntypedStorage) -> None:
        """In the main process: the batch in ``slot`` (held in ``storage``) is done with. The
        storage stays mapped here, so that the slot comes back without a new mapping."""
        if slot == FRESH:
            return
        self._kept[slot] = storage
        with self.busy.get_lock():
            self.busy[slot] = False

    def reset(self) -> None:
        """Every slot free (see the module's docstring for when that is safe)."""
        with self.busy.get_lock():
            self.busy[:] = [False] * len(self.busy)
