"""A table as a PNG: top1 against epoch for every run and, for a grid over two keys, a heat map
of the final top1. Labels that would crowd the figure, and take most of its drawing time, are left
out beyond :data:`LEGEND_MAX_RUNS` runs, :data:`CELL_TEXT_MAX_CELLS` cells and
:data:`AXIS_LABELS_MAX` values of a key."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from fishbench.compare.render import format_cell, output_path
from fishbench.compare.runs import COMPLETED
from fishbench.compare.table import Row, Table, value_order
from fishbench.run.records import atomic_write

LEGEND_MAX_RUNS = 20  # more runs: no legend, the title counts them
CELL_TEXT_MAX_CELLS = 200  # more heat-map cells: no top1 written in each
AXIS_LABELS_MAX = 20  # more values of a key: every n-th one labelled on its axis


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
    """A labelled line per run; beyond :data:`LEGEND_MAX_RUNS` runs, all lines as one artist and
    all points as another (a thousand separate lines take seconds to draw)."""
    rows = [row for row in table.rows if row.run.history]
    curves = [([r["epoch"] for r in row.run.history], [r["top1"] for r in row.run.history])
              for row in rows]
    if len(rows) <= LEGEND_MAX_RUNS:
        for row, (epochs, top1) in zip(rows, curves):
            ax.plot(epochs, top1, marker="o", label=_row_label(table, row))
    else:
        from matplotlib.collections import LineCollection

        ax.add_collection(LineCollection([list(zip(*curve)) for curve in curves],
                                         colors=[f"C{i % 10}" for i in range(len(rows))],
                                         linewidths=0.8, alpha=0.5))
        ax.plot([e for epochs, _ in curves for e in epochs], [t for _, top1 in curves for t in top1],
                ".", color="k", markersize=2, alpha=0.5)
    title = "top1 per epoch" + (f" ({len(rows)} runs)" if len(rows) > LEGEND_MAX_RUNS else "")
    ax.set(xlabel="epoch", ylabel="validation top1 (%)", title=title)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    if 0 < len(rows) <= LEGEND_MAX_RUNS:
        ax.legend(fontsize="small")
    elif not rows:
        ax.text(0.5, 0.5, "no epoch finished", ha="center", va="center",
                transform=ax.transAxes)


def _axis_labels(table: Table, key: str) -> list[str]:
    """The distinct values of ``key`` as formatted cells, in value order."""
    values = {format_cell(key, row.cells[key]): row.cells[key] for row in table.rows}
    return sorted(values, key=lambda label: value_order(values[label]))


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
    x_every, y_every = (math.ceil(len(labels) / AXIS_LABELS_MAX) for labels in (xs, ys))
    ax.set(xticks=range(0, len(xs), x_every), yticks=range(0, len(ys), y_every),
           xticklabels=[_plain(x) for x in xs[::x_every]],
           yticklabels=[_plain(y) for y in ys[::y_every]],
           xlabel=x_key, ylabel=y_key, title="final top1")
    if len(xs) * len(ys) > CELL_TEXT_MAX_CELLS:
        return
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
