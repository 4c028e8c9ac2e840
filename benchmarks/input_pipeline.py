"""Input-pipeline benchmark: how fast fishbench trains from JPEG files, per decoder.

Builds an image-folder tree of real ImageNet JPEGs (a folder of them replicated by symlinks into
``--classes`` x ``--per-class`` files), then prints one table from one process: for each decoder
the loader alone (no model, batches on the device, normalised) and end-to-end training img/s of
each model with fishbench's trainer, next to the same trainer on synthetic input and a bare
PyTorch loop of the same model, precision, layout and batch (synthetic input, compiled). Each
figure is the wall time of ``--steps`` steps after ``--warmup`` steps, the device synchronised.
Every end-to-end run follows a run on synthetic input (``--repeats`` pairs), its ratio taken
against that one; each training row also says how long per step the training thread waited for
its batches and spent launching the step (a starved trainer or a slowed one), and how long the
garbage collector ran (in any thread of the process: it holds the GIL). ``--beside``
adds runs on synthetic input with a load running beside them (:mod:`load_beside`): what slows
the training thread.

    python benchmarks/input_pipeline.py --source ../shared/data/imagenet-sample --root /tmp/tree
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import time
from contextlib import closing
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from omegaconf import OmegaConf

from fishbench.backends.pytorch import trainer as torch_trainer
from fishbench.backends.pytorch.device import prepare_cuda
from fishbench.backends.pytorch.input import prefetch as torch_prefetch
from fishbench.backends.pytorch.input.loaders import build_loaders
from fishbench.backends.pytorch.models import build_model
from fishbench.backends.pytorch.trainer import TorchTrainer
from fishbench.config import DatasetConfig, validate
from fishbench.backends.pytorch.backend import COMPILE_MODES
from fishbench.data.decode import BadFiles
from fishbench.data.spec import load_data_spec
from fishbench.run.checkpoints import Progress
from fishbench.run.engine import StepLogger
from fishbench.run.schedule import LRSchedule
import load_beside

# --high-priority: (the trainer's TRAIN_STREAM_PRIORITY, the loader's PIPELINE_STREAM_PRIORITY)
PRIORITIES = {"train": (-1, 0), "pipeline": (0, -1)}
CUDA = torch.cuda.is_available()  # elsewhere a dry run of the script on the CPU, uncompiled
DEVICE = torch.device("cuda" if CUDA else "cpu")


def build_tree(source: Path, root: Path, classes: int, per_class: int, val_per_class: int = 2) -> Path:
    """``root/{train,val}/c<k>/<i>.JPEG`` as symlinks to the JPEGs of ``source``, cyclically."""
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in (".jpeg", ".jpg"))
    if (root / "train").is_dir():
        return root
    k = 0
    for split, n in (("train", per_class), ("val", val_per_class)):
        for c in range(classes):
            folder = root / split / f"c{c:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                os.symlink(files[k % len(files)].resolve(), folder / f"{i:04d}.JPEG")
                k += 1
    return root


def run_config(args, model: str, decoder: str | None, share: float | None = None,
               mode: str = "default"):
    """The run's config: bf16, channels_last, compiled in ``mode``, on the GPU; ``decoder`` None
    is synthetic input; ``share`` the gpu decoder's ``dataset.gpu_decode_share`` (None: default)."""
    steps = args.warmup + args.steps
    if decoder is None:
        dataset = {"name": "synthetic", "num_classes": 1000, "train_samples": args.batch * steps,
                   "val_samples": args.batch}
    else:
        dataset = {"name": "imagefolder", "root": str(args.root), "decoder": decoder,
                   "num_workers": args.workers}
        if share is not None:
            dataset["gpu_decode_share"] = share
    dataset["image_size"] = args.image_size
    return validate(OmegaConf.create({
        "model": {"name": model}, "device": {"name": "gpu" if CUDA else "cpu"},
        "backend": {"compile": CUDA, "compile_mode": mode},
        "dataset": dataset, "amp": True, "batch_size": args.batch, "epochs": 1, "T_max": 1,
        "warmup_epochs": 0, "lr_init": 0.01, "log_every_n_steps": args.warmup,
        "max_steps_per_epoch": steps}))


