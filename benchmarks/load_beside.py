"""Load to run beside a benchmark run, to see what slows the training thread (``--beside``).

``cpu``: processes at nice 19 spinning in Python (busy cores, nothing else); ``memory``:
processes at nice 19 each copying a 64 MiB array over another in a loop (memory traffic);
``gil``: a thread in this process holding the GIL for 70 µs of every ~1.07 ms (~7%); ``copy``: a
thread copying a 38 MiB tensor 15 times a second, what the DataLoader's pin thread copies per
batch (releasing the GIL, as the pin thread does). Two loads run in a process of their own, at
nice 0, paced to the trainer's speed (:class:`Pace`), and say what they delivered: ``pipeline``,
fishbench's train loader (workers, decode, crops, float stage; its batches dropped), which is
what a pipeline moved out of the training process would still cost it; ``nvjpeg``, torchvision's
``decode_jpeg`` on the GPU of one batch's nvjpeg share of the tree's files, again and again
(nvjpeg's part of that cost). Run as a script, this module is that process.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch

from fishbench.run.records import atomic_write_text

PROCESS_CODE = {
    "cpu": "while True: pass",
    "memory": "import numpy as np\na = np.ones(64 << 20, np.uint8)\nb = np.empty_like(a)\n"
              "while True: np.copyto(b, a)",
}
PACED = {"pipeline": "the {decoder} decoder's loader in a process of its own",
         "nvjpeg": "nvjpeg on {files} files per batch in a process of its own"}
LABELS = {"cpu": "busy processes", "memory": "memory-streaming processes",
          "gil": "a thread holding the GIL ~7%", "copy": "a thread copying 38 MiB 15x/s", **PACED}
LOADS = tuple(LABELS)
STARTUP_SECONDS = 300  # a paced load's first batch (workers, a compile) must come within this


@dataclass
class Pace:
    """What a paced load reads and how fast: the benchmark's tree, decoder and nvjpeg share,
    batch size, workers and crop side, and the img/s to pace to (the trainer's on synthetic
    input)."""

    root: Path
    decoder: str
    share: float
    batch: int
    workers: str | int
    image_size: int
    rate: float

    @property
    def nvjpeg_files(self) -> int:
        return round(self.batch * self.share)

    def argv(self) -> list[str]:
        return ["--root", str(self.root), "--decoder", self.decoder, "--share", str(self.share),
                "--batch", str(self.batch), "--workers", str(self.workers),
                "--image-size", str(self.image_size), "--rate", str(self.rate)]


@dataclass
class Beside:
    """A load and its label; a paced one's ``delivered`` img/s is known once it has stopped."""

    load: str
    processes: int
    pace: Pace | None = None
    delivered: float = float("nan")

    @property
    def name(self) -> str:
        """What runs beside, without figures: the summary's key."""
        if self.load in PROCESS_CODE:
            return f"{self.processes} {LABELS[self.load]}"
        if self.pace is None:
            return LABELS[self.load]
        return PACED[self.load].format(decoder=self.pace.decoder, files=self.pace.nvjpeg_files)

    @property
    def label(self) -> str:
        """:attr:`name`, for a paced load with what it delivered and the pace."""
        if self.pace is None:
            return self.name
        return f"{self.name}, {self.delivered:,.0f} img/s (paced to {self.pace.rate:,.0f})"


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


