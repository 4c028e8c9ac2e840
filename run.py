"""fishbench's entry point: `python run.py [group=option ...] [key=value ...]` (Hydra)."""

import sys

import hydra
from omegaconf import DictConfig

from fishbench.run.app import main as run_main
from fishbench.config import quote_world_choices, register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return run_main(cfg)


if __name__ == "__main__":
    sys.argv = quote_world_choices(sys.argv)
    try:
        main()
    except KeyboardInterrupt as err:  # SIGINT/SIGTERM: recorded as interrupted, already logged
        sys.exit(getattr(err, "exit_code", 130))
