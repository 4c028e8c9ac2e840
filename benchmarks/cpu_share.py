"""CPU jobs that share the cores: a joblib multirun of two jobs at once, each with its share of
the cores (``device.cpu_threads=auto``, fishbench's default) against each spinning threads on
every core (``device.cpu_threads=<all cores>``, torch's own default).

    python benchmarks/cpu_share.py --steps 8

Prints one row per setting: the multirun's wall time and each job's training img/s (median step).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fishbench.run.cores import usable_cores  # noqa: E402


def run_multirun(threads: str, steps: int, jobs: int, sweep_dir: Path) -> tuple[float, list[float]]:
    """Wall seconds of the multirun and each job's img/s."""
    args = [sys.executable, str(REPO / "run.py"), "-m", "hydra/launcher=joblib",
            f"hydra.launcher.n_jobs={jobs}", f"hydra.sweep.dir={sweep_dir}",
            "seed=" + ",".join(str(s) for s in range(1, jobs + 1)), "epochs=1", "warmup_epochs=0",
            "batch_size=64", f"max_steps_per_epoch={steps}",
            f"log_every_n_steps={max(steps // 4, 1)}", f"device.cpu_threads={threads}"]
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, cwd=REPO)
    wall = time.perf_counter() - started
    rates = [json.loads((sweep_dir / str(j) / "metrics.json").read_text())["img_per_s"]
             for j in range(jobs)]
    return wall, rates


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8, help="training steps of each job")
    parser.add_argument("--jobs", type=int, default=2, help="jobs at once (hydra.launcher.n_jobs)")
    args = parser.parse_args()
    cores = usable_cores()
    print(f"{cpu_model()}, {cores} usable cores, "
          f"{args.jobs} jobs at once, the default job (FishNet99, digits 32x32, batch 64), "
          f"{args.steps} steps each")
    print("| device.cpu_threads | threads per job | multirun wall s | img/s per job |")
    print("| --- | --- | --- | --- |")
    for threads in ("auto", str(cores)):
        with tempfile.TemporaryDirectory() as tmp:
            wall, rates = run_multirun(threads, args.steps, args.jobs, Path(tmp) / "sweep")
        per_job = max(cores // args.jobs, 1) if threads == "auto" else cores
        print(f"| {threads} | {per_job} | {wall:.1f} | {', '.join(f'{r:.1f}' for r in rates)} |")


if __name__ == "__main__":
    main()
