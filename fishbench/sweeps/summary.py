"""The summary every multirun ends with, written into its sweep dir by a Hydra callback.

- ``summary.csv`` / ``summary.md``: one row per job: the override keys that vary, the metrics;
- ``summary.png``: top1 per epoch of every job (and a heat map of final top1 for a 2-key grid);
- ``hparams/``: TensorBoard HParams records (``tensorboard --logdir <sweep dir>``, HPARAMS tab).

Runs are read and tabulated by :mod:`fishbench.compare`, the code behind ``fishbench compare``.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.plugins.hparams import summary_v2 as hp

from fishbench.compare.plot import write_png
from fishbench.compare.render import render_text, write_csv, write_markdown
from fishbench.compare.runs import collect_runs, sweep_run_dirs
from fishbench.compare.table import METRIC_COLUMNS, Table, sort_rows, sweep_table
from fishbench.run.records import ScalarWriter
from fishbench.sweeps.resume import quoted

log = logging.getLogger("fishbench")

HPARAMS_DIR = "hparams"
HPARAMS_METRICS = tuple(m for m in METRIC_COLUMNS if m != "status")
SESSION_STATUS = {"completed": api_pb2.STATUS_SUCCESS, "failed": api_pb2.STATUS_FAILURE,
                  "interrupted": api_pb2.STATUS_FAILURE, "running": api_pb2.STATUS_RUNNING}

HParamValue = bool | float | str


class SweepSummary(Callback):
    """Hydra callback (``conf/hydra/default.yaml``): keeps a sweep's jobs in one dir and
    summarises them when the sweep ends."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Pin the sweep dir, as the main config resolves it, for every job.

        Hydra composes each job's config anew (the main config's Hydra overrides plus the job's),
        so a sweep over a key the dir name depends on (``model=...`` and ``experiment=...``
        change ``name``) would spread its jobs over several dirs. The pin shows among the Hydra
        overrides in ``multirun.yaml`` and in each job's ``.hydra/hydra.yaml``."""
        pinned = f"hydra.sweep.dir={quoted(str(config.hydra.sweep.dir))}"
        config.hydra.overrides.hydra.append(pinned)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir() or not sweep_run_dirs(sweep_dir):
            log.warning("no job wrote into %s: no sweep summary", sweep_dir)
            return
        table = summarize_sweep(sweep_dir)
        log.info("sweep summary (%s/summary.{csv,md,png}):\n%s", sweep_dir, render_text(table))
        unfinished = [str(row.cells[table.id_column]) for row in table.rows
                      if row.run.status != "completed"]
        if unfinished:  # the exit status says so, as the README's "Exit status" tells
            log.error("%d of %d jobs did not complete (jobs %s): exit status 1. Resume: "
                      "`fishbench resume %s` (--retry-failed to run failed jobs again)",
                      len(unfinished), len(table.rows), ", ".join(unfinished), sweep_dir)
            sys.exit(1)


def summarize_sweep(sweep_dir: Path) -> Table:
    """Write ``summary.{csv,md,png}`` and ``hparams/`` into ``sweep_dir``; return the table."""
    table = sweep_table(collect_runs([sweep_dir]))
    sort_rows(table, "top1")
    write_csv(table, sweep_dir / "summary.csv")
    write_markdown(table, sweep_dir / "summary.md")
    write_png(table, sweep_dir / "summary.png")
    write_hparams(table, sweep_dir / HPARAMS_DIR)
    return table


def _hparam_value(value: Any) -> HParamValue:
    """TensorBoard takes bool, number or string hyperparameters: numbers become floats."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return str(value)


def _hparam_values(table: Table) -> dict[str, list[HParamValue | None]]:
    """Per varying key, each row's value; a key whose values mix types is all strings."""
    values: dict[str, list[HParamValue | None]] = {}
    for key in table.keys:
        raw = [row.cells[key] for row in table.rows]
        typed = [None if v is None else _hparam_value(v) for v in raw]
        if len({type(v) for v in typed if v is not None}) > 1:
            typed = [None if v is None else str(v) for v in raw]
        values[key] = typed
    return values


def _write_events(log_dir: Path, summaries: list[summary_pb2.Summary]) -> None:
    writer = ScalarWriter(log_dir)
    for summary in summaries:
        writer.add_summary(summary)
    writer.close()


def _session_end(status: str) -> summary_pb2.Summary:
    info = plugin_data_pb2.SessionEndInfo(
        status=SESSION_STATUS.get(status, api_pb2.STATUS_UNKNOWN), end_time_secs=time.time())
    content = plugin_data_pb2.HParamsPluginData(session_end_info=info)
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=metadata.SESSION_END_INFO_TAG, metadata=metadata.create_summary_metadata(content),
        tensor=metadata.NULL_TENSOR)])


def write_hparams(table: Table, log_dir: Path) -> None:
    """The experiment (varying keys, metrics) in ``log_dir``, and per job a session in
    ``log_dir/<job>`` with its hyperparameters, final metrics as scalars, and status."""
    shutil.rmtree(log_dir, ignore_errors=True)  # a summary written again replaces the old one
    values = _hparam_values(table)
    domains = [hp.HParam(key, hp.Discrete(sorted({v for v in vals if v is not None})))
               for key, vals in values.items()]
    metrics = [hp.Metric(name) for name in HPARAMS_METRICS]
    _write_events(log_dir, [hp.hparams_config_pb(domains, metrics)])
    for i, row in enumerate(table.rows):
        job = str(row.cells[table.id_column])
        hparams = {key: vals[i] for key, vals in values.items() if vals[i] is not None}
        scalars = summary_pb2.Summary(value=[
            summary_pb2.Summary.Value(tag=name, simple_value=float(row.cells[name]))
            for name in HPARAMS_METRICS if isinstance(row.cells[name], (int, float))])
        _write_events(log_dir / job, [hp.hparams_pb(hparams, trial_id=job), scalars,
                                      _session_end(row.run.status)])
