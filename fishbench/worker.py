"""One data-parallel worker, started by torch's elastic agent or msrun (never by Hydra).

Usage (by :mod:`fishbench.launch` only): ``python -m fishbench.worker RUN_DIR``. The worker loads
the resolved config from the run dir, joins the process group through its backend, logs to
``RUN_DIR/rank<r>.log`` (rank 0 also to the terminal) and runs the task; rank 0 writes the results.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from omegaconf import OmegaConf

from fishbench.app import run
from fishbench.backends import load_backend
from fishbench.config import register_resolvers
from fishbench.launch import worker_config_path

LOG_FORMAT = "[%(asctime)s][rank {rank}][%(name)s][%(levelname)s] - %(message)s"


def setup_logging(run_dir: Path, rank: int) -> None:
    fmt = logging.Formatter(LOG_FORMAT.format(rank=rank))
    file_handler = logging.FileHandler(run_dir / f"rank{rank}.log")
    console = logging.StreamHandler(sys.stdout)
    console.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    root = logging.getLogger()
    root.handlers[:] = []
    for handler in (file_handler, console):
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def main(run_dir: str) -> None:
    register_resolvers()
    path = Path(run_dir)
    cfg = OmegaConf.load(worker_config_path(path))
    backend = load_backend(str(cfg.backend.name))
    rank, world_size, local_rank = backend.init_distributed(cfg)
    setup_logging(path, rank)
    try:
        run(cfg, path, rank, world_size, local_rank)
    except Exception:
        logging.getLogger("fishbench").exception("worker rank %d failed", rank)
        raise
    finally:
        backend.shutdown_distributed()


if __name__ == "__main__":
    main(sys.argv[1])
