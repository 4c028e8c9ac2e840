"""The processes running on this host, found by their command line."""

from __future__ import annotations

from pathlib import Path


def processes_running(code: str) -> list[int]:
    """The pids of the processes running ``python -c code``."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if code.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:  # ended meanwhile
            continue
    return pids
