"""The benchmark scripts' own tools: the loads run beside a training (niced processes only
inside their block, a paced loader), the input-pipeline benchmark's trace summary and its
garbage-collector timer."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from conftest import REPO
from tests.helpers.processes import processes_running

sys.path.insert(0, str(REPO / "benchmarks"))
from input_pipeline import TimedLogger, trace_summary  # noqa: E402
from load_beside import PROCESS_CODE, load_beside, take_paced  # noqa: E402

MEMORY_LOAD = PROCESS_CODE["memory"]


def test_memory_load_runs_niced_processes_only_inside_its_block() -> None:
    with load_beside("memory", 2):
        pids = processes_running(MEMORY_LOAD)
        assert len(pids) == 2
        # the nice level: field 19 of /proc/PID/stat, the 17th after the command's ')'
        assert all(int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16]) == 19
                   for pid in pids)
    assert not processes_running(MEMORY_LOAD)


def test_trace_summary_splits_the_training_streams_idle_time() -> None:
    def kernel(stream: int, ts: float, dur: float, correlation: int) -> dict:
        return {"ph": "X", "cat": "kernel", "name": "k", "ts": ts, "dur": dur,
                "args": {"stream": stream, "correlation": correlation}}

    def launch(ts: float, correlation: int) -> dict:
        return {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": ts,
                "dur": 5.0, "tid": 1, "args": {"correlation": correlation}}

    def sync(ts: float, dur: float) -> dict:
        return {"ph": "X", "cat": "cuda_runtime", "name": "cudaStreamSynchronize", "ts": ts,
                "dur": dur, "tid": 2, "args": {}}

    # Training stream 7: kernel 2 starts 100 us after kernel 1 ends and was launched 60 us after
    # that end (60 late, 40 waiting); kernel 3, launched early, starts 40 us after kernel 2 ends.
    events = [kernel(7, 0, 1000, 1), launch(0, 1), kernel(7, 1100, 500, 2), launch(1055, 2),
              kernel(7, 1640, 500, 3), launch(900, 3), kernel(9, 200, 300, 4), launch(150, 4),
              sync(100, 700), sync(1200, 600),
              {"ph": "M", "name": "thread_name", "tid": 2, "args": {"name": "fishbench-prefetch"}}]
    assert trace_summary(events, steps=1).splitlines() == [
        "stream 7: 3 kernels, 2.00 ms busy per step",
        "stream 9: 1 kernels, 0.30 ms busy per step",
        "training stream idle per step: 0.06 ms before kernels not yet launched, 0.08 ms after "
        "launched ones",
        # the API calls by time held, summed per thread: the prefetch thread's two syncs first
        "thread fishbench-prefetch: cudaStreamSynchronize 1.30 ms per step",
        "thread 1: cudaLaunchKernel 0.02 ms per step"]


def test_a_paced_load_takes_batches_no_faster_than_its_pace(tmp_path: Path) -> None:
    report = tmp_path / "delivered"
    take_paced(range(6), batch=10, rate=200.0, report=report)  # a source faster than the pace
    assert 100 < float(report.read_text()) <= 200.05  # 5 batches after the first, 0.25 s at least

    def slow(n: int):
        for i in range(n):
            time.sleep(0.1)
            yield i

    take_paced(slow(4), batch=10, rate=1000.0, report=report)  # a source slower than the pace
    assert float(report.read_text()) <= 100.05  # what the source gave, not the pace


def test_the_timed_logger_counts_collections_inside_its_block_only() -> None:
    import gc
    from types import SimpleNamespace

    from fishbench.run.checkpoints import Progress

    logger = TimedLogger(SimpleNamespace(log_every_n_steps=1, epochs=1), None, 4, 1, Progress())
    gc.collect()
    assert logger.collecting == 0.0
    with logger:
        gc.collect()
        inside = logger.collecting
    gc.collect()
    assert inside > 0 and logger.collecting == inside
    assert logger._on_collection not in gc.callbacks
