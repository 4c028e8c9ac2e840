"""`fishbench compare`: a real PyTorch run beside hand-written runs of another backend and device,
a failed and an unfinished run, and a sweep dir."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import matplotlib.image
import pytest
import yaml

from conftest import fishbench_cli
from fishbench.cli import main

pytestmark = pytest.mark.slow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_run(path: Path, config: dict, metrics: dict, history: list[dict] = (),
              overrides: list[str] = (), job: int | None = None) -> Path:
    """A run dir as `python run.py` leaves it, written by hand."""
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (path / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(list(overrides)))
    mode = {"mode": "MULTIRUN", "job": {"num": job}} if job is not None else {"mode": "RUN"}
    (path / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": mode}))
    (path / "metrics.json").write_text(json.dumps(metrics))
    if history:
        with (path / "history.csv").open("w") as f:
            writer = csv.DictWriter(f, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)
    return path


def epoch(n: int, top1: float) -> dict:
    return {"epoch": n, "lr": 0.1, "train_loss": 2.0, "top1": top1, "top5": top1 + 20,
            "epoch_time_s": 3.0, "img_per_s": 100.0}


def finished(top1: float, ms_per_step: float, **info) -> dict:
    return {"model": "fishnet99", "backend": "pytorch", "device": "cpu", **info,
            "top1": top1, "top5": top1 + 20, "best_top1": top1, "best_epoch": 2,
            "ms_per_step": ms_per_step, "img_per_s": 16000 / ms_per_step, "total_time_s": 9.5,
            "status": "completed"}


@pytest.fixture
def runs(tiny_run: Path, tmp_path: Path) -> dict[str, Path]:
    """The real run, and beside it hand-written runs with the real run's config, changed."""
    config = yaml.safe_load((tiny_run / ".hydra" / "config.yaml").read_text())
    mindspore = {**config, "backend": {"name": "mindspore", "mode": None, "amp_level": "auto"},
                 "device": {"name": "gpu", "id": 0}}
    return {
        "pytorch_cpu": shutil.copytree(tiny_run, tmp_path / "pytorch_cpu",
                                       ignore=shutil.ignore_patterns("checkpoints")),
        "mindspore_gpu": write_run(tmp_path / "mindspore_gpu", mindspore,
                                   finished(95.5, 20.0, backend="mindspore", device="gpu"),
                                   [epoch(1, 90.0), epoch(2, 95.5)]),
        "failed": write_run(tmp_path / "failed", {**config, "lr_init": 5.0},
                            {"status": "failed", "error": "The loss became NaN at step 3."}),
        "running": write_run(tmp_path / "running", {**config, "lr_init": 0.1},
                             {"status": "running"}, [epoch(1, 40.0)]),
    }


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """A hand-written 2 x 2 sweep dir (with what a sweep also holds: summary files, hparams/)."""
    sweep_dir = tmp_path / "sweep"
    grid = [(0.1, 100, 70.0), (0.1, 150, 72.0), (0.2, 100, 75.0), (0.2, 150, 71.0)]
    for job, (lr, t_max, top1) in enumerate(grid):
        config = {"lr_init": lr, "T_max": t_max, "model": {"name": "fishnet99"}}
        write_run(sweep_dir / str(job), config, finished(top1, 100.0 + job),
                  [epoch(1, top1 - 10), epoch(2, top1)], [f"lr_init={lr}", f"T_max={t_max}"], job)
    (sweep_dir / "hparams" / "0").mkdir(parents=True)
    (sweep_dir / "summary.csv").write_text("job\n")
    return sweep_dir


def compare(args: list, capsys: pytest.CaptureFixture) -> tuple[int, list, list[str], str]:
    """Run `fishbench compare ARGS`; return its exit code, table (cells of each line), the notes
    under it (after a blank line) and stderr."""
    code = main(["compare", *map(str, args)])
    out, err = capsys.readouterr()
    table, _, notes = out.partition("\n\n")
    return code, [line.split() for line in table.splitlines()], notes.splitlines(), err


def column(table: list[list[str]], name: str) -> list[str]:
    i = table[0].index(name)
    return [line[i] for line in table[1:]]


def test_runs_of_both_backends_side_by_side_with_failed_and_running(runs, capsys) -> None:
    code, table, notes, _ = compare(list(runs.values()), capsys)
    assert code == 0
    header = table[0]
    assert header[0] == "run" and header[-8:] == ["top1", "top5", "best_top1", "best_epoch",
                                                  "ms_per_step", "img_per_s", "total_time_s",
                                                  "status"]
    # Only the config keys that differ, whichever backend added them.
    assert {"backend.name", "device.name", "backend.channels_last", "backend.amp_level",
            "lr_init"} <= set(header) and "model.name" not in header
    assert column(table, "run") == ["mindspore_gpu", "pytorch_cpu", "failed", "running"]
    assert column(table, "backend.name") == ["mindspore", "pytorch", "pytorch", "pytorch"]
    assert column(table, "device.name") == ["gpu", "cpu", "cpu", "cpu"]
    assert column(table, "status") == ["completed", "completed", "failed", "running"]
    real_top1 = json.loads((runs["pytorch_cpu"] / "metrics.json").read_text())["top1"]
    assert column(table, "top1") == ["95.50", f"{real_top1:.2f}", "-", "-"]
    assert notes == ["run failed failed: The loss became NaN at step 3."]


