"""Read runs and compare them in one table: the code behind ``fishbench compare`` and the summary
that every multirun writes (:mod:`fishbench.sweeps.summary`).

:mod:`~fishbench.compare.runs` reads run and sweep dirs, :mod:`~fishbench.compare.table` selects
and tabulates them, :mod:`~fishbench.compare.render` writes text, Markdown and CSV,
:mod:`~fishbench.compare.plot` the PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fishbench.compare.errors import CompareError
from fishbench.compare.runs import collect_runs
from fishbench.compare.table import Table, compare_table, filter_runs, sort_rows

__all__ = ["CompareError", "compare"]


def compare(paths: Sequence[str | Path], filters: Sequence[str] = (), sort: str = "top1",
            reverse: bool = False) -> Table:
    """Read ``paths`` (run and sweep dirs), keep the runs matching ``filters``, tabulate, sort."""
    table = compare_table(filter_runs(collect_runs(paths), filters))
    sort_rows(table, sort, reverse)
    return table
