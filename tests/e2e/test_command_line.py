"""What a new user meets first: fishbench's own help pages, and the hint for values Hydra reads
only quoted."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli


def test_run_help_teaches_groups_tasks_examples_and_outputs() -> None:
    out = run_cli(["--help"]).stdout
    for text in ("model: fishnet99, resnet50", "backend: mindspore, pytorch", "task=train",
                 "resume=true", "python run.py -m model=fishnet99 lr_init=0.025,0.05,0.1",
                 "fishbench compare", "fishbench resume", "outputs/runs/<date>/"):
        assert text in out, text
    assert "powered by Hydra" not in out


@pytest.mark.parametrize("argv,expected", [
    (["--help"], ["compare", "resume", "examples:", "fishbench compare outputs/sweeps/"]),
    (["compare", "--help"], ["--sort KEY", "--filter KEY=VALUE", "--png FILE"]),
    (["resume", "--help"], ["SWEEP_DIR", "--retry-failed", "Exit status"]),
])
def test_fishbench_help_pages(argv: list[str], expected: list[str],
                              capsys: pytest.CaptureFixture[str]) -> None:
    from fishbench.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    out = " ".join(capsys.readouterr().out.split())
    assert exit_.value.code == 0
    for text in expected:
        assert text in out, text


@pytest.mark.parametrize("value", ["/data/a,b", "/data/a=b", "/données/train"])
def test_an_unquoted_path_gets_the_quoting_hint_and_the_quoted_one_works(
        value: str, tmp_path: Path) -> None:
    bad = run_cli(["dataset=imagefolder", f"dataset.root={value}", "--cfg", "job"], check=False)
    assert bad.returncode == 1
    assert f"""'dataset.root="{value}"'""" in bad.stderr
    good = run_cli(["dataset=imagefolder", f'dataset.root="{value}"', "--cfg", "job"])
    assert f"root: {value}" in good.stdout


def test_no_hint_for_a_sweep_list_or_a_plain_error() -> None:
    from fishbench.config.resolvers import quoting_hint

    assert quoting_hint(["-m", "lr_init=0.1,0.2"]) is None
    assert quoting_hint(["lr_init=abc"]) is None
    assert quoting_hint(["dataset.root=/a,b"]) is not None
