"""The Markdown reports carry untrusted text (names, reasons, failure messages) as text: a
viewer that renders HTML in Markdown (CommonMark allows it, GitHub and GitLab sanitise)
shows a ``<script>`` or a ``javascript:`` link as the characters it is, as the HTML report
does. Each report is rendered with markdown-it-py (CommonMark, HTML on, GFM tables) and the
HTML it makes is read back.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from markdown_it import MarkdownIt

from upgrade.report.drift import drift_markdown
from upgrade.report.recap import wave_markdown
from upgrade.run.rollout.rollout import Outcome, WaveResult
from upgrade.run.verify.drift import DriftReport, DriftRow

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SCRIPT = "<script>alert(1)</script>"
LINK = "[open](javascript:alert(2))"
IMAGE = "![x](https://tracker.invalid/p.gif)"
HOSTILE = f"{SCRIPT} {LINK} {IMAGE} **loud** a|b `code` <img src=x onerror=alert(3)>"


def rendered(markdown: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


def assert_inert(html: str) -> None:
    assert not re.search(r"<(script|img|a|code)\b", html), html
    assert "<strong>loud" not in html  # (the report's own bold status stays bold)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text
    assert "[open](javascript:alert(2))" in html and "**loud**" in html


def test_a_wave_report_shows_untrusted_text_as_text() -> None:
    result = WaveResult(7, 1, "12.4.0", "halted", reason=f"1 Deployment(s) failed: {HOSTILE}",
                        notes=[f"warning: {HOSTILE}"],
                        runs=[{"actor": f"mallory{SCRIPT}", "at": "2026-12-01T09:00:00+00:00"}],
                        approval={"actor": "ann@ci", "at": "2026-12-01T08:00:00+00:00",
                                  "reason": HOSTILE},
                        skip_gate={"actor": "bob@ci", "at": "2026-12-01T08:30:00+00:00",
                                   "reason": f"hotfix\n# {HOSTILE}"},
                        outcomes=[Outcome(f"dep{SCRIPT}", f"repo{LINK}", "failed", "failed",
                                          f"deploy failed: {HOSTILE}\nsecond line | cell", 1,
                                          "12.1.0", "12.4.0")])
    text = wave_markdown(result, NOW)
    html = rendered(text)

    assert_inert(html)
    table = [line for line in text.splitlines() if line.startswith("| dep")]
    assert len(table) == 1 and table[0].count(" | ") == 7  # one row, eight cells: no | leaked
    assert "<h1>" in html and html.count("<h1>") == 1  # the reason's "# " heads nothing


def test_a_verify_all_report_shows_untrusted_text_as_text() -> None:
    row = DriftRow(f"dep{SCRIPT}", "cl1", "ws1", f"repo{LINK}", "12.4.0", "HEALTHY", "12.1.0",
                   None, f"unhealthy: {HOSTILE}", 0, kinds=("deployed_ne_dockerfile",),
                   messages=(f"Astro said: {HOSTILE}", "second"))
    report = DriftReport((row,), NOW, 1.0, notes=(f"read via {HOSTILE}",))
    text = drift_markdown(report)
    html = rendered(text)

    assert_inert(html)
    assert "deployed_ne_dockerfile" in text  # a word's underscores are left alone
    assert html.count("<br>") == 1  # the one the report writes between two messages
