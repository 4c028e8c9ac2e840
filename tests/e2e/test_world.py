"""Data-parallel runs on the CPU: PyTorch DDP over gloo through torch's elastic agent (more ranks
than cores), MindSpore through msrun; a multirun of them, a dead worker, an unreachable master."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, SMALL_TRAIN_PER_CLASS, TINY, metrics_of, run_cli
from tests.helpers.run_if import RunIf

pytestmark = pytest.mark.slow
SMALL_TRAIN = 10 * SMALL_TRAIN_PER_CLASS


@pytest.fixture(scope="module")
def world_8_run(tmp_path_factory: pytest.TempPathFactory, digits_small_train: Path,
                default_run: Path) -> Path:
    """Eight gloo ranks on the CPU over a whole epoch of the small digits tree, 16 images per
    rank and step, from the default job's weights: a model whose predictions vary, so that a
    wrong shard or reduction shows in top1/top5."""
    run_dir = tmp_path_factory.mktemp("world8") / "run"
    run_cli(["world=8", "epochs=1", "batch_size=16", "warmup_epochs=0", "lr_init=1e-5",
             f"ckpt_path={default_run}/checkpoints/best.pt", f"dataset.root={digits_small_train}",
             f"hydra.run.dir={run_dir}"])
    return run_dir


def test_world_8_shards_the_data_and_rank_0_alone_writes_one_run_dir(world_8_run: Path) -> None:
    m = metrics_of(world_8_run)
    assert (m["status"], m["world_size"], m["epochs"]) == ("completed", 8, 1)
    assert m["steps"] == (SMALL_TRAIN // 8) // 16  # each rank takes an eighth of the epoch
    assert m["img_per_s"] == pytest.approx(8 * m["img_per_s_per_device"])
    assert sorted(p.name for p in world_8_run.parent.iterdir()) == ["run"]  # no extra Hydra dirs
    logs = sorted(p.name for p in world_8_run.glob("rank*.log"))
    assert logs == [f"rank{rank}.log" for rank in range(8)]
    for rank in range(8):
        assert f"[rank {rank}]" in (world_8_run / f"rank{rank}.log").read_text()
    assert [p.name for p in (world_8_run / "checkpoints").glob("last.*")] == ["last.pt"]


def test_world_8_metrics_equal_a_single_process_eval(world_8_run: Path, digits_small_train: Path,
                                                     tmp_path: Path) -> None:
    """The ranks' top1/top5, reduced, are a single process's over the same 360 images."""
    run_cli(["task=eval", f"ckpt_path={world_8_run}", f"dataset.root={digits_small_train}",
             f"hydra.run.dir={tmp_path}"])
    single, ddp = metrics_of(tmp_path), metrics_of(world_8_run)
    assert 50 < ddp["top1"] < 100  # neither one class for all (10) nor every image right
    assert (single["top1"], single["top5"]) == pytest.approx((ddp["top1"], ddp["top5"]))


def test_multirun_gives_each_job_its_own_workers(tmp_path: Path, digits_small_val: Path) -> None:
    run_cli(["-m", "world=2", "seed=1,2", *TINY, "max_steps_per_epoch=2",
             f"dataset.root={digits_small_val}", f"hydra.sweep.dir={tmp_path}"])
    for job in ("0", "1"):
        m = metrics_of(tmp_path / job)
        assert (m["status"], m["world_size"], m["steps"]) == ("completed", 2, 2)
        assert (tmp_path / job / "rank1.log").is_file()


def test_a_dead_worker_fails_the_run_and_resume_continues(tmp_path: Path,
                                                          digits_small_val: Path) -> None:
    run_dir = tmp_path / "run"
    args = ["world=2", "epochs=2", "batch_size=16", "max_steps_per_epoch=3", "warmup_epochs=0",
            "dataset.num_workers=0", f"dataset.root={digits_small_val}",
            f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen([sys.executable, str(REPO / "run.py"), *args, "log_every_n_steps=1"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while not (run_dir / "history.csv").exists() and time.time() < deadline:
        time.sleep(0.5)
    out = subprocess.run(["pgrep", "-f", f"fishbench.run.worker {run_dir}"], capture_output=True,
                         text=True).stdout.split()
    assert len(out) == 2, out
    os.kill(int(max(out, key=int)), signal.SIGKILL)  # the younger worker: rank 1
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 2, output
    m = metrics_of(run_dir)
    assert m["status"] == "failed" and "Worker rank" in m["error"] and "resume=true" in m["error"]
    run_cli([*args, "resume=true"])
    m = metrics_of(run_dir)
    assert (m["status"], m["epochs"], m["steps"]) == ("completed", 2, 6)


def test_unreachable_master_times_out_naming_address_and_port(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_cli(["world.nnodes=2", "world.node_rank=1", "world.master_addr=127.0.0.1",
                    f"world.master_port={port}", "world.timeout_s=3",
                    f"hydra.run.dir={tmp_path}"], check=False, timeout=120)
    assert proc.returncode == 2
    assert f"127.0.0.1:{port}" in proc.stdout + proc.stderr
    assert "world.timeout_s=3" in metrics_of(tmp_path)["error"]


@RunIf(mindspore=True)
def test_mindspore_world_2_through_msrun(tmp_path: Path, digits_small_train: Path,
                                         default_run: Path) -> None:
    """Data-parallel MindSpore on the CPU: msrun starts 2 workers, 2 steps each, and
    the reduced metrics equal a single-process evaluation of the saved checkpoint (a model of
    varied predictions: the default job's weights)."""
    run_dir = tmp_path / "run"
    run_cli(["backend=mindspore", "world=2", "epochs=1", "batch_size=16", "warmup_epochs=0",
             "max_steps_per_epoch=2", "lr_init=1e-5", f"ckpt_path={default_run}/checkpoints/best.pt",
             f"dataset.root={digits_small_train}", f"hydra.run.dir={run_dir}"])
    m = metrics_of(run_dir)
    assert (m["status"], m["world_size"], m["steps"]) == ("completed", 2, 2)
    assert (run_dir / "rank1.log").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    run_cli(["backend=mindspore", "task=eval", f"ckpt_path={run_dir}",
             f"dataset.root={digits_small_train}", f"hydra.run.dir={tmp_path / 'eval'}"])
    single = metrics_of(tmp_path / "eval")
    assert 50 < m["top1"] < 100  # neither one class for all (10) nor every image right
    assert (single["top1"], single["top5"]) == pytest.approx((m["top1"], m["top5"]))
