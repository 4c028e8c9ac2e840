"""Where a MindSpore CPU training step's time goes, beside a PyTorch step (same job, same machine).

Each backend trains in its own worker process, built as ``python run.py`` builds it (Hydra
config, data spec, the backend's trainer); the workers take turns (MindSpore, PyTorch,
MindSpore, ...) so that load from other jobs on a shared machine hits both alike. A repeat is
one ``train_epoch`` of ``--steps`` steps; a logger that reads the loss after every step splits
the time into the step (data + compute) and the sync (reading the loss), and the loader is timed
alone for the data part. Medians over the repeats, and their ratio, are printed as Markdown.
``--profile`` adds the top operators of one profiled epoch of each backend: MindSpore's own
profiler (``mindspore.Profiler``, CPU op times) and ``torch.profiler`` (self CPU time).

    python benchmarks/mindspore_cpu.py --models fishnet99 resnet50 --steps 3 --repeats 3 --profile
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BACKENDS = ("mindspore", "pytorch")


class TimingLogger:
    """Stands in for the engine's StepLogger: syncs on every step and records when."""

    def __init__(self) -> None:
        self.marks: list[float] = []
        self.sync_s: list[float] = []

    def due(self, step_in_epoch: int) -> bool:
        return True

    def step(self, epoch: int, step_in_epoch: int, global_step: int, lr: float, loss: Any) -> None:
        started = time.perf_counter()
        float(loss)
        now = time.perf_counter()
        self.sync_s.append(now - started)
        self.marks.append(now)


def set_threads(backend: str, threads: int) -> None:
    """``threads`` compute threads for the backend's kernels (before its first kernel)."""
    if backend == "mindspore":
        import mindspore as ms

        ms.set_context(runtime_num_threads=threads)
    else:
        import torch

        torch.set_num_threads(threads)


def build_trainer(backend: str, model: str, steps: int, epochs: int, overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from fishbench.backends import get_backend
    from fishbench.config import register_resolvers, validate
    from fishbench.data.spec import load_data_spec

    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"backend={backend}", f"model={model}",
                                           f"max_steps_per_epoch={steps}", f"epochs={epochs}",
                                           "warmup_epochs=0", *overrides])
    config = validate(cfg)
    module = get_backend(backend)
    module.check_runtime(config)
    spec = load_data_spec(config)
    config.model.num_classes = spec.num_classes
    return module.create_trainer(config, spec)


def train_batches(trainer, backend: str):
    """The trainer's train batches of epoch 0, as its own loop reads them."""
    if backend == "mindspore":
        return trainer.train_batches.epoch(0)
    from fishbench.backends.pytorch.input.dataset import batches

    return batches(trainer.train_loader)


def worker(backend: str, model: str, args: dict[str, Any], conn) -> None:
    """Build the trainer, then answer ``epoch`` (train one epoch, then evaluate), ``profile``
    (the same under the profiler), ``data`` (read one epoch's batches) until ``stop``."""
    from fishbench.run.schedule import LRSchedule

    if args["threads"]:
        set_threads(backend, args["threads"])
    started = time.perf_counter()
    overrides = args["overrides"] + (args["ms_overrides"] if backend == "mindspore" else [])
    trainer = build_trainer(backend, model, args["steps"], args["epochs"], overrides)
    schedule = LRSchedule(trainer.cfg, trainer.steps_per_epoch)
    built = time.perf_counter() - started
    epoch = 0
    cfg = trainer.cfg
    conn.send({"built_s": built, "versions": trainer.versions(),
               "job": f"batch {cfg.batch_size} of {cfg.dataset.image_size}x{cfg.dataset.image_size} "
                      f"{cfg.dataset.name}"})
    while True:
        command = conn.recv()
        if command == "stop":
            return
        if command == "data":
            batches = iter(train_batches(trainer, backend))
            started = time.perf_counter()
            times = []
            for _ in range(trainer.steps_per_epoch):
                next(batches)
                now = time.perf_counter()
                times.append(now - started)
                started = now
            conn.send({"data_s": times})
            continue
        logger = TimingLogger()
        out_dir = tempfile.mkdtemp(prefix=f"fishbench-prof-{backend}-") if command == "profile" else ""
        profiler = start_profiler(backend, out_dir) if out_dir else None
        started = time.perf_counter()
        trainer.train_epoch(epoch, schedule, epoch * trainer.steps_per_epoch, logger)
        ops = None
        if out_dir:
            ops = stop_profiler(backend, profiler, out_dir, trainer.steps_per_epoch)
            shutil.rmtree(out_dir, ignore_errors=True)
        eval_started = time.perf_counter()
        trainer.evaluate()
        marks = [started, *logger.marks]
        conn.send({"step_s": [b - a for a, b in zip(marks, marks[1:])], "sync_s": logger.sync_s,
                   "eval_s": time.perf_counter() - eval_started, "ops": ops})
        epoch += 1


def start_profiler(backend: str, out_dir: str):
    if backend == "mindspore":
        import mindspore as ms

        return ms.Profiler(output_path=out_dir)
    import torch

    profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
    profiler.__enter__()
    return profiler