def test_a_sweep_dir_and_a_run_dir_together(runs, sweep, capsys) -> None:
    code, table, _, _ = compare([sweep], capsys)
    assert code == 0
    assert table[0][:3] == ["run", "lr_init", "T_max"]  # the only keys that differ
    assert column(table, "run") == ["2", "1", "3", "0"]  # top1 75, 72, 71, 70
    assert column(table, "top1") == ["75.00", "72.00", "71.00", "70.00"]

    code, table, _, _ = compare([sweep, runs["mindspore_gpu"]], capsys)
    assert column(table, "run") == ["mindspore_gpu", "sweep/2", "sweep/1", "sweep/3", "sweep/0"]


def test_filter_and_sort(runs, sweep, capsys) -> None:
    _, table, _, _ = compare([sweep, "--filter", "lr_init=0.2"], capsys)
    assert column(table, "run") == ["2", "3"]
    _, table, _, _ = compare([sweep, "--filter", "lr_init=0.2", "--filter", "T_max=150"], capsys)
    assert column(table, "run") == ["3"]
    _, table, _, _ = compare([sweep, "--filter", "T_max=100", "--filter", "T_max=150",
                           "--sort", "ms_per_step"], capsys)  # one key twice: either value
    assert column(table, "run") == ["0", "1", "2", "3"]
    _, table, _, _ = compare([sweep, "--sort", "lr_init", "--reverse"], capsys)
    assert column(table, "lr_init") == ["0.2", "0.2", "0.1", "0.1"]
    _, table, _, _ = compare([*runs.values(), "--filter", "backend.name=pytorch"], capsys)
    assert column(table, "run") == ["pytorch_cpu", "failed", "running"]
    _, table, _, _ = compare([*runs.values(), "--filter", "status=completed",
                           "--sort", "img_per_s", "--reverse"], capsys)
    assert column(table, "run") == ["pytorch_cpu", "mindspore_gpu"]  # slowest first

    code, table, _, err = compare([sweep, "--filter", "lr=0.1"], capsys)
    assert code == 2 and table == []
    assert "--filter key 'lr' is not a config key" in err and "lr_init, T_max" in err


def test_csv_markdown_and_png_outputs(runs, sweep, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    code, _, _, _ = compare([sweep, "--csv", out / "t.csv", "--md", out / "t.md", "--png",
                          out / "grid.png"], capsys)
    assert code == 0
    with (out / "t.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["run"], float(r["lr_init"]), int(r["T_max"]), float(r["top1"])) for r in rows] == [
        ("2", 0.2, 100, 75.0), ("1", 0.1, 150, 72.0), ("3", 0.2, 150, 71.0), ("0", 0.1, 100, 70.0)]
    assert float(rows[0]["img_per_s"]) == pytest.approx(16000 / 102.0)  # full precision
    md = (out / "t.md").read_text().splitlines()
    assert md[0] == ("| run | lr_init | T_max | top1 | top5 | best_top1 | best_epoch | ms_per_step "
                     "| img_per_s | total_time_s | status |")
    assert md[2] == ("| 2 | 0.2 | 100 | 75.00 | 95.00 | 75.00 | 2 | 102.00 | 156.86 | 9.50 "
                     "| completed |")

    compare([*runs.values(), "--csv", out / "runs.csv", "--md", out / "runs.md", "--png",
             out / "runs.png"], capsys)
    with (out / "runs.csv").open() as f:
        rows = {r["run"]: r for r in csv.DictReader(f)}
    assert (rows["failed"]["status"], rows["failed"]["top1"]) == ("failed", "")
    assert rows["failed"]["error"] == "The loss became NaN at step 3."
    assert rows["running"]["status"] == "running"
    assert "- run failed failed: The loss became NaN at step 3." in (out / "runs.md").read_text()

    widths = {}
    for name in ("grid.png", "runs.png"):
        assert (out / name).read_bytes()[:8] == PNG_SIGNATURE
        widths[name] = matplotlib.image.imread(out / name).shape[1]
    assert widths == {"grid.png": 1300, "runs.png": 700}  # a heat map only for two keys


def test_a_path_that_holds_no_run_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    messages = {}
    for name in ("missing", "empty"):
        path = tmp_path / name
        proc = fishbench_cli(["compare", str(path)])
        assert proc.returncode == 2 and proc.stdout == ""
        messages[name] = proc.stderr.strip()
        assert messages[name].startswith(f"fishbench compare: error: '{path}' is neither a run dir")
        assert "\n" not in messages[name]  # one paragraph, no traceback
    assert "it does not exist" in messages["missing"]
    assert "it does not exist" not in messages["empty"]
