"""What a framework writes by itself goes into the run dir, never the current dir (the repo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers.run_if import RunIf


@RunIf(mindspore=True)
def test_a_mindspore_graph_that_fails_to_compile_dumps_into_the_run_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mindspore as ms

    from fishbench.backends.mindspore.backend import MindSporeBackend

    cwd, run_dir = tmp_path / "cwd", tmp_path / "run"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MS_OM_PATH", raising=False)  # put back as it was after the test
    MindSporeBackend().keep_dumps_in(run_dir)

    @ms.jit
    def broken(x):
        return x.no_such_method()

    with pytest.raises(AttributeError):
        broken(ms.Tensor(np.zeros(2, np.float32)))
    assert list(cwd.iterdir()) == []
    assert [p.name for p in run_dir.rglob("*.ir")] == ["analyze_fail.ir"]