def stop_profiler(backend: str, profiler, out_dir: str, steps: int) -> dict[str, list]:
    """Per-step ms of the top operator types and of the top single operators."""
    if backend == "pytorch":
        profiler.__exit__(None, None, None)
        events = sorted(profiler.key_averages(), key=lambda e: -e.self_cpu_time_total)
        types = [(e.key, e.count // steps, e.self_cpu_time_total / 1000 / steps) for e in events]
        return {"types": types, "single": []}
    profiler.stop()
    profiler.analyse()
    framework = next(Path(out_dir).rglob("cpu_op_type_info_*.csv")).parent
    with open(next(framework.glob("cpu_op_type_info_*.csv"))) as f:
        types = [(r["op_type"], int(r["type_occurrences"]) // steps,
                  float(r["total_compute_time"]) / steps) for r in csv.DictReader(f)]
    with open(next(framework.glob("cpu_op_detail_info_*.csv"))) as f:
        single = [(r["full_op_name"].split("/_backbone-")[-1], int(r["op_occurrences"]) // steps,
                   float(r["op_total_time(ms)"]) / steps) for r in csv.DictReader(f)]
    return {"types": sorted(types, key=lambda t: -t[2]), "single": sorted(single, key=lambda t: -t[2])}


def median_ms(values: list[float]) -> float:
    return 1000.0 * statistics.median(values) if values else float("nan")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def bench_model(model: str, args: argparse.Namespace) -> None:
    ctx = mp.get_context("spawn")
    spec = {"steps": args.steps, "epochs": args.repeats + 2, "overrides": args.override,
            "ms_overrides": args.ms_override, "threads": args.threads}
    workers, info = {}, {}
    for backend in BACKENDS:  # one at a time: building (and compiling) competes for the cores
        parent, child = ctx.Pipe()
        process = ctx.Process(target=worker, args=(backend, model, spec, child), daemon=True)
        process.start()
        workers[backend] = (process, parent)
        info[backend] = parent.recv()
    results: dict[str, dict[str, list[float]]] = {
        b: {"step": [], "sync": [], "data": [], "eval": [], "first": [], "later_first": []}
        for b in BACKENDS}
    for backend in BACKENDS:  # the first epoch compiles (MindSpore graph mode): timed apart
        workers[backend][1].send("epoch")
        first = workers[backend][1].recv()
        results[backend]["first"] = [first["step_s"][0]]
        results[backend]["first_eval"] = [first["eval_s"]]
    loads = [loadavg()]
    for _ in range(args.repeats):
        for backend in BACKENDS:
            conn = workers[backend][1]
            conn.send("epoch")
            epoch = conn.recv()
            results[backend]["later_first"].append(epoch["step_s"][0])  # after an evaluation
            results[backend]["step"] += epoch["step_s"][1:]
            results[backend]["eval"].append(epoch["eval_s"])
            results[backend]["sync"] += epoch["sync_s"]
            conn.send("data")
            results[backend]["data"] += conn.recv()["data_s"]
        loads.append(loadavg())
    profiles = {}
    if args.profile:
        for backend in BACKENDS:
            workers[backend][1].send("profile")
            profiles[backend] = workers[backend][1].recv()
    for process, conn in workers.values():
        conn.send("stop")
        process.join()
    report(model, args, info, results, profiles, loads)


def report(model: str, args: argparse.Namespace, info: dict, results: dict, profiles: dict,
           loads: list[str]) -> None:
    print(f"\n### {model}, {info['mindspore']['job']}, {args.repeats} x {args.steps} steps per "
          f"backend, interleaved\n")
    print(f"load average (1/5/15 min) before and after each round: {'; '.join(loads)}\n")
    print("| backend | build s | first step ms | first eval s | first step after eval ms | "
          "step ms (median) | of which data | of which sync | compute (rest) | eval s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    medians = {}
    for backend in BACKENDS:
        r = results[backend]
        step, data, sync = median_ms(r["step"]), median_ms(r["data"]), median_ms(r["sync"])
        medians[backend] = step
        print(f"| {backend} | {info[backend]['built_s']:.1f} | {median_ms(r['first']):.0f} | "
              f"{r['first_eval'][0]:.1f} | {median_ms(r['later_first']):.0f} | {step:.0f} | "
              f"{data:.0f} | {sync:.0f} | {step - data - sync:.0f} | "
              f"{statistics.median(r['eval']):.1f} |")
    print(f"\nMindSpore / PyTorch, median step: {medians['mindspore'] / medians['pytorch']:.2f}x "
          f"(versions: {info['mindspore']['versions']}, {info['pytorch']['versions']})")
    for backend, profile in profiles.items():
        ops = profile["ops"]
        total = sum(t[2] for t in ops["types"])
        print(f"\n{backend}, one profiled epoch of {args.steps} steps "
              f"({median_ms(profile['step_s']):.0f} ms/step under the profiler; "
              f"operators sum to {total:.0f} ms/step). Top operator types:\n")
        print("| operator | calls/step | ms/step | share |")
        print("|---|---|---|---|")
        for name, calls, ms in ops["types"][:args.top]:
            print(f"| {name} | {calls} | {ms:.1f} | {100 * ms / total:.1f}% |")
        if ops["single"]:
            print("\nTop single operators:\n")
            print("| operator | ms/step |")
            print("|---|---|")
            for name, _, ms in ops["single"][:args.top]:
                print(f"| {name} | {ms:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["fishnet99", "resnet50"])
    parser.add_argument("--steps", type=int, default=3, help="steps per repeat (one epoch)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="add the top operators")
    parser.add_argument("--top", type=int, default=12, help="rows of each operator table")
    parser.add_argument("--override", nargs="*", default=[],
                        help="more run.py overrides for both backends, e.g. model.name=...")
    parser.add_argument("--ms-override", nargs="*", default=[],
                        help="run.py overrides for MindSpore only, e.g. backend.mode=pynative")
    parser.add_argument("--threads", type=int, default=0,
                        help="compute threads of each backend (default: the frameworks' own)")
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2: each epoch's first step is timed apart")
    cpu = platform.processor() or platform.machine()
    print(f"machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}; "
          f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}, "
          f"threads per backend: {args.threads or 'default'}")
    for model in args.models:
        bench_model(model, args)


if __name__ == "__main__":
    main()
