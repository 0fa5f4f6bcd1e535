"""Where the tool writes for people: two consoles that print text as text.

Messages carry file paths, ``file:line`` locations, globs and names; none of it is markup.
Both consoles therefore render strings plainly (no ``[bold]`` markup, no ``:emoji:``
codes: ``inventory.yaml:100:`` once printed as an emoji), and colour comes only from
``rich.text.Text`` styles set by the report code. Every message passes the one redaction
rule before it is written.
"""

from __future__ import annotations

import logging
import os
import sys

from rich.console import Console
from rich.text import Text

from upgrade.model.redact import redact

# Piped output (CI logs, runbooks) gets a wide fixed width instead of rich's 80 columns,
# so tables do not fold every reason into a column of single words.
_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160


def _console(*, stderr: bool) -> Console:
    return Console(stderr=stderr, highlight=False, markup=False, emoji=False, soft_wrap=True,
                   width=_WIDTH)


stdout = _console(stderr=False)
stderr = _console(stderr=True)
# Every line printed here also goes to the log (kept only by --log-file: upgrade.cli.logs).
_log = logging.getLogger("upgrade.console")
_log.addHandler(logging.NullHandler())  # never Python's last-resort stderr handler: printed


def say(message: str, style: str = "") -> None:
    """One line for the reader, on stdout."""
    _log.info(message)
    stdout.print(Text(redact(message), style=style))


def warn(message: str) -> None:
    """A warning, on stderr."""
    _log.warning(message)
    stderr.print(Text(f"warning: {redact(message)}", style="yellow"))


def error(message: str) -> None:
    """The one error line (or block) of a failed command, on stderr."""
    _log.error(message)
    line = Text("error:", style="bold red")
    line.append(f" {redact(message)}")
    stderr.print(line)


def note(message: str) -> None:
    """Something to know, on stderr (so stdout stays the result)."""
    _log.info(message)
    stderr.print(Text(redact(message)))
