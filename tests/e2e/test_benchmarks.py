"""The benchmark scripts still run against the package: a CPU dry run of each table, as small
as the table allows, its figures checked against each other."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import IMAGENET_SAMPLE, REPO
from tests.helpers.processes import processes_running
from tests.helpers.run_if import RunIf

MODES = ("default",)  # on the CPU uncompiled: a label of the rows
PACED_ROW = re.compile(r"trainer, synthetic, (\S+), beside the cpu decoder's loader in a process "
                       r"of its own, ([\d,]+) img/s \(paced to ([\d,]+)\)")


@pytest.mark.slow
@RunIf(imagenet_sample=True)
def test_input_pipeline_benchmark_prints_a_consistent_table(tmp_path: Path) -> None:
    out = tmp_path / "table.md"
    proc = subprocess.run(
        [sys.executable, "benchmarks/input_pipeline.py", "--source", str(IMAGENET_SAMPLE),
         "--root", str(tmp_path / "tree"), "--classes", "2", "--per-class", "8", "--batch", "4",
         "--steps", "2", "--warmup", "2", "--image-size", "32", "--decoders", "cpu",
         "--models", "resnet50", "--workers", "0", "--repeats", "2", "--compile-modes", *MODES,
         "--beside", "gil", "pipeline", "--beside-processes", "1", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
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
    assert [len(rows) for rows in paced.values()] == [2]  # a paced row per mode and repeat
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

@RunIf(imagenet_sample=True)
def test_decode_benchmark_compares_the_two_cpu_decoders_on_the_same_crops() -> None:
    proc = subprocess.run(
        [sys.executable, "benchmarks/decode_cpu.py", "--source", str(IMAGENET_SAMPLE),
         "--files", "6", "--rounds", "1"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = re.findall(r"^(train|eval): PIL (\d+), torch (\d+) img per CPU second \(([\d.]+)x\); "
                      r"\|difference\| mean ([\d.]+), max (\d+) levels$", proc.stdout, re.M)
    assert [r[0] for r in rows] == ["train", "eval"], proc.stdout
    for _, pil, tensor, ratio, mean, _ in rows:
        assert int(pil) > 0 and abs(float(ratio) - int(tensor) / int(pil)) < 0.01
        assert float(mean) < 1.0  # the same crops: the kernels differ by rounding


