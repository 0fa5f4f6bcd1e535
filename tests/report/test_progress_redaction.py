"""Live progress prints what commands and APIs said: through the one redaction rule, like
every other path that prints."""

from __future__ import annotations

import io

from rich.console import Console

from upgrade.report.progress import LiveReporter, LogReporter

SECRET = "eyJhbGciOi.s3cr3t-payload.sig"
SAID = f"astro deploy failed: Authorization: Bearer {SECRET} was refused"
URL = "pushing to https://ci:hunter2-password@git.example.com/repo.git failed"


def _console(out: io.StringIO, *, terminal: bool) -> Console:
    return Console(file=out, force_terminal=terminal, width=200, color_system=None)


def test_the_log_reporter_redacts_failures_and_notes() -> None:
    out = io.StringIO()
    reporter = LogReporter(_console(out, terminal=False))
    reporter.wave_started(1, "13.9.0", 1, [1])
    reporter.item_finished("sales-etl-dev", "failed", SAID)
    reporter.note(URL)
    text = out.getvalue()
    assert SECRET not in text and "hunter2-password" not in text
    assert "Bearer ***" in text and "ci:***@" in text


def test_the_live_reporter_redacts_failures_and_notes() -> None:
    out = io.StringIO()
    reporter = LiveReporter(_console(out, terminal=True))
    reporter.wave_started(1, "13.9.0", 1, [1])
    try:
        reporter.item_finished("sales-etl-dev", "failed", SAID)
        reporter.note(URL)
    finally:
        reporter.wave_finished()
    text = out.getvalue()
    assert SECRET not in text and "hunter2-password" not in text
    assert "Bearer ***" in text and "ci:***@" in text
