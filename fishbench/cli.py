"""The ``fishbench`` command: ``fishbench compare PATH... [--sort KEY] [--filter k=v] ...`` and
``fishbench resume SWEEP_DIR [--retry-failed]``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from fishbench.compare import compare
from fishbench.compare.plot import write_png
from fishbench.compare.render import render_text, write_csv, write_markdown
from fishbench.errors import FishbenchError

RUN_PY = Path(__file__).resolve().parents[1] / "run.py"


def _compare(args: argparse.Namespace) -> int:
    table = compare(args.paths, args.filter, args.sort, args.reverse)
    print(render_text(table), end="")
    for path, write in ((args.csv, write_csv), (args.md, write_markdown), (args.png, write_png)):
        if path is not None:
            write(table, path)
    return 0


def _resume(args: argparse.Namespace) -> int:
    """``python run.py -m`` with the sweep's saved overrides, in its own working dir; the exit
    status is that multirun's."""
    from fishbench.sweeps.resume import SweepError, resume_command  # Hydra's: slow to import

    if not RUN_PY.is_file():
        raise SweepError(f"fishbench resume runs {RUN_PY}, which is missing: install fishbench "
                         f"from its repository (pip install -e .).")
    run_args, cwd = resume_command(Path(args.sweep_dir), args.retry_failed, args.overrides)
    print(f"fishbench resume: in {cwd}: python run.py {' '.join(run_args)}", file=sys.stderr)
    return subprocess.run([sys.executable, str(RUN_PY), *run_args], cwd=cwd).returncode


EXAMPLES = """examples:
  fishbench compare outputs/sweeps/<date>/<sweep dir>           the table of a sweep's jobs
  fishbench compare outputs/runs/<date>/* --filter backend=pytorch --sort img_per_s
  fishbench compare <sweep dir> --csv table.csv --png table.png
  fishbench resume outputs/sweeps/<date>/<sweep dir>            continue an interrupted sweep
  fishbench resume <sweep dir> --retry-failed hydra/launcher=slurm

Runs themselves start with `python run.py` (see `python run.py --help`)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fishbench", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Analyse and continue fishbench runs: compare run and sweep dirs in one\n"
                    "table, resume an interrupted sweep in its own dir.")
    commands = parser.add_subparsers(dest="command", required=True)
    cmp = commands.add_parser(
        "compare", help="compare runs and sweeps in one table",
        description="Compare any mix of run dirs and sweep dirs: the config keys that differ "
                    "between the runs, then their metrics. Failed and unfinished runs show their "
                    "status.")
    cmp.add_argument("paths", nargs="+", metavar="PATH", help="a run dir or a sweep dir")
    cmp.add_argument("--sort", default="top1", metavar="KEY",
                     help="column, config key or metric to sort by, best first: descending for "
                          "top1/top5/best_top1/img_per_s, ascending otherwise (default: top1)")
    cmp.add_argument("--reverse", action="store_true", help="reverse the --sort order")
    cmp.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                     help="keep runs whose KEY equals VALUE (repeatable: different keys must all "
                          "match, values given for one key are alternatives)")
    cmp.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    cmp.add_argument("--md", metavar="FILE", help="also write the table as Markdown")
    cmp.add_argument("--png", metavar="FILE", help="also plot top1 per epoch (and a heat map "
                                                   "when exactly two keys differ)")
    cmp.set_defaults(func=_compare)
    res = commands.add_parser(
        "resume", help="continue an interrupted sweep in its own dir",
        description="Continue the sweep in SWEEP_DIR with the overrides it was started with: "
                    "completed jobs are kept as they are, interrupted jobs continue from their "
                    "last checkpoint, jobs never started start, an Optuna study continues toward "
                    "its n_trials; the summary is then written over all jobs. Exit status: 0 "
                    "when every job completed, 1 when some did not, 2 when refused.")
    res.add_argument("sweep_dir", metavar="SWEEP_DIR", help="the sweep's dir (it holds "
                                                            "multirun.yaml and the job dirs)")
    res.add_argument("--retry-failed", action="store_true",
                     help="also run failed jobs again (from their last checkpoint, else from "
                          "scratch)")
    res.add_argument("overrides", nargs="*", metavar="HYDRA_OVERRIDE",
                     help="Hydra settings that do not change the sweep, e.g. "
                          "hydra.sweeper.n_trials=40 or hydra/launcher=slurm")
    res.set_defaults(func=_resume)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``fishbench`` command; a user error prints one paragraph and returns 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FishbenchError as err:
        print(f"fishbench {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # python -m fishbench.cli
    sys.exit(main())
