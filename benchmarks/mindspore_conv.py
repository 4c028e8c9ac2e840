"""One MindSpore 3x3 convolution on the CPU: which oneDNN kernel it runs and how long it takes.

Run it once per ``ONEDNN_MAX_CPU_ISA`` value (oneDNN reads the variable when MindSpore loads, so
each value needs its own process). fishbench itself is not used: this shows MindSpore's own
choice, which fishbench's cap (``fishbench/backends/mindspore/device.py``) overrides.

    for isa in ALL AVX2 AVX; do ONEDNN_MAX_CPU_ISA=$isa python benchmarks/mindspore_conv.py; done
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def time_convolution(batch: int, channels: int, side: int, repeats: int) -> list[float]:
    import mindspore as ms
    import numpy as np
    from mindspore import nn

    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    conv = nn.Conv2d(channels // 2, channels, 3, pad_mode="same")
    x = ms.Tensor(np.random.default_rng(0).standard_normal(
        (batch, channels // 2, side, side), dtype=np.float32))
    conv(x).asnumpy()  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        conv(x).asnumpy()
        times.append(1000 * (time.perf_counter() - start))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--channels", type=int, default=64, help="output channels (input: half)")
    parser.add_argument("--side", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        times = time_convolution(args.batch, args.channels, args.side, args.repeats)
        print(" ".join(f"{t:.1f}" for t in times))
        return
    # A child with ONEDNN_VERBOSE=1 prints the implementation oneDNN picked for each primitive.
    env = {**os.environ, "ONEDNN_VERBOSE": "1"}
    out = subprocess.run([sys.executable, __file__, "--child", *sys.argv[1:]], env=env,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    kernels = sorted({line.split(",")[6] for line in out
                      if line.startswith("onednn_verbose") and ",convolution," in line
                      and ",exec," in line})
    times = [float(t) for t in out[-1].split()]
    print(f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}  "
          f"conv {args.batch}x{args.channels // 2}x{args.side}x{args.side} -> {args.channels}, 3x3: "
          f"kernel {', '.join(kernels) or '?'}  median {statistics.median(times):.1f} ms "
          f"({len(times)} runs)")


if __name__ == "__main__":
    main()
