"""A run's config record (``.hydra/config.json``): `fishbench compare` and sweep summaries build the
same table from it as from Hydra's YAML, read it instead of the YAML, and fall back to the YAML
where there is no record or the YAML is newer."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict, read_write

from conftest import REPO
from fishbench.compare import compare
from fishbench.compare.render import render_text
from fishbench.compare.runs import collect_runs
from fishbench.compare.table import sort_rows, sweep_table
from fishbench.config import register_resolvers
from fishbench.run.config_record import read_config_record, read_hydra_yaml, write_config_record
from fishbench.run.records import CONFIG_RECORD, write_metrics

register_resolvers()
# Overrides of several kinds: a group, numbers, a quoted path with `,` and `=`, a list, null.
JOBS = [
    ["lr_init=0.1", "model=fishnet99", "dataset.root='/data/a,b=c'", "dataset.crop_scale=[0.5,1.0]"],
    ["lr_init=0.2", "model=resnet50", "dataset.root='/data/a,b=c'", "dataset.crop_scale=[0.6,1.0]"],
    ["lr_init=0.05", "model=resnet50", "dataset.root=/data/x", "loss_scale=null"],
]


def write_job(job_dir: Path, overrides: list[str], job: int, top1: float) -> None:
    """A multirun job dir's ``.hydra/`` as Hydra saves it (OmegaConf.save of the composed config,
    the overrides and the Hydra config) and a ``metrics.json``."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    hydra_cfg = cfg.hydra
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    hydra_cfg.mode, hydra_cfg.job.num = "MULTIRUN", job
    hydra_dir = job_dir / ".hydra"
    hydra_dir.mkdir(parents=True)
    OmegaConf.save(cfg, hydra_dir / "config.yaml")
    OmegaConf.save(OmegaConf.create(overrides), hydra_dir / "overrides.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": hydra_cfg}), hydra_dir / "hydra.yaml")
    write_metrics(job_dir, {"status": "completed", "top1": top1, "top5": 99.0})


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One sweep twice: Hydra's YAML only, and with each job's config record."""
    yaml_only = tmp_path_factory.mktemp("yaml_only")
    for job, overrides in enumerate(JOBS):
        write_job(yaml_only / str(job), overrides, job, 70.0 + job)
    recorded = tmp_path_factory.mktemp("recorded") / "sweep"
    shutil.copytree(yaml_only, recorded)
    for job in range(len(JOBS)):
        write_config_record(recorded / str(job))
    return yaml_only, recorded


def test_compare_and_the_sweep_summary_give_the_same_table_with_or_without_records(sweeps) -> None:
    yaml_only, recorded = sweeps
    assert not list(yaml_only.glob(f"*/.hydra/{CONFIG_RECORD}"))
    assert len(list(recorded.glob(f"*/.hydra/{CONFIG_RECORD}"))) == len(JOBS)
    tables = [compare([sweep]) for sweep in sweeps]
    assert render_text(tables[0]) == render_text(tables[1])
    assert tables[0].keys == tables[1].keys
    assert [r.cells for r in tables[0].rows] == [r.cells for r in tables[1].rows]
    summaries = []
    for sweep in sweeps:
        table = sweep_table(collect_runs([sweep]))
        sort_rows(table, "top1")
        summaries.append(table)
    assert render_text(summaries[0]) == render_text(summaries[1])
    assert summaries[1].keys == ["lr_init", "model", "dataset.root", "dataset.crop_scale",
                                 "loss_scale"]
    assert [row.cells["job"] for row in summaries[1].rows] == [2, 1, 0]
    assert summaries[1].rows[2].cells["dataset.crop_scale"] == [0.5, 1.0]


def test_the_record_holds_what_the_yaml_holds_and_is_read_instead(sweeps) -> None:
    _, recorded = sweeps
    job_dir = recorded / "0"
    from_yaml = read_hydra_yaml(job_dir)
    assert from_yaml.job == 0 and from_yaml.overrides["dataset.root"] == "/data/a,b=c"
    assert from_yaml.config["T_max"] == "${epochs}"  # interpolations as written
    assert read_config_record(job_dir) == from_yaml
    config_yaml = job_dir / ".hydra" / "config.yaml"
    written = os.stat(job_dir / ".hydra" / CONFIG_RECORD).st_mtime_ns
    original = config_yaml.read_text()
    try:
        config_yaml.write_text("{ not yaml")  # older than the record: never parsed
        os.utime(config_yaml, ns=(written - 10**9, written - 10**9))
        assert read_config_record(job_dir) == from_yaml
    finally:
        config_yaml.write_text(original)


def test_the_yaml_wins_where_it_is_newer_or_the_record_is_missing_or_damaged(tmp_path) -> None:
    job_dir = tmp_path / "job"
    write_job(job_dir, JOBS[0], 0, 70.0)
    write_config_record(job_dir)
    config_yaml, record = job_dir / ".hydra" / "config.yaml", job_dir / ".hydra" / CONFIG_RECORD
    cfg = OmegaConf.load(config_yaml)
    cfg.lr_init = 0.3  # a later command rewrote the YAML after the record
    OmegaConf.save(cfg, config_yaml)
    written = record.stat().st_mtime_ns
    os.utime(config_yaml, ns=(written + 10**9, written + 10**9))
    assert read_config_record(job_dir).config["lr_init"] == 0.3
    record.write_text("{ damaged")
    assert read_config_record(job_dir).config["lr_init"] == 0.3
    record.unlink()
    assert read_config_record(job_dir) == read_hydra_yaml(job_dir)


def test_no_record_without_yaml_or_for_values_json_cannot_hold(tmp_path, monkeypatch) -> None:
    write_config_record(tmp_path)  # no .hydra/: nothing to record
    assert not (tmp_path / ".hydra").exists()
    job_dir = tmp_path / "job"
    write_job(job_dir, JOBS[0], 0, 70.0)
    hydra_dir = job_dir / ".hydra"
    (hydra_dir / "overrides.yaml").write_text(json.dumps(["lr_init=nan"]))
    write_config_record(job_dir)  # NaN != NaN: JSON would not give the same record back
    assert not (hydra_dir / CONFIG_RECORD).exists()
