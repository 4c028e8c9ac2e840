"""A table as text, Markdown or CSV; every file written whole or not at all, into a folder that
must exist."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fishbench.compare.errors import CompareError
from fishbench.compare.table import METRIC_COLUMNS, Table
from fishbench.run.records import atomic_write_text


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
