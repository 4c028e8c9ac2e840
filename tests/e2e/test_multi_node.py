"""One run over several processes that do not share a launcher: two node processes on one host
(torch's elastic agents meeting at the master), and a world of two Slurm tasks on the local
cluster; both give the numbers of world=2 on one node."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, metrics_of, run_cli
from tests.helpers.run_if import RunIf

pytestmark = pytest.mark.slow

RUN = ["epochs=1", "max_steps_per_epoch=2", "batch_size=16", "warmup_epochs=0",
       "device.cpu_threads=1"]
RESULTS = ("status", "world_size", "steps", "top1", "top5", "loss")


def results(run_dir: Path) -> tuple:
    m = metrics_of(run_dir)
    return tuple(m[key] for key in RESULTS)


@pytest.fixture(scope="module")
def one_node(tmp_path_factory: pytest.TempPathFactory, fishbench_cache: Path) -> Path:
    run_dir = tmp_path_factory.mktemp("one_node") / "run"
    run_cli(["world=2", *RUN, f"hydra.run.dir={run_dir}"])
    return run_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_on_one_host_meet_and_match_one_node(one_node: Path, tmp_path: Path) -> None:
    """The README's two-node command, node 0 and node 1 on 127.0.0.1, one shared run dir."""
    run_dir = tmp_path / "run"
    node = [sys.executable, str(REPO / "run.py"), *RUN, "world.nnodes=2",
            "world.master_addr=127.0.0.1", f"world.master_port={free_port()}",
            "world.timeout_s=120", f"hydra.run.dir={run_dir}"]
    second = subprocess.Popen([*node, "world.node_rank=1"], cwd=REPO, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env=os.environ.copy())
    first = subprocess.run([*node, "world.node_rank=0"], cwd=REPO, text=True,
                           capture_output=True, timeout=300, env=os.environ.copy())
    second_out, _ = second.communicate(timeout=120)
    assert (first.returncode, second.returncode) == (0, 0), first.stdout[-2000:] + second_out[-2000:]
    assert results(run_dir) == results(one_node)
    # node 1 keeps its own log, Hydra files and worker config beside the run's
    assert {"run.log", "run.node1.log", "rank0.log", "rank1.log", ".hydra",
            ".hydra.node1"} <= {p.name for p in run_dir.iterdir()}
    assert "world.node_rank=1" in (run_dir / ".hydra.node1" / "overrides.yaml").read_text()
    assert "world.node_rank=1" not in (run_dir / ".hydra" / "overrides.yaml").read_text()


@RunIf(slurm_cluster=True)
def test_world_2_as_two_slurm_tasks_takes_ranks_from_slurm(one_node: Path, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    run_cli(["-m", "hydra/launcher=slurm", "world=2", *RUN, f"hydra.sweep.dir={sweep_dir}"])
    assert results(sweep_dir / "0") == results(one_node)
    logs = sorted((sweep_dir / ".submitit").glob("*/*_log.out"))
    ranks = sorted(r for log in logs for r in (0, 1) if f"global_rank={r}(2)" in log.read_text())
    assert ranks == [0, 1]  # two Slurm tasks, SLURM_PROCID 0 and 1
    assert "launching" not in (sweep_dir / "0" / "run.log").read_text()  # no elastic agent