@contextlib.contextmanager
def load_beside(load: str, processes: int, pace: Pace | None = None) -> Iterator[Beside]:
    """Run ``load`` (one of :data:`LOADS`; ``processes`` of them for ``cpu`` and ``memory``,
    ``pace`` for the paced ones) while the block runs; stopped, its processes (with theirs)
    killed and reaped, when it ends. A paced load's block starts once it delivers batches."""
    stop = threading.Event()
    children: list[subprocess.Popen] = []
    beside = Beside(load, processes, pace if load in PACED else None)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "delivered"
        try:
            if load in PROCESS_CODE:
                children = [subprocess.Popen([sys.executable, "-c", PROCESS_CODE[load]],
                                             preexec_fn=lambda: os.nice(19), start_new_session=True)
                            for _ in range(processes)]
                time.sleep(1)  # started and at work
            elif load in PACED:
                if pace is None:
                    raise ValueError(f"the {load} load needs a Pace")
                children = [subprocess.Popen(
                    [sys.executable, __file__, load, *pace.argv(), "--report", str(report)],
                    start_new_session=True)]
                wait_for_report(children[0], report)
            else:
                threading.Thread(target=THREADS[load], args=(stop,), daemon=True).start()
            yield beside
        finally:
            stop.set()
            for child in children:  # each leads a process group: a paced load's workers go with it
                with contextlib.suppress(ProcessLookupError):  # gone already
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            if report.exists():
                beside.delivered = float(report.read_text())


def wait_for_report(child: subprocess.Popen, report: Path) -> None:
    """Wait until the paced load ``child`` has written ``report`` (it delivers batches)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while not report.exists():
        if child.poll() is not None:
            raise RuntimeError(f"the paced load stopped at once (exit code {child.returncode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the paced load delivered no batch in {STARTUP_SECONDS} s")
        time.sleep(0.2)


def take_paced(batches: Iterable[object], batch: int, rate: float, report: Path) -> None:
    """Take ``batches`` at no more than ``rate`` img/s (``batch`` images each, their device work
    finished), writing after each one from the second on the img/s delivered since the first to
    ``report``."""
    start = 0.0
    for n, _ in enumerate(batches):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        now = time.perf_counter()
        if n == 0:
            start = now
        else:
            atomic_write_text(report, f"{n * batch / (now - start):.1f}\n")
        time.sleep(max(0.0, start + (n + 1) * batch / rate - time.perf_counter()))


def loader_batches(pace: Pace) -> Iterator[object]:
    """The benchmark's loader alone (``input_pipeline.train_split``), epoch after epoch."""
    from input_pipeline import train_split

    args = argparse.Namespace(root=pace.root, batch=pace.batch, workers=pace.workers,
                              image_size=pace.image_size, warmup=1, steps=1)  # the loader uses neither
    train, _ = train_split(args, pace.decoder, pace.share)
    for epoch in itertools.count():
        train.sampler.set_epoch(epoch)
        yield from train


def nvjpeg_batches(pace: Pace) -> Iterator[object]:
    """nvjpeg's decode of the tree's first ``pace.nvjpeg_files`` training JPEGs (from pinned
    memory, on a stream of its own, as fishbench's gpu engine), again and again."""
    from torchvision.io import ImageReadMode, decode_jpeg

    if not torch.cuda.is_available():
        raise SystemExit("the nvjpeg load decodes on the GPU: it needs CUDA")
    files = sorted((pace.root / "train").rglob("*.JPEG"))[:pace.nvjpeg_files]
    data = [torch.frombuffer(bytearray(f.read_bytes()), dtype=torch.uint8).pin_memory()
            for f in files]
    stream = torch.cuda.Stream()
    while True:
        with torch.cuda.stream(stream):
            yield decode_jpeg(data, mode=ImageReadMode.RGB, device="cuda")


def main() -> None:
    parser = argparse.ArgumentParser(description="a paced load (see the module's docstring)")
    parser.add_argument("load", choices=list(PACED))
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--decoder", required=True)
    parser.add_argument("--share", type=float, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--workers", required=True)
    parser.add_argument("--image-size", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        # Training on the CPU uses every core: this load's OpenMP threads spin-waiting beside it
        # slowed the trainer 14-fold on 2 cores (torch 2.15's dry run). On CUDA it runs as stop
        # 23 measured it.
        torch.set_num_threads(1)
    workers = args.workers if args.workers == "auto" else int(args.workers)
    pace = Pace(args.root, args.decoder, args.share, args.batch, workers, args.image_size,
                args.rate)
    batches = loader_batches(pace) if args.load == "pipeline" else nvjpeg_batches(pace)
    take_paced(batches, args.batch, args.rate, args.report)


if __name__ == "__main__":
    main()
