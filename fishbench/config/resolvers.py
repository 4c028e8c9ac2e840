"""OmegaConf resolvers of ``conf/`` and the command-line fix-up that lets ``world=N`` pick a group option."""

from __future__ import annotations

import logging
import re
import secrets
from functools import lru_cache

from omegaconf import OmegaConf

from fishbench.sweeps.slurm import slurm_cpus, slurm_gpus

log = logging.getLogger("fishbench")


@lru_cache(maxsize=1)
def run_uid() -> str:
    """A short random token, fixed for this process, that keeps run directories apart."""
    return secrets.token_hex(2)


def default_warmup(warmup_epochs: int, epochs: int) -> int:
    """``conf/config.yaml``'s default warm-up, shortened to fit a run of ``epochs`` epochs.

    Only the default is shortened (``python run.py epochs=1`` runs); a ``warmup_epochs`` given
    on the command line replaces this and is checked as it stands."""
    fitted = max(0, min(warmup_epochs, epochs - 1))
    if fitted != warmup_epochs:
        _log_shortened_warmup(warmup_epochs, epochs, fitted)
    return fitted


@lru_cache(maxsize=None)
def _log_shortened_warmup(warmup_epochs: int, epochs: int, fitted: int) -> None:
    """Said once per process (the config is resolved more than once)."""
    log.info("epochs=%d: the default warm-up of %d epoch(s) is shortened to %d "
             "(set warmup_epochs=N to choose)", epochs, warmup_epochs, fitted)


def node_suffix(node_rank: int) -> str:
    """What the files of node ``node_rank`` in a run dir shared by several nodes add to their
    names (``.hydra.node1/``, ``run.node1.log``): nothing on node 0, whose are the run's."""
    return f".node{node_rank}" if int(node_rank) else ""


def default_resize(image_size: int, resize_size: int, crop_size: int) -> int:
    """The resize side before the centre crop, ``resize_size / crop_size`` of ``image_size``
    (ImageNet's 256 for 224), so ``dataset.image_size=N`` alone gives a valid pair."""
    return round(image_size * resize_size / crop_size)


def sweep_folder(name: str) -> str | None:
    """In a multirun's job, the absolute path of ``name`` in the sweep dir (a folder the sweep's
    jobs share); None elsewhere."""
    from fishbench.run.launch import current_sweep_dir

    sweep_dir = current_sweep_dir()
    return None if sweep_dir is None else str((sweep_dir / name).absolute())


def register_resolvers() -> None:
    """Register the resolvers of ``conf/``: ``${fb_uid:}`` (run dir names; cached in the config,
    so a job that a launcher unpickles elsewhere names the same dirs), ``${fb_warmup:...}`` and
    ``${fb_resize:...}`` (defaults that follow ``epochs`` and ``dataset.image_size``),
    ``${fb_sweep_folder:...}`` (a folder a sweep's jobs share), ``${fb_slurm_gpus:...}``,
    ``${fb_slurm_cpus:...}`` (what a Slurm job asks for) and ``${fb_node_suffix:...}`` (the names
    of a node's own files in the run dir)."""
    if not OmegaConf.has_resolver("fb_uid"):
        OmegaConf.register_new_resolver("fb_uid", run_uid, use_cache=True)
    for name, resolver in (("fb_warmup", default_warmup), ("fb_resize", default_resize),
                           ("fb_sweep_folder", sweep_folder), ("fb_slurm_gpus", slurm_gpus),
                           ("fb_slurm_cpus", slurm_cpus), ("fb_node_suffix", node_suffix)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)


_WORLD_CHOICE = re.compile(r"^(\+*world)=(\d+(?:,\d+)*)$")


def quote_world_choices(argv: list[str]) -> list[str]:
    """Let ``world=8`` (or ``world=1,2`` in a multirun) pick ``conf/world/8.yaml``.

    Hydra parses ``8`` as an int, which it refuses as a config-group choice; quoting makes it the
    option's name. Other counts are set with ``world.nproc_per_node=N``.
    """
    def quote(arg: str) -> str:
        match = _WORLD_CHOICE.match(arg)
        if match is None:
            return arg
        return match[1] + "=" + ",".join(f'"{n}"' for n in match[2].split(","))

    return [quote(arg) for arg in argv]


def quoting_hint(argv: list[str]) -> str | None:
    """fishbench's hint for the overrides whose value Hydra reads only when quoted (``=``,
    non-ASCII letters, or ``,`` outside a multirun, e.g. in a path); None when there is none."""
    multirun = "-m" in argv or "--multirun" in argv
    needs_quotes = re.compile(r"[=]|[^\x00-\x7f]" if multirun else r"[=,]|[^\x00-\x7f]")
    unquoted = [arg for arg in argv if "=" in arg and not arg.startswith("-")
                and needs_quotes.search(arg.split("=", 1)[1])
                and arg.split("=", 1)[1][:1] not in "'\"[{"]
    if not unquoted:
        return None
    examples = " ".join(f"""'{a.split("=", 1)[0]}="{a.split("=", 1)[1]}"'""" for a in unquoted)
    return ("fishbench: Hydra reads '=', ',' and non-ASCII letters in a value only when "
            "the value is quoted. Put the value in double quotes and the whole argument in "
            f"single quotes for the shell, e.g. python run.py {examples}")
