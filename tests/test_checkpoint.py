"""The shared checkpoint policy: names, cadence, retention, atomic writes, path resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from fishbench.run.checkpoints import CheckpointPolicy, resolve_checkpoint
from fishbench.errors import CheckpointError


def test_last_best_and_every_n_epochs_keeping_the_newest(tmp_path: Path) -> None:
    policy = CheckpointPolicy(tmp_path, ".pt", save_every=2, keep_max=2)
    for epoch in range(1, 8):
        policy.save(epoch, final=epoch == 7, is_best=epoch in (1, 3),
                    write=lambda tmp, e=epoch: tmp.write_text(f"epoch {e}"))
    files = {p.name: p.read_text() for p in (tmp_path / "checkpoints").iterdir()}
    assert files == {"last.pt": "epoch 7", "best.pt": "epoch 3", "epoch_0006.pt": "epoch 6",
                     "epoch_0007.pt": "epoch 7"}


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    policy = CheckpointPolicy(tmp_path, ".pt", save_every=1, keep_max=5)
    policy.save(1, False, True, lambda tmp: tmp.write_text("good"))

    def crash(tmp: Path) -> None:
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        policy.save(2, False, True, crash)
    assert policy.last.read_text() == "good"
    assert sorted(p.name for p in policy.dir.iterdir()) == ["best.pt", "epoch_0001.pt", "last.pt"]


def test_resolve_accepts_a_file_a_run_dir_or_its_checkpoints_dir(tmp_path: Path) -> None:
    CheckpointPolicy(tmp_path, ".ckpt", 1, 1).save(1, True, True, lambda t: t.write_text("x"))
    last = tmp_path / "checkpoints" / "last.ckpt"
    for given in (last, tmp_path, tmp_path / "checkpoints"):
        assert resolve_checkpoint(given, (".pt", ".ckpt")) == last
    with pytest.raises(CheckpointError, match="does not exist or holds no checkpoint"):
        resolve_checkpoint(tmp_path / "nope", (".pt",))
