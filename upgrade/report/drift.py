"""``verify-all`` as people read it: a table, what drifted and why, and a Markdown report."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from upgrade.controlplane.deployment import HEALTHY_STATES
from upgrade.model.redact import redact
from upgrade.report import markdown as md
from upgrade.run.verify.drift import DriftReport


def drift_markdown(report: DriftReport) -> str:
    """The Markdown for ``verify-all --report PATH``: drifted Deployments first, then all;
    every text from outside escaped (``upgrade.report.markdown``), everything redacted."""
    out = ["# verify-all", "",
           f"Checked at {report.checked_at.isoformat(timespec='seconds')}. "
           f"{md.text(report.summary())}", ""]
    out += [f"- {md.text(note)}" for note in report.notes]
    if report.notes:
        out.append("")
    if report.drifted:
        out += ["## Drift", "", "| Deployment | Repo | Drift | Details |", "|---|---|---|---|"]
        for row in report.drifted:
            cells = [md.text(c) for c in (row.deployment, row.repo, ", ".join(row.kinds))]
            cells.append("<br>".join(md.text(m) for m in row.messages))  # the <br> is ours
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    out += ["## All Deployments", "",
            "| Deployment | Repo | Deployed | Status | Dockerfile | Expected | Health "
            "| Import errors | Drift |", "|---|---|---|---|---|---|---|---|---|"]
    for row in report.rows:
        out.append(md.row((row.deployment, row.repo, row.deployed or "?",
                           row.status or "?", row.dockerfile or "?", row.expected or "-",
                           row.health, _count(row.import_errors),
                           ", ".join(row.kinds) or "none")))
    return redact("\n".join(out) + "\n")


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def print_report(report: DriftReport, console: Console) -> None:
    """The human view: one table row per Deployment, then what drifted and why."""
    table = Table(show_lines=False)
    for column in ("deployment", "repo", "deployed", "status", "dockerfile", "expected"):
        table.add_column(column, no_wrap=True)
    table.add_column("health", overflow="fold")
    table.add_column("import errors", justify="right")
    table.add_column("drift", overflow="fold")
    for row in report.rows:
        style = "bold red" if row.drifted else ""
        table.add_row(
            Text(row.deployment, style=style), row.repo, row.deployed or "?",
            Text(row.status or "?", style="" if row.status in HEALTHY_STATES else "red"),
            row.dockerfile or "?", row.expected or "-", row.health, _count(row.import_errors),
            Text(", ".join(row.kinds) or "none", style=style or "green"),
        )
    console.print(table)
    for note in report.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    for row in report.drifted:
        for message in row.messages:
            console.print(Text(f"{row.deployment}: {message}", style="red"))
    console.print(Text(report.summary(), style="bold red" if report.drifted else "bold green"))


