"""Logging for one command: ``-v/--verbose`` to stderr, ``--log-file PATH`` as JSON lines.

The log file keeps everything a CI run needs afterwards: the command line, every debug
record of every floor, every line the consoles printed and the exit code, one JSON object
per line (``time``, ``level``, ``logger``, ``message``, and ``exc`` when there was one).
Every message passes the one redaction rule first, as everything else the tool writes.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from upgrade.model.redact import redact

CONSOLE_LOGGER = "upgrade.console"  # what the consoles printed (only to the log file)


class JsonLines(logging.Formatter):
    """One JSON object per record, redacted."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            doc["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(doc, ensure_ascii=False)


class _Plain(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(*, verbose: bool, log_file: str | None, argv: list[str]) -> None:
    """Send debug records to stderr (``verbose``) and/or to ``log_file`` (appended)."""
    if not verbose and not log_file:
        return
    root = logging.getLogger("upgrade")
    root.setLevel(logging.DEBUG)
    # Warnings reach stderr as before (Python's last resort did it while nothing was set
    # up); debug records too with --verbose. The consoles' lines are already on screen.
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    handler.setFormatter(_Plain("%(levelname)s: %(name)s: %(message)s" if verbose
                                else "%(message)s"))
    handler.addFilter(lambda record: not record.name.startswith(CONSOLE_LOGGER))
    root.addHandler(handler)
    if log_file:
        path = Path(log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(JsonLines())
        root.addHandler(handler)
    logging.getLogger("upgrade.cli").info("command: %s", " ".join(argv))
