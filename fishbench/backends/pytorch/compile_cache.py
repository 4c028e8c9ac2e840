"""Where torch.compile keeps what it compiled, and whether a run found it there.

Inductor keeps its compiled graphs (the FX graph cache), AOTAutograd's entries and the Triton
kernels under one folder, ``TORCHINDUCTOR_CACHE_DIR`` (the kernels under ``TRITON_CACHE_DIR``).
A process whose graphs another one compiled into that folder, on any node that sees it, loads
them instead of compiling again: a sweep's jobs share one folder (``backend.compile_cache``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from torch._dynamo.utils import counters
from torch._inductor.runtime.cache_dir_utils import cache_dir


def use_compile_cache(folder: str | None) -> str:
    """Send torch.compile's caches to ``folder`` (None: where torch would put them, its default
    or ``TORCHINDUCTOR_CACHE_DIR``); call it before the first compile. Returns the folder."""
    if folder is not None:
        path = os.path.abspath(os.path.expanduser(folder))
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = path
        os.environ["TRITON_CACHE_DIR"] = os.path.join(path, "triton")
    return cache_dir()


@dataclass(frozen=True)
class GraphCacheCounts:
    """Compiled graphs this process loaded from the cache (``hits``) and compiled (``misses``)."""

    hits: int
    misses: int

    @classmethod
    def now(cls) -> GraphCacheCounts:
        graphs = counters["inductor"]
        return cls(graphs["fxgraph_cache_hit"], graphs["fxgraph_cache_miss"])

    def __sub__(self, earlier: GraphCacheCounts) -> GraphCacheCounts:
        return GraphCacheCounts(self.hits - earlier.hits, self.misses - earlier.misses)

