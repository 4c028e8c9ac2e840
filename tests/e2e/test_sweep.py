"""Real multiruns (`python run.py -m`) of tiny digits trainings (60 val images), and the summary
they end with."""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

import matplotlib.image
import pytest
import yaml
from tbparse import SummaryReader
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import api_pb2, metadata

from conftest import REPO, metrics_of, run_cli
from tests.helpers.run_if import RunIf

pytestmark = pytest.mark.slow

JOB = ["epochs=1", "warmup_epochs=0", "max_steps_per_epoch=2", "batch_size=16"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_py(args: list[str], cwd: Path = REPO, status: int = 0) -> subprocess.CompletedProcess:
    """`python run.py ARGS`, for real, exiting with ``status`` (a sweep exits 1 when a job did
    not complete)."""
    proc = run_cli(args, cwd=cwd, check=False)
    assert proc.returncode == status, \
        f"run.py {' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def read_summary(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "summary.csv").open() as f:
        return list(csv.DictReader(f))


def hparams_plugin_data(log_dir: Path) -> dict[str, bytes]:
    """The hparams plugin's records in one directory's event files: tag -> content."""
    found = {}
    for events in log_dir.glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(events)).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME:
                    found[value.tag] = value.metadata.plugin_data.content
    return found


def png_width(path: Path) -> int:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    return matplotlib.image.imread(path).shape[1]


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory, digits_small_val: Path) -> Path:
    """A 2 x 2 grid over lr_init and T_max: four real trainings."""
    sweep_dir = tmp_path_factory.mktemp("grid") / "sweep"
    run_py(["-m", "lr_init=0.02,0.05", "T_max=1,2", *JOB, f"dataset.root={digits_small_val}",
            f"hydra.sweep.dir={sweep_dir}"])
    return sweep_dir


def test_grid_summary_has_one_row_per_job_with_its_overrides_and_metrics(grid: Path) -> None:
    rows = read_summary(grid)
    assert list(rows[0]) == ["job", "lr_init", "T_max", "top1", "top5", "best_top1", "best_epoch",
                             "ms_per_step", "img_per_s", "total_time_s", "status", "error"]
    # Hydra's basic sweeper numbers the grid's jobs with the last key varying fastest.
    expected = {"0": (0.02, 1), "1": (0.02, 2), "2": (0.05, 1), "3": (0.05, 2)}
    assert {r["job"]: (float(r["lr_init"]), int(r["T_max"])) for r in rows} == expected
    for row in rows:
        overrides = yaml.safe_load((grid / row["job"] / ".hydra" / "overrides.yaml").read_text())
        assert f"lr_init={row['lr_init']}" in overrides and f"T_max={row['T_max']}" in overrides
        metrics = metrics_of(grid / row["job"])
        assert row["status"] == metrics["status"] == "completed"
        assert float(row["top1"]) == pytest.approx(metrics["top1"])
        assert 0.0 <= float(row["top1"]) <= float(row["top5"]) <= 100.0
        assert float(row["ms_per_step"]) > 0 and float(row["img_per_s"]) > 0
        assert int(row["best_epoch"]) == 1 and row["error"] == ""
    top1s = [float(r["top1"]) for r in rows]
    assert top1s == sorted(top1s, reverse=True)


def test_grid_summary_markdown_and_plot(grid: Path) -> None:
    lines = (grid / "summary.md").read_text().splitlines()
    assert lines[0].startswith("| job | lr_init | T_max | top1 |")
    body = [line for line in lines[2:] if line.startswith("|")]
    assert len(body) == 4
    for row in read_summary(grid):
        assert any(line.startswith(f"| {row['job']} | {row['lr_init']} | {row['T_max']} | "
                                   f"{float(row['top1']):.2f} |") for line in body)
    assert png_width(grid / "summary.png") == 1300  # the epoch plot and, for 2 keys, the heat map


@pytest.mark.filterwarnings("ignore:The inplace keyword")  # tbparse on pandas 3
def test_grid_hparams_records_for_tensorboard(grid: Path) -> None:
    log_dir = grid / "hparams"
    experiment = metadata.parse_experiment_plugin_data(
        hparams_plugin_data(log_dir)[metadata.EXPERIMENT_TAG])
    assert {h.name: list(h.domain_discrete) for h in experiment.hparam_infos} == {
        "lr_init": [0.02, 0.05], "T_max": [1.0, 2.0]}
    assert "top1" in {m.name.tag for m in experiment.metric_infos}
    reader = SummaryReader(str(log_dir), extra_columns={"dir_name"})
    hparams = {(r.dir_name, r.tag): r.value for r in reader.hparams.itertuples()}
    top1 = {r.dir_name: r.value for r in reader.scalars.itertuples() if r.tag == "top1"}
    for row in read_summary(grid):
        job = row["job"]
        assert hparams[job, "lr_init"] == pytest.approx(float(row["lr_init"]))
        assert hparams[job, "T_max"] == float(row["T_max"])
        assert top1[job] == pytest.approx(metrics_of(grid / job)["top1"], rel=1e-6)
        end = metadata.parse_session_end_info_plugin_data(
            hparams_plugin_data(log_dir / job)[metadata.SESSION_END_INFO_TAG])
        assert end.status == api_pb2.STATUS_SUCCESS


