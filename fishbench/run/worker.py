"""One data-parallel worker, started by torch's elastic agent or msrun (never by Hydra).

Usage (by :mod:`fishbench.run.launch` only): ``python -m fishbench.run.worker RUN_DIR NODE_RANK``.
The worker loads the resolved config that its node's Hydra process wrote into the run dir and runs
its share of the run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import OmegaConf

from fishbench.run.app import run_worker
from fishbench.config import register_resolvers
from fishbench.run.launch import worker_config_path


def main(run_dir: str, node_rank: str) -> None:
    register_resolvers()
    path = Path(run_dir)
    run_worker(OmegaConf.load(worker_config_path(path, int(node_rank))), path)


if __name__ == "__main__":
    try:
        main(sys.argv[1], sys.argv[2])
    except KeyboardInterrupt as err:  # SIGINT/SIGTERM from the launcher: recorded, logged
        sys.exit(getattr(err, "exit_code", 130))
