"""Selecting runs and tabulating them: an id column, one column per key whose value differs
between the runs, then :data:`METRIC_COLUMNS`. Runs that did not complete keep their row and show
their status; they sort after the completed ones."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fishbench.compare.errors import CompareError
from fishbench.compare.runs import COMPLETED, Run

METRIC_COLUMNS = ("top1", "top5", "best_top1", "best_epoch", "ms_per_step", "img_per_s",
                  "total_time_s", "status")
HIGHER_IS_BETTER = frozenset({"top1", "top5", "best_top1", "img_per_s"})


@dataclass
class Row:
    run: Run
    cells: dict[str, Any]


@dataclass
class Table:
    """Rows of runs; ``keys`` are the columns whose values differ between the runs."""

    id_column: str
    keys: list[str]
    rows: list[Row]

    @property
    def columns(self) -> list[str]:
        return [self.id_column, *self.keys, *METRIC_COLUMNS]


def _matches(value: Any, wanted: str) -> bool:
    if isinstance(value, bool):
        return wanted.lower() == str(value).lower()
    if isinstance(value, (int, float)):
        try:
            return math.isclose(float(value), float(wanted), rel_tol=1e-9)
        except ValueError:
            return False
    return str(value if value is not None else "null") == wanted


def filter_runs(runs: list[Run], filters: Sequence[str]) -> list[Run]:
    """Keep the runs matching every ``key=value``; values given for one key are alternatives."""
    wanted: dict[str, list[str]] = {}
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CompareError(f"--filter '{item}' is not of the form key=value "
                               "(e.g. lr_init=0.05).")
        wanted.setdefault(key.strip(), []).append(value.strip())
    known = set().union(*(run.keys() for run in runs))
    for key in wanted:
        if key not in known:
            varying = ", ".join(varying_keys([r.config for r in runs])) or "none"
            raise CompareError(
                f"--filter key '{key}' is not a config key, override or metric of any run. "
                f"Keys that vary here: {varying}; metrics: {', '.join(METRIC_COLUMNS)}.")
    kept = [run for run in runs
            if all(any(_matches(run.lookup(k), v) for v in values) for k, values in wanted.items())]
    if not kept:
        raise CompareError(f"No run matches --filter {' '.join(filters)} ({len(runs)} runs read).")
    return kept


def varying_keys(params: Sequence[Mapping[str, Any]]) -> list[str]:
    """Keys whose value (or presence) differs between the mappings, in first-seen order."""
    keys = list(dict.fromkeys(key for p in params for key in p))
    missing = object()
    return [key for key in keys if any(p.get(key, missing) != params[0].get(key, missing)
                                       for p in params[1:])]


def build_table(runs: Sequence[Run], params: Sequence[Mapping[str, Any]], ids: Sequence[Any],
                id_column: str) -> Table:
    """One row per run: its id, the values of the keys that vary across ``params``, its metrics."""
    keys = varying_keys(params)
    rows = [Row(run, {id_column: ident, **{k: p.get(k) for k in keys},
                      **{m: run.metrics.get(m) for m in METRIC_COLUMNS}})
            for run, p, ident in zip(runs, params, ids, strict=True)]
    return Table(id_column, keys, rows)


def relative_labels(paths: Sequence[Path]) -> list[str]:
    """Each path relative to the deepest folder that holds all of them."""
    if len(paths) == 1:
        return [paths[0].name]
    base = Path(os.path.commonpath([p.parent for p in paths]))
    return [str(p.relative_to(base)) for p in paths]


def compare_table(runs: Sequence[Run]) -> Table:
    """The ``fishbench compare`` table: runs labelled by path, the config keys that differ."""
    return build_table(runs, [r.config for r in runs], relative_labels([r.path for r in runs]),
                       "run")


def sweep_table(runs: Sequence[Run]) -> Table:
    """A sweep summary: runs labelled by job number, the override keys that vary."""
    ids = [r.job if r.job is not None else r.path.name for r in runs]
    return build_table(runs, [r.overrides for r in runs], ids, "job")


def value_order(value: Any) -> tuple[int, float, str]:
    """A sort key for cell values of mixed types: numbers by value, before everything else as
    text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def sort_rows(table: Table, key: str = "top1", reverse: bool = False) -> None:
    """Sort by ``key`` (a column, or any config key, metric or override), best first: descending
    for :data:`HIGHER_IS_BETTER`, ascending otherwise; ``reverse`` flips that. Completed runs
    come first, and rows without a value for ``key`` come last in their group."""
    def value(row: Row) -> Any:
        return row.cells[key] if key in row.cells else row.run.lookup(key)

    if not any(key in row.cells or key in row.run.keys() for row in table.rows):
        raise CompareError(f"--sort key '{key}' is not a column, config key, override or metric "
                           f"of any run. Columns: {', '.join(table.columns)}.")
    present = [row for row in table.rows if value(row) is not None]
    present.sort(key=lambda row: value_order(value(row)),
                 reverse=(key in HIGHER_IS_BETTER) != reverse)
    rows = present + [row for row in table.rows if value(row) is None]
    rows.sort(key=lambda row: row.run.status != COMPLETED)
    table.rows = rows