class WaitedBatches:
    """A trainer's batches as it takes them from its stream, adding up the seconds it waited
    for each; ``delivered`` is when it got the last one."""

    def __init__(self, batches) -> None:
        self.batches, self.seconds, self.delivered = batches, 0.0, 0.0

    def __len__(self) -> int:
        return len(self.batches)

    def stream(self, first: int, end: int, steps: int):
        with closing(self.batches.stream(first, end, steps)) as batches:
            start = time.perf_counter()
            for batch in batches:
                self.delivered = time.perf_counter()
                self.seconds += self.delivered - start
                yield batch
                start = time.perf_counter()


class TimedLogger(StepLogger):
    """Records at every synchronised log point (by step count) the time, the seconds the
    trainer had waited for batches until then (``waits``, set before training), the seconds
    its thread had spent launching steps (from a batch's delivery to the step's end) and the
    seconds the process's garbage collector had run inside the ``with`` block (any thread,
    all generations, from ``gc.callbacks``)."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.marks: dict[int, tuple[float, float, float, int, float]] = {}
        self.waits: WaitedBatches | None = None
        self.launching, self.launched = 0.0, 0
        self.collecting, self._collection_started = 0.0, 0.0

    def __enter__(self) -> "TimedLogger":
        gc.callbacks.append(self._on_collection)
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._on_collection)
        super().__exit__(*exc)

    def _on_collection(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._collection_started = time.perf_counter()
        else:
            self.collecting += time.perf_counter() - self._collection_started

    def step(self, epoch, step_in_epoch, global_step, lr, loss) -> None:
        if not self.due(step_in_epoch):  # at log points the step's end is a sync: left out
            self.launching += time.perf_counter() - self.waits.delivered
            self.launched += 1
        super().step(epoch, step_in_epoch, global_step, lr, loss)
        if self.due(step_in_epoch):
            self.marks[step_in_epoch + 1] = (time.perf_counter(), self.waits.seconds,
                                             self.launching, self.launched, self.collecting)


class ProfiledLogger(TimedLogger):
    """Steps a torch profiler whose schedule skips the warm-up steps."""

    def __init__(self, profiler, *args) -> None:
        super().__init__(*args)
        self.profiler = profiler

    def step(self, epoch, step_in_epoch, global_step, lr, loss) -> None:
        super().step(epoch, step_in_epoch, global_step, lr, loss)
        self.profiler.step()


def train_epoch(args, model: str, decoder: str | None, mode: str, share: float | None = None,
                make_logger: Callable[..., TimedLogger] = TimedLogger) -> tuple[TimedLogger, str]:
    """One epoch of fishbench's trainer (``release()`` its memory afterwards): its logger and
    how the gpu decoder split the files (:func:`nvjpeg_share`)."""
    cfg = run_config(args, model, decoder, share, mode)
    spec = load_data_spec(cfg)
    cfg.model.num_classes = spec.num_classes
    trainer = TorchTrainer(cfg, spec)
    steps = trainer.steps_per_epoch
    with make_logger(cfg, None, cfg.batch_size, steps, Progress()) as logger:
        logger.waits = WaitedBatches(trainer.train_loader)
        trainer.train_stream.open_stream = logger.waits.stream
        logger.start_epoch(0)
        trainer.train_epoch(0, LRSchedule(cfg, steps), 0, logger)
    return logger, nvjpeg_share(spec)


def nvjpeg_share(spec) -> str:
    """``", 60% on nvjpeg"`` for the gpu decoder, nothing for the cpu decoder."""
    return f", {spec.gpu_decode_share:.0%} on nvjpeg" if spec.decoder == "gpu" else ""


def profile(args, model: str, decoder: str, active: int = 8) -> None:
    """Where one training step's time goes, from ``active`` steps after the warm-up: device time
    per kernel, and host time per op (every thread: the trainer's and the prefetch thread)."""
    from torch.profiler import ProfilerActivity, schedule

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if CUDA else [])
    with torch.profiler.profile(activities=activities,
                                schedule=schedule(wait=args.warmup, warmup=2, active=active)) as prof:
        train_epoch(args, model, decoder, args.compile_modes[0], args.device_shares[0],
                    partial(ProfiledLogger, prof))
    if args.trace:
        prof.export_chrome_trace(str(args.trace))
        print(trace_summary(json.loads(args.trace.read_text())["traceEvents"], active), flush=True)
    events = prof.key_averages()
    for key in ("self_cuda_time_total", "self_cpu_time_total") if CUDA else ("self_cpu_time_total",):
        print(f"{model}, {decoder} decoder, {active} steps, by {key}:")
        print(events.table(sort_by=key, row_limit=25, max_name_column_width=70), flush=True)
    release()


