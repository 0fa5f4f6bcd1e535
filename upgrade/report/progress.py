"""Live progress of a wave: a rich display on a terminal, timestamped lines elsewhere.

Both pass every message through the one redaction rule, as the consoles do: a failure's
message may quote what a command or an API said.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from upgrade.model.redact import redact

RESULT_STYLE = {"ok": "green", "failed": "bold red", "interrupted": "yellow"}


class LogReporter:
    """One plain line per event: for CI logs, pipes and `--json` runs (then on stderr).

    Plain writes, not rich: at hundreds of Deployments a minute, formatting every log line
    through rich was a tenth of the orchestrator's CPU.
    """

    def __init__(self, console: Console):
        self.stream = console.file
        self._lock = threading.Lock()
        self._done = 0
        self._total = 0

    def _line(self, text: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        with self._lock:
            self.stream.write(f"{stamp} {redact(text)}\n")
            self.stream.flush()

    def wave_started(self, wave: int, target: str, total: int, batches: list[int]) -> None:
        """A wave begins."""
        self._total = total
        self._line(f"wave {wave}: {total} Deployments to {target} in batches {batches or '[]'}")

    def batch_started(self, index: int, size: int) -> None:
        """A batch begins."""
        self._line(f"batch {index}: {size} Deployments")

    def step_started(self, deployment: str, step: str) -> None:
        """A Deployment starts a step."""
        self._line(f"  {deployment}: {step}")

    def item_finished(self, deployment: str, result: str, message: str) -> None:
        """A Deployment is done (or failed, or was interrupted)."""
        with self._lock:
            self._done += 1
            done = self._done
        self._line(f"  {deployment}: {result} ({done}/{self._total}) {message}")

    def note(self, message: str) -> None:
        """Something the operator must see now."""
        self._line(message)

    def wave_finished(self) -> None:
        """The wave's work is over."""


class LiveReporter:
    """On a terminal: a bar for the wave with ETA, one line per Deployment in flight."""

    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self._task = None
        self._flight: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._live = Live(
            self._render(), console=console, refresh_per_second=8, get_renderable=self._render
        )

    def _render(self) -> Group:
        table = Table.grid(padding=(0, 2))
        with self._lock:
            flight = sorted(self._flight.items())
        now = time.monotonic()
        for name, (step, since) in flight[:30]:
            table.add_row(name, Text(step, style="cyan"), f"{now - since:4.0f}s")
        if len(flight) > 30:
            table.add_row(f"… and {len(flight) - 30} more", "", "")
        return Group(self.progress, table)

    def wave_started(self, wave: int, target: str, total: int, batches: list[int]) -> None:
        """A wave begins."""
        self._task = self.progress.add_task(f"wave {wave} → {target}", total=total)
        self._live.start()

    def batch_started(self, index: int, size: int) -> None:
        """A batch begins."""
        self._live.console.print(f"batch {index}: {size} Deployments")

    def step_started(self, deployment: str, step: str) -> None:
        """A Deployment starts a step."""
        with self._lock:
            self._flight[deployment] = (step, time.monotonic())

    def item_finished(self, deployment: str, result: str, message: str) -> None:
        """A Deployment is done (or failed, or was interrupted)."""
        with self._lock:
            self._flight.pop(deployment, None)
        if self._task is not None:
            self.progress.advance(self._task)
        if result != "ok":
            self._live.console.print(
                Text(redact(f"{deployment}: {result}: {message}"),
                     style=RESULT_STYLE.get(result, ""))
            )

    def note(self, message: str) -> None:
        """Something the operator must see now."""
        self._live.console.print(Text(redact(message), style="bold yellow"))

    def wave_finished(self) -> None:
        """The wave's work is over: stop the live display."""
        self._live.stop()
