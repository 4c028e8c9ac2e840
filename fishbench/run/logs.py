"""What reaches the terminal: fishbench's own lines and every library's warnings; the libraries'
INFO chatter (onnx_ir's passes, alembic's migrations, ...) goes to the run's log file only."""

from __future__ import annotations

import logging

OWN_LOGGERS = ("fishbench", "hydra", "__main__")


class LibraryChatter(logging.Filter):
    """Drops other libraries' records below WARNING (for the console handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.name.split(".")[0] in OWN_LOGGERS