def trace_summary(events: list[dict], steps: int) -> str:
    """Per CUDA stream of a Chrome trace: kernels (and copies) and busy ms per step; for the
    busiest stream (training) its idle ms per step, split into gaps before a kernel the host had
    not launched yet (the host was late) and gaps after one it had (the GPU's own latency, or a
    wait on another stream); then :func:`slowest_api_calls`."""
    work = [e for e in events if e.get("ph") == "X"
            and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    launches = {e["args"]["correlation"]: e for e in api_calls(events)
                if "correlation" in e.get("args", {})}
    streams: dict[int, list[dict]] = {}
    for e in sorted(work, key=lambda e: e["ts"]):
        streams.setdefault(e["args"]["stream"], []).append(e)
    lines = [f"stream {s}: {len(es) / steps:.0f} kernels, "
             f"{sum(e['dur'] for e in es) / 1e3 / steps:.2f} ms busy per step"
             for s, es in sorted(streams.items(), key=lambda kv: -len(kv[1]))]
    late = waiting = 0.0
    train_stream = max(streams.values(), key=len) if streams else []
    for before, kernel in zip(train_stream, train_stream[1:]):
        end = before["ts"] + before["dur"]
        gap = kernel["ts"] - end
        launch = launches.get(kernel["args"].get("correlation"))
        if gap <= 0 or launch is None:
            continue
        host_late = min(gap, max(0.0, launch["ts"] + launch["dur"] - end))
        late, waiting = late + host_late, waiting + gap - host_late
    lines.append(f"training stream idle per step: {late / 1e3 / steps:.2f} ms before kernels not "
                 f"yet launched, {waiting / 1e3 / steps:.2f} ms after launched ones")
    return "\n".join(lines + slowest_api_calls(events, steps))


def api_calls(events: list[dict]) -> list[dict]:
    """The trace's CUDA runtime and driver calls (host side)."""
    return [e for e in events if e.get("ph") == "X" and e.get("cat") in ("cuda_runtime", "cuda_driver")]


def slowest_api_calls(events: list[dict], steps: int, top: int = 6) -> list[str]:
    """The CUDA runtime and driver calls that held their threads longest (ms per step, summed
    per thread and call): a synchronising call in a prefetch thread shows up here."""
    names = {e["tid"]: e["args"]["name"] for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    totals: dict[tuple[object, str], float] = {}
    for e in api_calls(events):
        key = (e.get("tid"), e["name"])
        totals[key] = totals.get(key, 0.0) + e["dur"]
    slowest = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
    return [f"thread {names.get(tid, tid)}: {name} {total / 1e3 / steps:.2f} ms per step"
            for (tid, name), total in slowest]


@dataclass
class TrainRun:
    """A training run's img/s over ``args.steps`` steps after ``args.warmup``; per step then,
    the ms the trainer waited for batches, spent launching steps (log points left out) and the
    garbage collector ran; the nvjpeg share (:func:`nvjpeg_share`)."""

    speed: float
    waited_ms: float
    launching_ms: float
    collecting_ms: float
    split: str

    def cells(self) -> str:
        """The row's last three cells."""
        return f"{self.waited_ms:.2f} | {self.launching_ms:.2f} | {self.collecting_ms:.2f} |"


def train(args, model: str, decoder: str | None, mode: str,
          share: float | None = None) -> TrainRun:
    """One epoch of fishbench's trainer, measured (:class:`TrainRun`)."""
    logger, split = train_epoch(args, model, decoder, mode, share)
    release()
    first, last = logger.marks[args.warmup], logger.marks[args.warmup + args.steps]
    launched = last[3] - first[3]
    return TrainRun(args.steps * args.batch / (last[0] - first[0]),
                    1e3 * (last[1] - first[1]) / args.steps,
                    1e3 * (last[2] - first[2]) / launched if launched else float("nan"),
                    1e3 * (last[4] - first[4]) / args.steps, split)


def train_split(args, decoder: str, share: float | None):
    """The train split's batches on the device (decoded, cropped, jittered, normalised), as the
    loader alone delivers them, and the data spec."""
    cfg = run_config(args, "resnet50", decoder, share)
    spec = load_data_spec(cfg)
    batches, _ = build_loaders(spec, batch_size=args.batch, bad_images="skip", seed=cfg.seed,
                               rank=0, world_size=1, device=DEVICE,
                               memory_format=torch.channels_last, bad_files=BadFiles())
    return batches, spec


def loader_only(args, decoder: str, share: float | None) -> tuple[float, int, str]:
    """The loader alone (:func:`train_split`): img/s, the CPU fallbacks and the nvjpeg share."""
    train_batches, spec = train_split(args, decoder, share)
    start = None
    for i, (images, _) in enumerate(train_batches):
        if i == args.warmup:
            sync()
            start = time.perf_counter()
        if i == args.warmup + args.steps:
            break
    sync()
    seconds = time.perf_counter() - start
    fallbacks = train_batches.decoder.cpu_fallbacks if train_batches.decoder else 0
    del train_batches
    release()
    return args.steps * args.batch / seconds, fallbacks, nvjpeg_share(spec)


def bare_loop(args, model: str, mode: str) -> float:
    """A plain PyTorch training loop: same model, bf16 autocast, channels_last, compiled in
    ``mode``."""
    device = DEVICE
    net = build_model(model, 1000).to(device, memory_format=torch.channels_last)
    step_net = torch.compile(net, mode=mode) if CUDA else net
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    crit = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    images = torch.randn(args.batch, 3, args.image_size, args.image_size, device=device).contiguous(
        memory_format=torch.channels_last)
    labels = torch.randint(0, 1000, (args.batch,), device=device)
    start = 0.0
    for i in range(args.warmup + args.steps):
        if i == args.warmup:
            sync()
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = crit(step_net(images), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync()
    result = args.steps * args.batch / (time.perf_counter() - start)
    del net, step_net, opt
    release()
    return result


def release() -> None:
    gc.collect()
    if CUDA:
        torch.cuda.empty_cache()


def sync() -> None:
    if CUDA:
        torch.cuda.synchronize()


def check_stage(args) -> None:
    """The float stage's Triton kernels against its torch ops on the same batch (random pixels,
    the plan's flips and jitter): the largest difference in normalised units; the device time
    per batch of both (the torch ops compiled, as the stage ran on CUDA before the kernels)."""
    from fishbench.backends.pytorch.input.augment import FloatStage
    from fishbench.data.plan import AugmentPlan

    spec = load_data_spec(run_config(args, "resnet50", "cpu"))
    t = spec.train_transform
    plan = AugmentPlan(0, t)
    aug = torch.from_numpy(np.stack([plan.sample(0, f).vector() for f in range(args.batch)]))
    images = torch.randint(0, 256, (args.batch, t.size, t.size, 3), dtype=torch.uint8)
    images, aug = images.to(DEVICE), aug.to(DEVICE)
    stage = FloatStage(t.mean, t.std, DEVICE, torch.channels_last, flip=True, jitter=True)
    compiled = torch.compile(stage.torch_ops)
    diff = (stage.kernels(images, aug) - stage.torch_ops(images, aug)).abs().max()
    print(f"float stage, Triton kernels vs torch ops: max |diff| {float(diff):.2e} (normalised "
          "units)", flush=True)
    for name, fn in (("Triton kernels", stage.kernels), ("torch ops, compiled", compiled)):
        print(f"float stage, {name}: device {device_ms(lambda: fn(images, aug)):.2f} ms per "
              f"batch of {args.batch}", flush=True)


def device_ms(fn: Callable[[], object], warmup: int = 5, repeats: int = 30) -> float:
    """Median device time of ``fn`` (CUDA events around each call)."""
    times = []
    for i in range(warmup + repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        sync()
        times.append(start.elapsed_time(end))
    return float(np.median(times[warmup:]))


def check_decoders(args) -> None:
    """The gpu engine against the cpu engine on the same plan (the same files, boxes, flips and
    jitter), while the GPU trains on each gpu batch as it arrives, so the decoder's memory is
    recycled under queued work (pytorch/vision#9606). Prints per batch the mean and max pixel
    difference (normalised units: one 8-bit level is 0.017) and the loss; stops on a batch whose
    mean difference or loss says the memory was corrupted."""
    cfg = run_config(args, "resnet50", "cpu")
    spec = load_data_spec(cfg)
    loaders = {decoder: build_loaders(replace(spec, decoder=decoder), batch_size=args.batch,
                                      bad_images="skip", seed=cfg.seed, rank=0, world_size=1,
                                      device=DEVICE, memory_format=torch.channels_last,
                                      bad_files=BadFiles())
               for decoder in ("cpu", "gpu")}
    net = build_model("resnet50", 1000).to(DEVICE, memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    worst = 0.0
    for split in (0, 1):  # train, then val
        pairs = zip(loaders["cpu"][split], loaders["gpu"][split])
        for i, ((a, la), (b, lb)) in zip(range(args.check_batches), pairs):
            with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
                loss = torch.nn.functional.cross_entropy(net(b), lb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            diff = (a.float() - b.float()).abs()
            mean = float(diff.mean())
            worst = max(worst, mean)
            print(f"{'train' if split == 0 else 'val'} batch {i}: mean |diff| {mean:.4f}, "
                  f"max {float(diff.max()):.3f}, loss {float(loss):.3f}", flush=True)
            if not (torch.equal(la.cpu(), lb.cpu()) and mean < 0.05 and torch.isfinite(loss)):
                raise SystemExit(f"gpu engine batch {i} differs from the cpu engine's: corrupted")
    print(f"gpu vs cpu engine: worst batch mean |diff| {worst:.4f} over {args.check_batches} "
          "train and val batches", flush=True)


def time_crop_resize(args) -> None:
    """The gpu engine's crop + resize of one batch's nvjpeg images (the plan's training boxes on
    the tree's first files): the batched kernel against one ``F.interpolate`` per image (the
    engine before ``e93a08a``), each as host time per call and device time per batch (medians,
    :func:`device_ms`)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    from fishbench.backends.pytorch.input.nvjpeg import device_decodable_size
    from fishbench.backends.pytorch.input.resize import crop_resize_into
    from fishbench.data.decode import SampleSource
    from fishbench.data.plan import AugmentPlan

    spec = load_data_spec(run_config(args, "resnet50", "gpu", 1.0))
    source = SampleSource(spec.train, "skip", AugmentPlan(0, spec.train_transform), None,
                          device_share=1.0, device_size=device_decodable_size)
    samples = [s for s in (source.read(0, p) for p in range(args.batch)) if s.encoded]
    images = decode_jpeg([torch.from_numpy(s.pixels) for s in samples], mode=ImageReadMode.RGB,
                         device=DEVICE)
    crops, size = [s.crop for s in samples], spec.train_transform.size
    batch = torch.empty((len(samples), size, size, 3), dtype=torch.uint8, device=DEVICE)

    def batched() -> None:
        crop_resize_into(batch, images, crops, list(range(len(samples))))

    def per_image() -> None:
        out = []
        for image, crop in zip(images, crops):
            left, top, right, bottom = crop.box
            out.append(torch.nn.functional.interpolate(
                image[None, :, top:bottom, left:right].float(), size=(size, size),
                mode="bilinear", antialias=True, align_corners=False)[0])
        torch.stack(out)

    for name, fn in (("batched kernel", batched), ("F.interpolate per image", per_image)):
        host = []

        def timed() -> None:
            start = time.perf_counter()
            fn()
            host.append(time.perf_counter() - start)

        device = device_ms(timed)
        print(f"crop + resize of {len(samples)} nvjpeg images, {name}: host "
              f"{1e3 * float(np.median(host[5:])):.2f} ms, device {device:.2f} ms per batch",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="a folder of JPEGs")
    parser.add_argument("--root", type=Path, required=True, help="where the tree is built")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--per-class", type=int, default=640)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--image-size", type=int, default=224,
                        help="the crop's side (smaller for a quick dry run of the table)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--models", nargs="+", default=["resnet50", "fishnet99"])
    parser.add_argument("--decoders", nargs="+", default=["gpu", "cpu"])
    parser.add_argument("--device-shares", type=float, nargs="+",
                        default=[DatasetConfig.gpu_decode_share],
                        help="gpu decoder: dataset.gpu_decode_share values")
    parser.add_argument("--repeats", type=int, default=1,
                        help="end-to-end runs of each configuration, each after a synthetic one")
    parser.add_argument("--compile-modes", nargs="+", default=["default"],
                        choices=COMPILE_MODES, help="backend.compile_mode values")
    parser.add_argument("--high-priority", nargs="+", default=["train"],
                        choices=list(PRIORITIES), help="whose CUDA stream has the high priority")
    parser.add_argument("--beside", nargs="+", default=[], choices=load_beside.LOADS,
                        help="also train on synthetic input with this load beside (after each "
                             "synthetic run): see benchmarks/load_beside.py")
    parser.add_argument("--beside-processes", type=int,
                        default=max(len(os.sched_getaffinity(0)) - 2, 1),
                        help="processes of a cpu or memory load (default: the cores less two)")
    parser.add_argument("--out", type=Path, help="also write the table here")
    parser.add_argument("--check", action="store_true",
                        help="only compare the gpu engine's batches with the cpu engine's "
                        "(and time its crop + resize)")
    parser.add_argument("--check-batches", type=int, default=40)
    parser.add_argument("--profile", action="store_true",
                        help="only profile training of the first model with the first decoder")
    parser.add_argument("--trace", type=Path,
                        help="with --profile: also write the profile's timeline (Chrome trace)")
    args = parser.parse_args()
    if "nvjpeg" in args.beside and not CUDA:
        parser.error("--beside nvjpeg decodes on the GPU: it needs CUDA")
    prepare_cuda()  # as a run does before its first CUDA context
    args.workers = args.workers if args.workers == "auto" else int(args.workers)
    logging.basicConfig(level=logging.WARNING)
    build_tree(args.source, args.root, args.classes, args.per_class)
    if args.check:
        if not CUDA:
            raise SystemExit("--check compares the gpu engine with the cpu engine: it needs CUDA")
        check_stage(args)
        time_crop_resize(args)
        check_decoders(args)
        return
    if args.profile:
        profile(args, args.models[0], args.decoders[0])
        return
    rows = [f"{torch.cuda.get_device_name() if CUDA else platform.processor()}, "
            f"{len(os.sched_getaffinity(0))} cores, torch {torch.__version__}, Python "
            f"{platform.python_version()}; batch {args.batch}, bf16, channels_last, compiled; "
            f"{args.steps} steps after {args.warmup}; tree {args.classes}x{args.per_class} JPEGs, "
            f"workers={args.workers}; {args.repeats} repeat(s)", "",
            "| input | model | img/s | vs bare loop | vs trainer on synthetic | waited for "
            "batches, ms/step | launching, ms/step | garbage collector, ms/step |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]

    def emit(row: str) -> None:
        rows.append(row)
        print(row, flush=True)

    for decoder in args.decoders:
        for share in args.device_shares if decoder == "gpu" else [None]:
            speed, fallbacks, split = loader_only(args, decoder, share)
            emit(f"| {decoder} decoder{split}, loader only ({fallbacks} CPU fallbacks) | - | "
                 f"{speed:,.0f} | | | | | |")
    ratios: dict[tuple[str, str], list[float]] = {}

    def emit_against(what: str, model: str, bare: float, synthetic: float,
                     run: TrainRun, key: str | None = None) -> None:
        """A training run's row, against the bare loop and the synthetic run before it; the
        ratio goes into the summary under ``key`` (default: ``what``)."""
        emit(f"| {what} | {model} | {run.speed:,.0f} | {run.speed / bare:.2f} | "
             f"{run.speed / synthetic:.2f} | {run.cells()}")
        ratios.setdefault((key or what, model), []).append(run.speed / synthetic)

    for model in args.models:
        bares = {mode: bare_loop(args, model, mode) for mode in args.compile_modes}
        for mode, bare in bares.items():
            emit(f"| bare PyTorch loop, synthetic, {mode} | {model} | {bare:,.0f} | 1.00 | | | | |")
        for _ in range(args.repeats):
            for mode, high in [(m, h) for m in args.compile_modes for h in args.high_priority]:
                bare = bares[mode]
                torch_trainer.TRAIN_STREAM_PRIORITY, torch_prefetch.PIPELINE_STREAM_PRIORITY = (
                    PRIORITIES[high])
                label = f"{mode}, {high} stream high" if len(args.high_priority) > 1 else mode
                base = train(args, model, None, mode)
                synthetic = base.speed
                emit(f"| trainer, synthetic, {label} | {model} | {synthetic:,.0f} | "
                     f"{synthetic / bare:.2f} | 1.00 | {base.cells()}")
                pace = load_beside.Pace(args.root, args.decoders[0], args.device_shares[0],
                                        args.batch, args.workers, args.image_size, synthetic)
                for load in args.beside:
                    with load_beside.load_beside(load, args.beside_processes, pace) as beside:
                        run = train(args, model, None, mode)
                    what = f"trainer, synthetic, {label}, beside"
                    emit_against(f"{what} {beside.label}", model, bare, synthetic, run,
                                 f"{what} {beside.name}")
                for decoder in args.decoders:
                    for share in args.device_shares if decoder == "gpu" else [None]:
                        run = train(args, model, decoder, mode, share)
                        emit_against(f"trainer, {decoder} decoder{run.split}, {label}", model,
                                     bare, synthetic, run)
    if args.repeats > 1:
        rows.extend(["", "Each run against the trainer on synthetic input just before it:", "",
                     "| input | model | mean | runs |", "| --- | --- | ---: | --- |"])
        rows.extend(f"| {what} | {model} | {np.mean(rs):.2f} | "
                    f"{', '.join(f'{r:.2f}' for r in rs)} |" for (what, model), rs in ratios.items())
    table = "\n".join(rows)
    print("\n" + table)
    if args.out is not None:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
