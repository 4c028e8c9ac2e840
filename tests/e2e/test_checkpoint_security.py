"""A checkpoint never runs code: a ``.pt`` file whose unpickling would run a shell command is
refused with a clear message, by the reader and by every command that loads a checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from conftest import metrics_of, run_cli
from fishbench.backends.pytorch.checkpoint import read_checkpoint, read_weights
from fishbench.errors import CheckpointError
from tests.helpers.run_if import RunIf

REFUSAL = "fishbench never runs code from a checkpoint"
SMALL_RUN = ["dataset=synthetic", "dataset.num_classes=4", "dataset.image_size=32",
             "dataset.resize_size=32", "dataset.train_samples=8", "dataset.val_samples=4",
             "batch_size=4", "model=resnet50"]


class ShellCommand:
    """Unpickling it runs ``touch <marker>``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def malicious_checkpoint(path: Path, marker: Path) -> Path:
    """A file shaped like a fishbench checkpoint, with the payload beside the weights."""
    torch.save({"meta": {"model": "resnet50", "num_classes": 4, "epoch": 1},
                "state_dict": {"fc.weight": torch.zeros(4, 2048)},
                "optimizer": ShellCommand(marker)}, path)
    return path


def test_the_payload_runs_when_loaded_the_unsafe_way(tmp_path: Path) -> None:
    """The control: the crafted file does run its command when unpickled as before."""
    marker = tmp_path / "marker"
    torch.load(malicious_checkpoint(tmp_path / "evil.pt", marker), weights_only=False)
    assert marker.exists()


def test_the_reader_refuses_it_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    evil = malicious_checkpoint(tmp_path / "evil.pt", marker)
    for read in (read_checkpoint, lambda path: read_weights(path, "resnet50")):
        with pytest.raises(CheckpointError) as refused:
            read(evil)
        message = str(refused.value)
        assert f"'{evil}' is not a fishbench PyTorch checkpoint" in message
        assert f"other than tensors and plain values: {os.system.__module__}.system" in message
        assert REFUSAL in message and "\n" not in message
    assert not marker.exists()


def refused_by_run(tmp_path: Path, marker: Path, *args: str) -> str:
    """Run ``run.py`` with ``args``; assert the refusal (exit 2, no traceback, no marker) and
    return what the run recorded as its error."""
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL_RUN, *args, f"hydra.run.dir={run_dir}"], check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in output, output
    assert REFUSAL in output
    assert not marker.exists()
    m = metrics_of(run_dir)
    assert m["status"] == "failed"
    return m["error"]


def test_eval_refuses_it(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    evil = malicious_checkpoint(tmp_path / "evil.pt", marker)
    error = refused_by_run(tmp_path, marker, "task=eval", f"ckpt_path={evil}")
    assert f"'{evil}' is not a fishbench PyTorch checkpoint" in error and REFUSAL in error


def test_resume_refuses_it_as_the_runs_last_checkpoint(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    last.parent.mkdir(parents=True)
    malicious_checkpoint(last, marker)
    error = refused_by_run(tmp_path, marker, "resume=true")
    assert f"'{last}' is not a fishbench PyTorch checkpoint" in error


@RunIf(mindspore=True)
def test_mindspore_refuses_it(tmp_path: Path) -> None:
    """MindSpore reads a .pt file's weights through the PyTorch backend's reader."""
    marker = tmp_path / "marker"
    evil = malicious_checkpoint(tmp_path / "evil.pt", marker)
    refused_by_run(tmp_path, marker, "backend=mindspore", "backend.mode=pynative", "task=eval",
                   f"ckpt_path={evil}")
