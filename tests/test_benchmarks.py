"""The benchmark scripts still run against the package (a CPU dry run of each table)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import IMAGENET_SAMPLE, REPO


@pytest.mark.skipif(not IMAGENET_SAMPLE.is_dir(), reason="../shared/data/imagenet-sample is absent")
def test_input_pipeline_benchmark_prints_a_consistent_table(tmp_path: Path) -> None:
    out = tmp_path / "table.md"
    proc = subprocess.run(
        [sys.executable, "benchmarks/input_pipeline.py", "--source", str(IMAGENET_SAMPLE),
         "--root", str(tmp_path / "tree"), "--classes", "2", "--per-class", "8", "--batch", "4",
         "--steps", "1", "--warmup", "1", "--decoders", "cpu", "--models", "resnet50",
         "--workers", "0", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list((tmp_path / "tree" / "train").glob("c*/*.JPEG"))) == 16
    rows = {}
    for line in out.read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"[\d,]+", cells[2]):
            rows[cells[0]] = (int(cells[2].replace(",", "")), cells[3], cells[4])
    assert set(rows) == {"cpu decoder, loader only (0 CPU fallbacks)",
                         "bare PyTorch loop, synthetic", "trainer, synthetic",
                         "trainer, cpu decoder"}
    assert all(speed > 0 for speed, _, _ in rows.values())
    bare = rows["bare PyTorch loop, synthetic"][0]
    trainer = rows["trainer, cpu decoder"]
    # the ratio column comes from the unrounded speeds: within the rounding of the shown ones
    low, high = (trainer[0] - 0.5) / (bare + 0.5), (trainer[0] + 0.5) / max(bare - 0.5, 0.5)
    assert low - 0.005 <= float(trainer[1]) <= high + 0.005