def test_a_failing_job_is_recorded_and_the_summary_still_appears(tmp_path: Path,
                                                                 digits_small_val: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    run_py(["-m", "lr_init=0.05,-1", *JOB, f"dataset.root={digits_small_val}",
            f"hydra.sweep.dir={sweep_dir}"], status=1)
    assert metrics_of(sweep_dir / "1")["status"] == "failed"
    done, failed = read_summary(sweep_dir)
    assert (done["job"], done["lr_init"], done["status"]) == ("0", "0.05", "completed")
    assert float(done["top1"]) == pytest.approx(metrics_of(sweep_dir / "0")["top1"])
    assert (failed["job"], failed["lr_init"], failed["status"], failed["top1"]) == \
        ("1", "-1", "failed", "")
    assert "lr_init" in failed["error"]
    assert "- job 1 failed: Config key 'lr_init'" in (sweep_dir / "summary.md").read_text()
    assert png_width(sweep_dir / "summary.png") == 700  # one key varies: no heat map
    end = metadata.parse_session_end_info_plugin_data(
        hparams_plugin_data(sweep_dir / "hparams" / "1")[metadata.SESSION_END_INFO_TAG])
    assert end.status == api_pb2.STATUS_FAILURE


def only_sweep_dir(cwd: Path) -> Path:
    sweep_dirs = list((cwd / "outputs" / "sweeps").glob("*/*"))
    assert len(sweep_dirs) == 1, sweep_dirs
    return sweep_dirs[0]


# lr_init < 0 fails every job at once (a config error): the sweep machinery, without training.
def test_named_sweep_from_another_cwd_lands_in_its_own_dated_dir(tmp_path: Path) -> None:
    run_py(["-m", "+sweep=fishnet99_lr_tmax", "lr_init=-1,-2"], cwd=tmp_path, status=1)
    sweep_dir = only_sweep_dir(tmp_path)
    assert re.fullmatch(r"\d\d-\d\d-\d\d_fishnet99_lr_tmax_[0-9a-f]{4}", sweep_dir.name)
    rows = read_summary(sweep_dir)
    assert sorted((r["lr_init"], r["T_max"]) for r in rows) == [
        ("-1", "100"), ("-1", "150"), ("-2", "100"), ("-2", "150")]
    assert {r["status"] for r in rows} == {"failed"}


def test_a_sweep_over_models_keeps_all_its_jobs_in_one_dir(tmp_path: Path) -> None:
    # `name` (in the dir's name) follows the model: each job would otherwise pick its own dir.
    run_py(["-m", "model=fishnet99,resnet50", "lr_init=-1"], cwd=tmp_path, status=1)
    sweep_dir = only_sweep_dir(tmp_path)
    assert sweep_dir.name.split("_")[1] == "fishnet99"
    assert {(r["job"], r["model"]) for r in read_summary(sweep_dir)} == {
        ("0", "fishnet99"), ("1", "resnet50")}


@pytest.mark.parametrize("name, expected", [
    ("fishnet99_lr_tmax", {"experiment": "fishnet99_1dev", "lr_init": "0.025,0.05,0.1",
                           "T_max": "100,150"}),
    ("backend_device", {"backend": "pytorch,mindspore", "device": "cpu,gpu"}),
    pytest.param("optuna_fishnet99", {
        "experiment": "fishnet99_1dev", "T_max": "choice(100, 150)",
        "lr_init": "tag(log, interval(0.01, 0.2))",
        "weight_decay": "tag(log, interval(1.0e-5, 1.0e-3))"}, marks=RunIf(optuna=True)),
])
def test_sweeps_are_selected_by_name(name: str, expected: dict, tmp_path: Path) -> None:
    proc = run_py([f"+sweep={name}", "--cfg", "hydra", "--package", "hydra.sweeper"], cwd=tmp_path)
    sweeper = yaml.safe_load(proc.stdout)  # "# @package hydra.sweeper", then the sweeper's node
    assert sweeper["params"] == expected
    if name.startswith("optuna"):
        assert sweeper["_target_"].endswith("OptunaSweeper") and sweeper["direction"] == "maximize"
