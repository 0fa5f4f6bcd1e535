"""The soak analyses where people look: per Deployment, runs before and after, failure
rates, the verdict and why; for `analyze`, `status`, the recap and the reports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from upgrade.run.verify.analysis import Measurement

STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow", "running": "cyan"}


def analysis_rows(measurements: Sequence[Measurement]) -> list[dict[str, Any]]:
    """Plain rows, one per Deployment (JSON, Markdown, HTML all read these)."""
    rows = []
    for m in measurements:
        dags = m.judgement.dags
        runs_b = sum(d.before.runs for d in dags)
        runs_a = sum(d.after.runs for d in dags)
        failed_b = sum(d.before.failed for d in dags)
        failed_a = sum(d.after.failed for d in dags)
        rows.append({
            "deployment": m.name, "deployment_id": m.deployment_id, "wave": m.wave,
            "status": m.status, "blocks": m.blocks(), "accepted": m.accepted,
            "runs_before": runs_b, "failed_before": failed_b,
            "runs_after": runs_a, "failed_after": failed_a,
            "failure_rate_before": _rate(failed_b, runs_b),
            "failure_rate_after": _rate(failed_a, runs_a),
            "requests": m.requests,
            "since": m.since.isoformat(timespec="seconds") if m.since else None,
            "until": m.until.isoformat(timespec="seconds") if m.until else None,
            "detail": m.line(),
            "dags": [d.to_json() for d in dags if d.status in ("fail", "inconclusive")],
        })
    return rows


def print_analyses(rows: Sequence[dict[str, Any]], console: Console) -> None:
    """The rows as a table, then each one's verdict in words."""
    if not rows:
        return
    table = Table(title="soak analysis (DAG runs after the deploy vs the window before)")
    for column in ("Deployment", "wave", "verdict", "runs before", "failed before",
                   "runs after", "failed after", "requests"):
        table.add_column(column)
    for r in rows:
        verdict = r["status"] + (" (accepted)" if r["accepted"] else "")
        table.add_row(r["deployment"], str(r["wave"]),
                      Text(verdict, style=STYLE.get(r["status"], "")),
                      str(r["runs_before"]), _pct(r["failure_rate_before"]),
                      str(r["runs_after"]), _pct(r["failure_rate_after"]), str(r["requests"]))
    console.print(table)
    for r in rows:
        if r["status"] != "pass":
            console.print(Text(f"  {r['detail']}"))


def markdown_lines(rows: Sequence[dict[str, Any]], text: Callable[[str], str]) -> list[str]:
    """A Markdown section for the wave report (empty without analyses); ``text`` escapes
    what came from outside (``upgrade.report.markdown.text``)."""
    if not rows:
        return []
    out = ["", "## Soak analysis of earlier waves (as the gate measured it)", "",
           "| Deployment | wave | verdict | runs before | failed before | runs after | "
           "failed after |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        verdict = r["status"] + (" (accepted)" if r["accepted"] else "")
        out.append(f"| {text(r['deployment'])} | {r['wave']} | {verdict} | "
                   f"{r['runs_before']} | {_pct(r['failure_rate_before'])} | "
                   f"{r['runs_after']} | {_pct(r['failure_rate_after'])} |")
    details = [r["detail"] for r in rows if r["status"] != "pass"]
    if details:
        out.append("")
        out.extend(f"- {text(d)}" for d in details)
    return out


def _rate(failed: int, runs: int) -> float | None:
    return round(failed / runs, 4) if runs else None


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"
