"""Load to run beside a benchmark run, to see what slows the training thread (``--beside``).

``cpu``: processes at nice 19 spinning in Python (busy cores, nothing else); ``memory``:
processes at nice 19 each copying a 64 MiB array over another in a loop (memory traffic);
``gil``: a thread in this process holding the GIL for 70 µs of every ~1.07 ms (~7%); ``copy``: a
thread copying a 38 MiB tensor 15 times a second, what the DataLoader's pin thread copies per
batch (releasing the GIL, as the pin thread does).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from typing import Callable, Iterator

import torch

PROCESS_CODE = {
    "cpu": "while True: pass",
    "memory": "import numpy as np\na = np.ones(64 << 20, np.uint8)\nb = np.empty_like(a)\n"
              "while True: np.copyto(b, a)",
}
LABELS = {"cpu": "busy processes", "memory": "memory-streaming processes",
          "gil": "a thread holding the GIL ~7%", "copy": "a thread copying 38 MiB 15x/s"}
LOADS = tuple(LABELS)


def hold_gil(stop: threading.Event) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        while time.perf_counter() - start < 70e-6:
            pass
        time.sleep(0.001)


def copy_tensor(stop: threading.Event) -> None:
    source = torch.ones(38 << 20, dtype=torch.uint8)
    target = torch.empty_like(source)
    while not stop.is_set():
        target.copy_(source)
        time.sleep(1 / 15)


THREADS: dict[str, Callable[[threading.Event], None]] = {"gil": hold_gil, "copy": copy_tensor}


def label(load: str, processes: int) -> str:
    return f"{processes} {LABELS[load]}" if load in PROCESS_CODE else LABELS[load]


@contextlib.contextmanager
def load_beside(load: str, processes: int) -> Iterator[None]:
    """Run ``load`` (one of :data:`LOADS`; ``processes`` of them for ``cpu`` and ``memory``)
    while the block runs; stopped, its processes killed and reaped, when it ends."""
    stop = threading.Event()
    children: list[subprocess.Popen] = []
    try:
        if load in PROCESS_CODE:
            children = [subprocess.Popen([sys.executable, "-c", PROCESS_CODE[load]],
                                         preexec_fn=lambda: os.nice(19))
                        for _ in range(processes)]
            time.sleep(1)  # started and at work
        else:
            threading.Thread(target=THREADS[load], args=(stop,), daemon=True).start()
        yield
    finally:
        stop.set()
        for child in children:
            child.kill()
            child.wait()
