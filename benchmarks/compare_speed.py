"""How long `fishbench compare` and a sweep's summary take over many runs, with and without the
runs' config records (``.hydra/config.json``; runs written before it have only Hydra's YAML).

    python benchmarks/compare_speed.py --runs 1000

One real tiny job (a 1-job multirun, 2 steps) is trained first (or ``--source`` names a job dir
of a multirun); its files, checkpoints left out, are copied ``--runs`` times into one sweep dir
with varied values: ``lr_init`` over 10 values and ``seed`` (a 2-key grid) in its YAML and
config record, ``top1`` in its metrics.json. The same sweep is then copied without the records.
Prints one row per kind of run: the wall and CPU (user + system) seconds of ``fishbench compare``
(a fresh process, imports included), of ``fishbench compare --png``, and of the sweep summary
(summary.csv, .md, .png and hparams/, in this process, its imports done); and whether both kinds
gave the same table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from typing import Any, Callable

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fishbench.run.records import (CONFIG_RECORD, HYDRA_DIR, METRICS_FILE,  # noqa: E402
                                   atomic_write_text, write_metrics)
from fishbench.sweeps.summary import summarize_sweep  # noqa: E402

SOURCE_ARGS = ["epochs=2", "warmup_epochs=0", "max_steps_per_epoch=2", "batch_size=16",
               "device.cpu_threads=1"]
LR_VALUES = [round(0.01 * (k + 1), 2) for k in range(10)]


def train_source(sweep_dir: Path) -> Path:
    """One real tiny job of a multirun; its dir."""
    subprocess.run([sys.executable, str(REPO / "run.py"), "-m", *SOURCE_ARGS,
                    f"hydra.sweep.dir={sweep_dir}"], check=True, capture_output=True, cwd=REPO)
    return sweep_dir / "0"


def edit_yaml(path: Path, edit: Callable[[Any], Any]) -> None:
    data = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
    path.write_text(yaml.dump(edit(data), Dumper=yaml.CSafeDumper, sort_keys=False))


def vary_copy(source: Path, job_dir: Path, job: int) -> None:
    """``source`` copied to ``job_dir`` as job ``job`` of a grid over lr_init and seed: its YAML,
    its config record and its metrics.json edited."""
    shutil.copytree(source, job_dir, ignore=shutil.ignore_patterns("checkpoints"))
    lr, seed = LR_VALUES[job % len(LR_VALUES)], job // len(LR_VALUES) + 1
    overrides = [f"lr_init={lr}", f"seed={seed}"]
    hydra_dir = job_dir / HYDRA_DIR

    def hydra_job(hydra: dict) -> dict:
        hydra["hydra"]["job"]["num"] = job
        hydra["hydra"]["overrides"]["task"] = overrides
        return hydra

    edit_yaml(hydra_dir / "config.yaml", lambda config: {**config, "lr_init": lr, "seed": seed})
    edit_yaml(hydra_dir / "overrides.yaml", lambda _: overrides)
    edit_yaml(hydra_dir / "hydra.yaml", hydra_job)
    record = json.loads((hydra_dir / CONFIG_RECORD).read_text())
    record["config"].update(lr_init=lr, seed=seed)
    record.update(overrides={"lr_init": lr, "seed": seed}, job=job)
    atomic_write_text(hydra_dir / CONFIG_RECORD, json.dumps(record))  # written after the YAML
    metrics = json.loads((job_dir / METRICS_FILE).read_text())
    top1 = 50.0 + (job * 37 % 500) / 10.0
    metrics.update(top1=top1, best_top1=top1)
    write_metrics(job_dir, metrics)


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str]) -> tuple[str, str]:
    """``command``'s "wall s / CPU s" (user + system) and its output."""
    started, cpu = time.perf_counter(), children_cpu_s()
    proc = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
    return f"{time.perf_counter() - started:.2f} / {children_cpu_s() - cpu:.2f}", proc.stdout


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="run dirs in the sweep")
    parser.add_argument("--source", type=Path, help="a job dir of a multirun to copy "
                        "(default: train one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = args.source or train_source(root / "source")
        records, yaml_only = root / "records", root / "yaml_only"
        started = time.perf_counter()
        for job in range(args.runs):
            vary_copy(source, records / str(job), job)
        shutil.copytree(records, yaml_only, ignore=shutil.ignore_patterns(CONFIG_RECORD))
        made = time.perf_counter() - started
        warmup = root / "warmup"
        shutil.copytree(records / "0", warmup / "0")
        summarize_sweep(warmup)  # the summary's lazy imports (matplotlib, tensorboard) done
        print(f"{cpu_model()}, Python {platform.python_version()}; {args.runs} runs made in "
              f"{made:.0f} s")
        print(f"load average before: {os.getloadavg()[0]:.1f}")
        print("| runs | compare, wall / CPU s | compare --png, wall / CPU s | "
              "sweep summary, wall / CPU s |")
        print("| --- | ---: | ---: | ---: |")
        tables = []
        for label, sweep in (("with config records", records), ("YAML only", yaml_only)):
            cli = [sys.executable, "-m", "fishbench.cli", "compare", str(sweep)]
            text_s, table = timed(cli)
            png_s = timed([*cli, "--png", str(root / "table.png")])[0]
            started, cpu = time.perf_counter(), time.process_time()
            summarize_sweep(sweep)
            summary_s = f"{time.perf_counter() - started:.2f} / {time.process_time() - cpu:.2f}"
            tables.append(table)
            print(f"| {args.runs}, {label} | {text_s} | {png_s} | {summary_s} |")
        print(f"the same table from both: {'yes' if tables[0] == tables[1] else 'NO'}")


if __name__ == "__main__":
    main()
