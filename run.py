"""fishbench's entry point: `python run.py [group=option ...] [key=value ...]` (Hydra)."""

import sys

import hydra
from omegaconf import DictConfig

from fishbench.config import quote_world_choices, register_resolvers
from fishbench.config.resolvers import quoting_hint
from fishbench.run.app import main as run_main

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
    except SystemExit as exit_:  # Hydra refused the command line: add how to quote a value
        hint = quoting_hint(sys.argv[1:]) if exit_.code == 1 else None
        if hint:
            print(hint, file=sys.stderr)
        raise
