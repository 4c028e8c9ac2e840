"""RunIf, the skip mark of tests that need something of the host: it skips exactly where a
requirement fails, says which and how to meet it, and refuses a requirement it does not know."""

from __future__ import annotations

import pytest

from tests.helpers import run_if
from tests.helpers.run_if import RunIf


def test_a_met_requirement_runs_and_an_unmet_one_skips_naming_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    here = {"mindspore": True, "cuda": False}
    for name, present in here.items():
        _, what, how = run_if.REQUIREMENTS[name]
        monkeypatch.setitem(run_if.REQUIREMENTS, name, (lambda p=present: p, what, how))
    assert RunIf(mindspore=True, cuda=False).args == (False,)
    mark = RunIf(mindspore=False, cuda=True)
    assert mark.args == (True,)
    assert mark.kwargs["reason"] == ("needs no mindspore (found one); "
                                     "needs a CUDA GPU (run on a GPU host)")


def test_an_unknown_requirement_is_refused() -> None:
    with pytest.raises(TypeError, match="RunIf has no requirement \\['tpu'\\]"):
        RunIf(tpu=True)
