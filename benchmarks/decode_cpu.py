"""The cpu engine's decode per core: PIL (``pil_decode``, MindSpore's workers) against torch
kernels (``tensor_decode``, PyTorch's), on the same files and crops, one thread.

    python benchmarks/decode_cpu.py --source ../shared/data/imagenet-sample --files 200

Prints, for the plan's training crops and the eval centre crops at 224: img per CPU second of
each, their ratio, and how far apart their crops are (mean and largest |difference| in 8-bit
levels).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from fishbench.backends.pytorch.input.cpu_decode import tensor_decode
from fishbench.data.decode import Crop, Decode, eval_crop, pil_decode
from fishbench.data.plan import AugmentPlan
from fishbench.data.transforms import EvalTransform, TrainTransform

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
TRAIN = TrainTransform(224, (0.08, 1.0), (3 / 4, 4 / 3), True, (0.4, 0.4, 0.4, 0.1), MEAN, STD)
EVAL = EvalTransform(256, 224, MEAN, STD)
Geometry = Callable[[int, int], Crop]


def per_cpu_second(decode: Decode, files: list[bytes], geometries: list[Geometry],
                   rounds: int) -> float:
    """Images per CPU second, the best of ``rounds`` passes."""
    best = 0.0
    for _ in range(rounds):
        start = time.process_time()
        for data, geometry in zip(files, geometries):
            decode(data, geometry)
        best = max(best, len(files) / (time.process_time() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="a folder of JPEGs")
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    paths = sorted(p for p in args.source.iterdir() if p.suffix.lower() in (".jpeg", ".jpg"))
    files = [p.read_bytes() for p in paths[:args.files]]
    plan = AugmentPlan(0, TRAIN)
    splits: dict[str, list[Geometry]] = {
        "train": [lambda w, h, d=plan.sample(0, i): Crop((w, h), d.box(w, h), TRAIN.size)
                  for i in range(len(files))],
        "eval": [lambda w, h: eval_crop(w, h, EVAL)] * len(files),
    }
    print(f"{len(files)} JPEGs from {args.source}, 224 x 224, one thread; torch "
          f"{torch.__version__}, Pillow {Image.__version__}")
    for split, geometries in splits.items():
        pil = per_cpu_second(pil_decode, files, geometries, args.rounds)
        tensor = per_cpu_second(tensor_decode, files, geometries, args.rounds)
        diffs = [np.abs(pil_decode(d, g).astype(int) - tensor_decode(d, g).astype(int))
                 for d, g in zip(files, geometries)]
        print(f"{split}: PIL {pil:.0f}, torch {tensor:.0f} img per CPU second "
              f"({tensor / pil:.2f}x); |difference| mean {np.mean([d.mean() for d in diffs]):.2f}, "
              f"max {max(int(d.max()) for d in diffs)} levels", flush=True)


if __name__ == "__main__":
    main()
