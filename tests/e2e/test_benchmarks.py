"""The benchmark scripts still run against the package (a CPU dry run of each table), and the
input-pipeline benchmark's trace summary."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import IMAGENET_SAMPLE, REPO


MODES = ("default", "reduce-overhead")  # on the CPU uncompiled: two labels, two bare loops
sys.path.insert(0, str(REPO / "benchmarks"))
from load_beside import PROCESS_CODE  # noqa: E402

MEMORY_LOAD = PROCESS_CODE["memory"]
PACED_ROW = re.compile(r"trainer, synthetic, (\S+), beside the cpu decoder's loader in a process "
                       r"of its own, ([\d,]+) img/s \(paced to ([\d,]+)\)")


@pytest.mark.skipif(not IMAGENET_SAMPLE.is_dir(), reason="../shared/data/imagenet-sample is absent")
def test_input_pipeline_benchmark_prints_a_consistent_table(tmp_path: Path) -> None:
    out = tmp_path / "table.md"
    proc = subprocess.run(
        [sys.executable, "benchmarks/input_pipeline.py", "--source", str(IMAGENET_SAMPLE),
         "--root", str(tmp_path / "tree"), "--classes", "2", "--per-class", "8", "--batch", "4",
         "--steps", "2", "--warmup", "2", "--decoders", "cpu", "--models", "resnet50",
         "--workers", "0", "--repeats", "2", "--compile-modes", "default", "reduce-overhead",
         "--beside", "gil", "pipeline", "--beside-processes", "1", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list((tmp_path / "tree" / "train").glob("c*/*.JPEG"))) == 16
    assert not processes_running("load_beside.py")  # the paced load's process was stopped
    runs: dict[str, list[tuple[int, float, float, float, float, float]]] = {}
    means = {}
    synthetic = 0
    for line in out.read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 8 and re.fullmatch(r"[\d,]+", cells[2]):
            runs.setdefault(cells[0], []).append(
                (int(cells[2].replace(",", "")), *(float(c or "nan") for c in cells[3:])))
            speed = runs[cells[0]][-1][0]
            if cells[0].startswith("trainer, synthetic") and "beside" not in cells[0]:
                synthetic = speed
            elif "beside" in cells[0]:  # against the synthetic run just before it
                assert (speed - 0.5) / (synthetic + 0.5) - 0.005 <= float(cells[4]) <= (
                    speed + 0.5) / (synthetic - 0.5) + 0.005
                if paced := PACED_ROW.fullmatch(cells[0]):  # the loader paced to that run
                    delivered, pace = (int(g.replace(",", "")) for g in paced.groups()[1:])
                    assert pace == synthetic and 0 < delivered <= pace + 1
        elif len(cells) == 4 and re.fullmatch(r"[\d.]+", cells[2]):
            means[cells[0]] = (float(cells[2]), [float(r) for r in cells[3].split(", ")])
    paced = {mode: [r for row, rs in runs.items() if (m := PACED_ROW.fullmatch(row))
                    and m.group(1) == mode for r in rs] for mode in MODES}
    assert {k: len(v) for k, v in runs.items() if not PACED_ROW.fullmatch(k)} == {
        "cpu decoder, loader only (0 CPU fallbacks)": 1,
        **{f"bare PyTorch loop, synthetic, {mode}": 1 for mode in MODES},
        **{f"trainer, {what}, {mode}": 2 for what in ("synthetic", "cpu decoder") for mode in MODES},
        **{f"trainer, synthetic, {mode}, beside a thread holding the GIL ~7%": 2 for mode in MODES}}
    assert [len(rows) for rows in paced.values()] == [2, 2]  # a paced row per mode and repeat
    assert all(speed > 0 for rs in runs.values() for speed, *_ in rs)
    for mode in MODES:
        # each mode's rows against the bare loop compiled in that mode
        bare = runs[f"bare PyTorch loop, synthetic, {mode}"][0][0]
        for speed, vs_bare, _, waited, launching, collecting in runs[
                f"trainer, cpu decoder, {mode}"]:
            # the two timed steps of 4 images take 2 * 1000 * 4 / speed ms (speed rounded): the
            # waits for their batches (with workers=0 the reading and decoding itself) and the
            # launching of the first (the second ends at a log point, left out); the collector
            # ran within those two steps, if at all
            step_ms = 1000 * 4 / (speed - 0.5)
            assert 0 < waited and 0 < launching and 2 * waited + launching < 2 * step_ms
            assert 0 <= collecting < step_ms
            # the ratio columns come from the unrounded speeds: within the rounding of the shown ones
            assert (speed - 0.5) / (bare + 0.5) - 0.005 <= vs_bare <= (speed + 0.5) / (bare - 0.5) + 0.005
        # the summary: each run against the synthetic run just before it, and their mean
        mean, paired = means[f"trainer, cpu decoder, {mode}"]
        assert paired == [vs_syn for _, _, vs_syn, *_ in runs[f"trainer, cpu decoder, {mode}"]]
        assert abs(mean - sum(paired) / 2) <= 0.006
        # the paced rows, whose labels differ by their figures, are summarised together
        _, paired = means[f"trainer, synthetic, {mode}, beside the cpu decoder's loader in a "
                          "process of its own"]
        assert paired == [vs_syn for _, _, vs_syn, *_ in paced[mode]]

@pytest.mark.skipif(not IMAGENET_SAMPLE.is_dir(), reason="../shared/data/imagenet-sample is absent")
def test_decode_benchmark_compares_the_two_cpu_decoders_on_the_same_crops() -> None:
    proc = subprocess.run(
        [sys.executable, "benchmarks/decode_cpu.py", "--source", str(IMAGENET_SAMPLE),
         "--files", "6", "--rounds", "1"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = re.findall(r"^(train|eval): PIL (\d+), torch (\d+) img per CPU second \(([\d.]+)x\); "
                      r"\|difference\| mean ([\d.]+), max (\d+) levels$", proc.stdout, re.M)
    assert [r[0] for r in rows] == ["train", "eval"], proc.stdout
    for _, pil, tensor, ratio, mean, _ in rows:
        assert int(pil) > 0 and abs(float(ratio) - int(tensor) / int(pil)) < 0.01
        assert float(mean) < 1.0  # the same crops: the kernels differ by rounding


def processes_running(code: str) -> list[int]:
    """The pids of the processes running ``python -c code``."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if code.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:  # ended meanwhile
            continue
    return pids


def test_memory_load_runs_niced_processes_only_inside_its_block() -> None:
    from load_beside import load_beside

    with load_beside("memory", 2):
        pids = processes_running(MEMORY_LOAD)
        assert len(pids) == 2
        # the nice level: field 19 of /proc/PID/stat, the 17th after the command's ')'
        assert all(int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16]) == 19
                   for pid in pids)
    assert not processes_running(MEMORY_LOAD)


def test_trace_summary_splits_the_training_streams_idle_time() -> None:
    from input_pipeline import trace_summary

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
    from load_beside import take_paced

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
    from input_pipeline import TimedLogger

    logger = TimedLogger(SimpleNamespace(log_every_n_steps=1, epochs=1), None, 4, 1, Progress())
    gc.collect()
    assert logger.collecting == 0.0
    with logger:
        gc.collect()
        inside = logger.collecting
    gc.collect()
    assert inside > 0 and logger.collecting == inside
    assert logger._on_collection not in gc.callbacks
