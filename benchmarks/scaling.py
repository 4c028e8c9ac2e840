"""Data-parallel training throughput of fishbench itself on 1..N devices (synthetic input).

Each configuration is a real `python run.py` training run (dataset=synthetic, the same trainer,
launcher and timing as any run); the table is read from the runs' metrics.json.

    python benchmarks/scaling.py --device gpu --models resnet50 fishnet99 --procs 1 2 --batch 256
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_one(model: str, procs: int, args: argparse.Namespace, out: Path) -> dict:
    run_dir = out / f"{model}_x{procs}"
    global_batch = args.batch * procs
    cmd = [sys.executable, str(REPO / "run.py"), f"model={model}", "dataset=synthetic",
           f"device={args.device}", f"world.nproc_per_node={procs}", f"batch_size={args.batch}",
           f"amp={str(args.amp).lower()}", f"backend.compile={str(args.compile).lower()}",
           "epochs=1", "warmup_epochs=0", f"max_steps_per_epoch={args.steps}",
           f"log_every_n_steps={args.log_every}", f"dataset.image_size={args.size}",
           f"dataset.resize_size={args.size}",
           f"dataset.train_samples={global_batch * args.steps}",
           f"dataset.val_samples={global_batch}", "save_checkpoint_epochs=1000",
           f"hydra.run.dir={run_dir}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-2000:])
        raise SystemExit(f"{model} x{procs} failed")
    return json.loads((run_dir / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="gpu", choices=("cpu", "gpu", "ascend"))
    parser.add_argument("--models", nargs="+", default=["resnet50", "fishnet99"])
    parser.add_argument("--procs", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--batch", type=int, default=256, help="per device")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--out", type=Path, default=None, help="keep the run dirs here")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="fishbench-scaling-"))
    print("| model | devices | batch/device | ms/step | img/s global | img/s per device | "
          "scaling vs 1 | efficiency |")
    print("|---|---|---|---|---|---|---|---|")
    for model in args.models:
        base = None
        for procs in args.procs:
            m = run_one(model, procs, args, out)
            base = base or m["img_per_s"] / procs
            speedup = m["img_per_s"] / base
            print(f"| {model} | {procs} | {args.batch} | {m['ms_per_step']:.1f} | "
                  f"{m['img_per_s']:.0f} | {m['img_per_s_per_device']:.0f} | {speedup:.2f}x | "
                  f"{speedup / procs:.0%} |", flush=True)


if __name__ == "__main__":
    main()
