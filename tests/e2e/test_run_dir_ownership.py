"""A run dir belongs to the run in it: one command at a time, only ``resume=true`` trains there
again, and a command that is refused or fails before it saved a checkpoint leaves the run's
files as they were."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from fishbench.errors import DataError, FishbenchError
from fishbench.run.rundir import LOCK_FILE, claim_run_dir
from tests.helpers.stub_backend import StubTrainer, digest, strict_json

KEY_FILES = ["metrics.json", "history.csv", ".hydra/config.yaml", ".hydra/overrides.yaml",
             ".hydra/config.json"]


def key_files(run_dir: Path) -> dict[str, bytes]:
    return {name: (run_dir / name).read_bytes() for name in KEY_FILES}


def interrupted_run(hydra_run, run_dir: Path) -> None:
    StubTrainer.script = {"call_at": (2, 1), "call": lambda: os.kill(os.getpid(), signal.SIGTERM)}
    assert hydra_run(f"hydra.run.dir={run_dir}") == 128 + signal.SIGTERM
    StubTrainer.script = {}


def failed_run(hydra_run, run_dir: Path) -> None:
    StubTrainer.script = {"loss": {1: math.nan}}
    assert hydra_run(f"hydra.run.dir={run_dir}") == 2
    StubTrainer.script = {}


def completed_run(hydra_run, run_dir: Path) -> None:
    assert hydra_run(f"hydra.run.dir={run_dir}") == 0


@pytest.mark.parametrize("make_run", [interrupted_run, failed_run, completed_run],
                         ids=["interrupted", "failed", "completed"])
def test_a_dir_that_holds_a_run_refuses_all_but_resume(hydra_run, tmp_path: Path, make_run,
                                                      capsys: pytest.CaptureFixture) -> None:
    run_dir = tmp_path / "run"
    make_run(hydra_run, run_dir)
    status = strict_json(run_dir / "metrics.json")["status"]
    before = digest(run_dir)
    capsys.readouterr()
    for args in (["lr_init=0.1"], ["task=eval", f"ckpt_path={run_dir}"],
                 ["task=export", f"ckpt_path={run_dir}"], ["task=infer", "model_file=m.onnx"]):
        assert hydra_run(*args, f"hydra.run.dir={run_dir}") == 2, args
        err = capsys.readouterr().err
        assert f"hydra.run.dir '{run_dir}' holds a {status} run" in err
        assert ("resume=true" in err) == (status != "failed")  # a run with a checkpoint
        assert digest(run_dir) == before, args  # every file, .hydra/, run.log, events alike
    if status == "interrupted":
        assert hydra_run("resume=true", f"hydra.run.dir={run_dir}") == 0
        assert strict_json(run_dir / "metrics.json")["status"] == "completed"


def test_a_completed_run_survives_failed_resumes(hydra_run, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert hydra_run(f"hydra.run.dir={run_dir}") == 0
    (run_dir / "checkpoints" / ".last.pkl.abc123.tmp").write_bytes(b"half")  # a killed write
    before, events = key_files(run_dir), digest(run_dir / "tensorboard")
    for args in (["resume=true"],  # nothing left to train: not "completed" with NaNs
                 ["resume=true", "epochs=3", "model=resnet50"],  # another model's checkpoint
                 ["resume=true", "epochs=3", "batch_size=8"]):
        assert hydra_run(*args, f"hydra.run.dir={run_dir}") == 2, args
        assert key_files(run_dir) == before, args
        assert digest(run_dir / "tensorboard") == events, args
    assert hydra_run("resume=true", "epochs=3", f"hydra.run.dir={run_dir}") == 0
    m = strict_json(run_dir / "metrics.json")
    assert (m["status"], m["epochs"], m["steps"]) == ("completed", 3, 12)
    assert (m["best_top1"], m["best_epoch"]) == (50.0, 1)  # every epoch 5/10: the first is best
    assert "epochs=3" in (run_dir / ".hydra" / "overrides.yaml").read_text()


def test_a_resume_that_fails_before_its_checkpoint_leaves_no_events(hydra_run,
                                                                    tmp_path: Path) -> None:
    """The resumed epoch logs its steps, then fails: the run keeps its files and TensorBoard
    shows no phantom epoch."""
    run_dir = tmp_path / "run"
    assert hydra_run(f"hydra.run.dir={run_dir}") == 0
    before, events = key_files(run_dir), digest(run_dir / "tensorboard")

    def unreadable_image() -> None:
        raise DataError("Cannot read image 'x.png'")

    StubTrainer.script = {"call_at": (3, 2), "call": unreadable_image}
    assert hydra_run("resume=true", "epochs=3", f"hydra.run.dir={run_dir}") == 2
    assert key_files(run_dir) == before
    assert digest(run_dir / "tensorboard") == events


def test_nothing_to_resume_says_so(hydra_run, tmp_path: Path,
                                   capsys: pytest.CaptureFixture) -> None:
    run_dir = tmp_path / "run"
    hydra_run(f"hydra.run.dir={run_dir}")
    assert hydra_run("resume=true", f"hydra.run.dir={run_dir}") == 2
    out = capsys.readouterr().out
    assert "already trained 2 epoch(s) and epochs=2: nothing to resume" in out
    assert "still holds the completed run" in out


def test_a_dir_in_use_is_refused_at_once(hydra_run, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    run_dir = tmp_path / "run"
    interrupted_run(hydra_run, run_dir)
    before = digest(run_dir)
    other = claim_run_dir(run_dir, "train", True)  # another command resuming it
    try:
        capsys.readouterr()
        assert hydra_run("resume=true", f"hydra.run.dir={run_dir}") == 2
        err = capsys.readouterr().err
        assert f"hydra.run.dir '{run_dir}' is in use by another fishbench command" in err
        assert digest(run_dir) == before
    finally:
        other.release()
    assert hydra_run("resume=true", f"hydra.run.dir={run_dir}") == 0


def test_a_new_dir_is_locked_while_its_run_trains(hydra_run, tmp_path: Path) -> None:
    run_dir, seen = tmp_path / "run", []

    def second_command() -> None:
        with pytest.raises(FishbenchError, match="is in use by another fishbench command"):
            claim_run_dir(run_dir, "train", False)
        seen.append(True)

    StubTrainer.script = {"call_at": (1, 1), "call": second_command}
    assert hydra_run(f"hydra.run.dir={run_dir}") == 0
    assert seen == [True] and (run_dir / LOCK_FILE).is_file()
    claim_run_dir(run_dir, "train", True).release()  # released when the run ended


@pytest.fixture
def read_only_dir(tmp_path: Path):
    """A dir this process cannot write into: permissions for a user, a read-only mount for
    root (skipped where root may not mount)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "none", str(folder)],
                           capture_output=True)
    if mount.returncode != 0:
        pytest.skip(reason="root here cannot mount a read-only tmpfs")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_output_dir_is_refused_naming_it(read_only_dir: Path) -> None:
    run_dir = read_only_dir / "run"
    proc = subprocess.run([sys.executable, str(REPO / "run.py"), f"hydra.run.dir={run_dir}"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert f"hydra.run.dir '{run_dir}' cannot be written" in proc.stderr
    assert "Traceback" not in output and "Unable to configure handler" not in output
