"""Read runs and compare them in one table: the code behind ``fishbench compare`` and the summary
that every multirun writes (:mod:`fishbench.sweeps.summary`).

A *run dir* holds ``metrics.json`` or Hydra's ``.hydra/``; a *sweep dir* is a folder whose
subfolders are run dirs. A table has an id column, one column per key whose value differs between
the runs, then :data:`METRIC_COLUMNS`. Runs that did not complete keep their row and show their
status; they sort after the completed ones.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from fishbench.errors import FishbenchError
from fishbench.run.records import (HYDRA_DIR, METRICS_FILE, atomic_write, atomic_write_text,
                               read_history)

METRIC_COLUMNS = ("top1", "top5", "best_top1", "best_epoch", "ms_per_step", "img_per_s",
                  "total_time_s", "status")
HIGHER_IS_BETTER = frozenset({"top1", "top5", "best_top1", "img_per_s"})
COMPLETED = "completed"


class CompareError(FishbenchError):
    """A path that holds no run, a filter no run can match, or an output file in a folder that
    does not exist."""


@dataclass
class Run:
    """One run dir as read from disk."""

    path: Path
    metrics: dict[str, Any]  # metrics.json; always has "status"
    config: dict[str, Any]  # .hydra/config.yaml as dotted keys, interpolations as written
    overrides: dict[str, Any]  # .hydra/overrides.yaml: key -> typed value
    history: list[dict[str, float]]  # history.csv
    job: int | None  # hydra.job.num of a multirun job

    @property
    def status(self) -> str:
        return str(self.metrics["status"])

    def lookup(self, key: str) -> Any:
        """``key`` in the config, else the metrics, else the overrides (``None`` if absent)."""
        for source in (self.config, self.metrics, self.overrides):
            if key in source:
                return source[key]
        return None

    def keys(self) -> set[str]:
        return {*self.config, *self.metrics, *self.overrides}


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


# --- reading ---------------------------------------------------------------------------------


def is_run_dir(path: Path) -> bool:
    return (path / METRICS_FILE).is_file() or (path / HYDRA_DIR).is_dir()


def flatten(node: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def parse_overrides(lines: Sequence[str]) -> dict[str, Any]:
    """Hydra override strings -> ``{key: typed value}`` (``+``/``++``/``~`` prefixes dropped)."""
    parsed = OverridesParser.create().parse_overrides(list(lines))
    return {o.get_key_element().lstrip("+~"): o.value() for o in parsed}


def read_metrics(path: Path) -> dict[str, Any]:
    """The run's ``metrics.json``; always has ``status`` (``unknown`` when there is no file)."""
    file = path / METRICS_FILE
    if not file.is_file():
        return {"status": "unknown"}  # Hydra started the job, but it wrote nothing yet
    try:
        metrics = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        return {"status": "unreadable", "error": f"{file}: {err}"}
    if not isinstance(metrics, dict):
        return {"status": "unreadable",
                "error": f"{file}: holds a JSON {type(metrics).__name__}, not an object"}
    metrics.setdefault("status", "unknown")
    return metrics


def _read_yaml(path: Path) -> Any:
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False) if path.is_file() else None


def read_run(path: Path) -> Run:
    """Read one run dir; missing files give empty parts, never an exception."""
    path = Path(path)
    config = _read_yaml(path / HYDRA_DIR / "config.yaml") or {}
    overrides = _read_yaml(path / HYDRA_DIR / "overrides.yaml") or []
    hydra_file = path / HYDRA_DIR / "hydra.yaml"
    job = None
    if hydra_file.is_file():
        hydra_cfg = OmegaConf.load(hydra_file)
        if OmegaConf.select(hydra_cfg, "hydra.mode") == "MULTIRUN":
            job = OmegaConf.select(hydra_cfg, "hydra.job.num")
    return Run(path=path, metrics=read_metrics(path), config=flatten(config),
               overrides=parse_overrides(overrides), history=read_history(path), job=job)


def _natural_key(path: Path) -> tuple[int, int, str]:
    return (0, int(path.name), "") if path.name.isdigit() else (1, 0, path.name)


def sweep_run_dirs(path: Path) -> list[Path]:
    """The run dirs directly inside ``path``, job order (0, 1, ..., 10)."""
    return sorted((p for p in path.iterdir() if p.is_dir() and is_run_dir(p)), key=_natural_key)


def collect_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Read every run named by ``paths``: run dirs and sweep dirs, in any mix (duplicates once)."""
    run_dirs: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        found = [path] if is_run_dir(path) else sweep_run_dirs(path) if path.is_dir() else []
        if not found:
            raise CompareError(
                f"'{raw}' is neither a run dir (a folder with {METRICS_FILE} or {HYDRA_DIR}/, as "
                "written by `python run.py`) nor a sweep dir (a folder whose subfolders are run "
                "dirs, as written by `python run.py -m`)"
                + ("" if path.exists() else ": it does not exist")
                + ". Pass run or sweep directories, e.g. outputs/sweeps/<date>/<time>_<name>_<uid>."
            )
        run_dirs.update((p.resolve(), None) for p in found)
    return [read_run(p) for p in run_dirs]


# --- selecting and tabulating ----------------------------------------------------------------


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


def _order(value: Any) -> tuple[int, float, str]:
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
    present.sort(key=lambda row: _order(value(row)), reverse=(key in HIGHER_IS_BETTER) != reverse)
    rows = present + [row for row in table.rows if value(row) is None]
    rows.sort(key=lambda row: row.run.status != COMPLETED)
    table.rows = rows


# --- rendering -------------------------------------------------------------------------------


def format_cell(column: str, value: Any) -> str:
    """Metrics to two decimals, other floats in short form, missing values as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if column in METRIC_COLUMNS else f"{value:g}"
    return str(value)


