"""A backend's train loader alone on the CPU, one process: img/s per epoch (no model).

    python benchmarks/loader_cpu.py --backend pytorch --dataset digits
    python benchmarks/loader_cpu.py --backend mindspore --root /tmp/tree --hue 0.1

``--root`` is an image-folder tree (train/<class>/...) read with the ImageNet transforms; digits
uses the default job's. ``--workers 0`` (PyTorch) / ``1`` (MindSpore) keeps it to one process
(MindSpore's kernels and its dataset worker are threads of it): img per CPU second is the
per-core rate.
"""

from __future__ import annotations

import argparse
import time
from itertools import islice
from pathlib import Path

from omegaconf import OmegaConf

from fishbench.config import validate
from fishbench.data.decode import BadFiles
from fishbench.data.spec import load_data_spec

CONF = Path(__file__).resolve().parents[1] / "conf" / "dataset"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("pytorch", "mindspore"), default="pytorch")
    parser.add_argument("--dataset", choices=("digits", "imagefolder"), default="imagefolder")
    parser.add_argument("--root", help="the image-folder tree (dataset=imagefolder)")
    parser.add_argument("--hue", type=float, default=0.1, help="colour jitter's hue (imagefolder)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    if args.dataset == "digits":  # the default job's data and transform numbers
        dataset = OmegaConf.to_container(OmegaConf.load(CONF / "digits.yaml"), resolve=True)
    else:
        dataset = {"name": "imagefolder", "root": args.root,
                   "color_jitter": [0.4, 0.4, 0.4, args.hue]}
    dataset["num_workers"] = args.workers
    cfg = validate(OmegaConf.create({"backend": {"name": args.backend}, "dataset": dataset,
                                     "batch_size": args.batch}))
    spec = load_data_spec(cfg)
    if args.backend == "pytorch":
        import torch

        from fishbench.backends.pytorch.input.loaders import build_loaders

        torch.set_num_threads(1)
        train, _ = build_loaders(spec, batch_size=args.batch, bad_images="skip", seed=cfg.seed,
                                 rank=0, world_size=1, device=torch.device("cpu"),
                                 memory_format=torch.contiguous_format, bad_files=BadFiles())
        stream = train.stream(0, args.epochs, len(train))  # as the trainer takes them

        def epoch(e: int):
            return islice(stream, len(train))
    else:
        from fishbench.backends.mindspore.device import configure
        from fishbench.backends.mindspore.input.loader import build_batches

        configure(cfg)
        train, _ = build_batches(spec, args.batch, args.workers, "skip", cfg.seed, 0, 1, BadFiles())
        epoch = train.epoch
    for e in range(args.epochs):
        start, cpu, n = time.perf_counter(), time.process_time(), 0
        for _, labels in epoch(e):
            n += len(labels)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"{args.backend} {args.dataset} epoch {e}: {n / wall:.1f} img/s, "
              f"{n / cpu:.1f} img per CPU second (all threads of this process)", flush=True)


if __name__ == "__main__":
    main()
