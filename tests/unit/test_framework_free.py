"""The hall never imports a framework: every shared module, and each backend's contract module,
imports with torch and mindspore made unimportable."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import fishbench
from conftest import REPO

FRAMEWORKS = ("torch", "torchvision", "mindspore", "triton")
# A backend's framework code: everything under backends/<name>/ but its contract module.
FRAMEWORK_FREE_IN_BACKENDS = {"backend", "__init__"}


def shared_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(fishbench.__path__, "fishbench."):
        parts = info.name.split(".")
        if parts[1] == "backends" and len(parts) > 3 and parts[3] not in FRAMEWORK_FREE_IN_BACKENDS:
            continue
        names.append(info.name)
    return names


BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {frameworks!r}:
            raise ImportError(f"{{name}} is blocked by the test")
sys.meta_path.insert(0, Block())
import importlib
for name in {modules!r}:
    importlib.import_module(name)
print("imported", len({modules!r}))
"""


def test_shared_modules_import_without_any_framework() -> None:
    modules = shared_modules()
    assert "fishbench.run.app" in modules and "fishbench.backends.pytorch.backend" in modules
    assert not any(m.startswith("fishbench.backends.pytorch.input") for m in modules)
    code = BLOCKER.format(frameworks=set(FRAMEWORKS), modules=modules)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"imported {len(modules)}" in proc.stdout


def test_the_blocker_does_block() -> None:
    code = BLOCKER.format(frameworks=set(FRAMEWORKS), modules=["fishbench.backends.pytorch.trainer"])
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0 and "blocked by the test" in proc.stderr