def _formatted(table: Table) -> list[list[str]]:
    return [[format_cell(c, row.cells[c]) for c in table.columns] for row in table.rows]


def _error_notes(table: Table) -> list[str]:
    return [f"{table.id_column} {row.cells[table.id_column]} {row.run.status}: "
            f"{' '.join(str(row.run.metrics['error']).split())}"
            for row in table.rows if row.run.metrics.get("error")]


def render_text(table: Table) -> str:
    """An aligned plain-text table, then a line per run that recorded an error."""
    lines = [table.columns, *_formatted(table)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(table.columns))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            for line in lines]
    notes = _error_notes(table)
    return "\n".join(text + ([""] + notes if notes else [])) + "\n"


def render_markdown(table: Table) -> str:
    """A Markdown table, then a list of the errors runs recorded."""
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [line(table.columns), line(["---"] * len(table.columns)), *map(line, _formatted(table))]
    notes = _error_notes(table)
    if notes:
        out += ["", *("- " + note.replace("|", "\\|") for note in notes)]
    return "\n".join(out) + "\n"


def output_path(path: str | Path) -> Path:
    """``path`` of a file to write; its folder must exist (a typo must not create folders)."""
    path = Path(path).expanduser()
    if not path.parent.is_dir():
        raise CompareError(f"cannot write '{path}': the folder '{path.parent}' does not exist. "
                             "Create it first or pass a path in an existing folder.")
    return path


def write_csv(table: Table, path: Path) -> None:
    """The table with full-precision values, plus an ``error`` column."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*table.columns, "error"])
    for row in table.rows:
        writer.writerow(["" if row.cells[c] is None else row.cells[c] for c in table.columns]
                        + [row.run.metrics.get("error", "")])
    atomic_write_text(output_path(path), buf.getvalue())


def write_markdown(table: Table, path: Path) -> None:
    atomic_write_text(output_path(path), render_markdown(table))


def _plain(text: str) -> str:
    """``text`` for a matplotlib label: ``$`` (as in ``${...}``) must not start math mode."""
    return text.replace("$", r"\$")


def _row_label(table: Table, row: Row) -> str:
    """``job 3: lr_init=0.05, T_max=2``; just the id when more than three keys vary."""
    label = f"{table.id_column} {row.cells[table.id_column]}"
    if 0 < len(table.keys) <= 3:
        label += ": " + ", ".join(f"{k}={format_cell(k, row.cells[k])}" for k in table.keys)
    return _plain(label)


def _plot_history(ax: Any, table: Table) -> None:
    for row in table.rows:
        if row.run.history:
            ax.plot([r["epoch"] for r in row.run.history], [r["top1"] for r in row.run.history],
                    marker="o", label=_row_label(table, row))
    ax.set(xlabel="epoch", ylabel="validation top1 (%)", title="top1 per epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no epoch finished", ha="center", va="center",
                transform=ax.transAxes)


def _axis_labels(table: Table, key: str) -> list[str]:
    """The distinct values of ``key`` as formatted cells, in value order."""
    values = {format_cell(key, row.cells[key]): row.cells[key] for row in table.rows}
    return sorted(values, key=lambda label: _order(values[label]))


def _plot_heatmap(ax: Any, fig: Any, table: Table) -> None:
    """Final top1 over the two varying keys (the best run where a cell holds several)."""
    y_key, x_key = table.keys
    ys, xs = (_axis_labels(table, key) for key in (y_key, x_key))
    grid = [[math.nan] * len(xs) for _ in ys]
    status = [[""] * len(xs) for _ in ys]
    for row in table.rows:
        i = ys.index(format_cell(y_key, row.cells[y_key]))
        j = xs.index(format_cell(x_key, row.cells[x_key]))
        top1 = row.cells["top1"]
        if row.run.status == COMPLETED and top1 is not None:
            grid[i][j] = top1 if math.isnan(grid[i][j]) else max(grid[i][j], top1)
        elif not status[i][j]:
            status[i][j] = row.run.status
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    fig.colorbar(image, ax=ax, label="final top1 (%)")
    ax.set(xticks=range(len(xs)), yticks=range(len(ys)), xlabel=x_key, ylabel=y_key,
           xticklabels=[_plain(x) for x in xs], yticklabels=[_plain(y) for y in ys],
           title="final top1")
    for i, j in ((i, j) for i in range(len(ys)) for j in range(len(xs))):
        empty = math.isnan(grid[i][j])
        dark = not empty and image.norm(grid[i][j]) < 0.5  # viridis: dark below the middle
        ax.text(j, i, status[i][j] if empty else f"{grid[i][j]:.2f}", ha="center", va="center",
                color="w" if dark else "k")


def write_png(table: Table, path: Path) -> None:
    """top1 against epoch for every run; beside it, for exactly two varying keys, a heat map of
    the final top1."""
    # Imported here: matplotlib is slow to import, and most readers of runs never plot.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    heatmap = len(table.keys) == 2
    fig = Figure(figsize=(13 if heatmap else 7, 5))
    FigureCanvasAgg(fig)
    _plot_history(fig.add_subplot(1, 2 if heatmap else 1, 1), table)
    if heatmap:
        _plot_heatmap(fig.add_subplot(1, 2, 2), fig, table)
    fig.tight_layout()
    atomic_write(output_path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def compare(paths: Sequence[str | Path], filters: Sequence[str] = (), sort: str = "top1",
            reverse: bool = False) -> Table:
    """Read ``paths`` (run and sweep dirs), keep the runs matching ``filters``, tabulate, sort."""
    table = compare_table(filter_runs(collect_runs(paths), filters))
    sort_rows(table, sort, reverse)
    return table
