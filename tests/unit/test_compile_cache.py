"""torch.compile's cache folder: a multirun's jobs share one in the sweep dir, a configured one
wins, and a fresh process finds there what another one compiled (and says so)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import REPO, tiny_trainer
from fishbench.config import register_resolvers

register_resolvers()

# A fresh process compiles a matrix product (no C++ kernel to build: seconds on the CPU) with
# its cache in argv[1] and prints the folder and how many graphs it loaded and compiled.
COMPILE_ONCE = """
import json, sys
import torch
from fishbench.backends.pytorch.compile_cache import GraphCacheCounts, use_compile_cache
folder = use_compile_cache(sys.argv[1])
before = GraphCacheCounts.now()
torch.compile(lambda a, b: a @ b)(torch.ones(2, 3), torch.ones(3, 2))
used = GraphCacheCounts.now() - before
print(json.dumps({"folder": folder, "hits": used.hits, "misses": used.misses}))
"""


@pytest.mark.parametrize("sweep_dir", [None, "outputs/sweeps/s1"])
def test_the_default_folder_is_the_sweep_dirs_in_a_multirun_and_torchs_elsewhere(
        monkeypatch: pytest.MonkeyPatch, sweep_dir: str | None) -> None:
    from fishbench.run import launch

    monkeypatch.setattr(launch, "current_sweep_dir",
                        lambda: None if sweep_dir is None else Path(sweep_dir))
    section = OmegaConf.load(REPO / "conf" / "backend" / "pytorch.yaml")
    want = None if sweep_dir is None else str(Path.cwd() / sweep_dir / "compile_cache")
    assert section.compile_cache == want


def test_a_compiled_trainer_sends_the_cache_to_the_configured_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from fishbench.backends.pytorch import trainer as trainer_module

    for name in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)  # restored after the test
    monkeypatch.setattr(trainer_module, "build_model", lambda name, classes: torch.nn.Linear(
        2, classes))  # never run: only the folder is under test
    trainer = tiny_trainer(trainer_module.TorchTrainer, backend={
        "name": "pytorch", "compile": True, "compile_cache": str(tmp_path / "cc")})
    assert trainer.settings()["compile_cache"] == str(tmp_path / "cc")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "cc")
    assert os.environ["TRITON_CACHE_DIR"] == str(tmp_path / "cc" / "triton")


def test_a_second_process_loads_what_the_first_compiled_into_the_shared_folder(
        tmp_path: Path) -> None:
    def compile_once() -> dict:
        out = subprocess.run([sys.executable, "-c", COMPILE_ONCE, str(tmp_path / "cc")],
                             cwd=REPO, capture_output=True, text=True, timeout=300, check=True)
        return json.loads(out.stdout.splitlines()[-1])

    first, second = compile_once(), compile_once()
    assert first == {"folder": str(tmp_path / "cc"), "hits": 0, "misses": 1}
    assert any((tmp_path / "cc" / "fxgraph").rglob("*"))
    assert second == {"folder": str(tmp_path / "cc"), "hits": 1, "misses": 0}
