"""A process's share of the node's cores: every core alone, half of them for each of two jobs
at once, a number as given."""

from __future__ import annotations

from fishbench.run.cores import cpu_threads, usable_cores


def test_a_process_alone_gets_every_core_and_a_number_wins() -> None:
    assert cpu_threads("auto", 1) == usable_cores()  # no multirun here: one job at a time
    assert cpu_threads("auto", 2) == max(usable_cores() // 2, 1)
    assert cpu_threads(3, 1) == 3
