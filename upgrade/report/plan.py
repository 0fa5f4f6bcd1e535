"""The plan as people read it: one row per Deployment, each changed repo's diff once."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from upgrade.plan.plan import Plan

ACTION_STYLE = {"upgrade": "green", "noop": "dim", "refuse": "bold red"}


def print_plan(plan: Plan, console: Console) -> None:
    """The human plan: one row per Deployment, each changed repo's diff once, a summary."""
    console.print(
        Text.assemble("Target: ", (str(plan.target), "bold"), f" (from '{plan.resolution.spec}')")
    )
    for warning in plan.resolution.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))
    table = Table(show_lines=False)
    for column in ("deployment", "wave", "repo", "current", "target", "action"):
        table.add_column(column, no_wrap=True)
    table.add_column("reason", overflow="fold")
    for p in plan.deployments:
        table.add_row(
            p.deployment.name,
            str(p.deployment.wave),
            p.repo.repo,
            str(p.current or "?"),
            str(p.target),
            Text(p.action, style=ACTION_STYLE[p.action]),
            p.reason,
        )
    console.print(table)
    for p in plan.deployments:
        for warning in p.warnings:
            console.print(Text(f"warning: {p.deployment.name}: {warning}", style="yellow"))
    for change in plan.changed_repos():
        console.print(Text(f"\n{change.repo}: {change.dockerfile}", style="bold"))
        console.print(colour_diff(change.diff()), end="")
    console.print(Text(f"\nPlan: {plan.summary()}.", style="bold"))


def colour_diff(diff: str) -> Text:
    """A unified diff with the usual colours; carriage returns shown, never swallowed."""
    text = Text()
    for line in diff.splitlines(keepends=True):
        body = line.replace("\r\n", "\\r\n") if line.endswith("\r\n") else line
        if not body.endswith("\n"):
            body += "\n\\ No newline at end of file\n"
        style = (
            "bold"
            if body.startswith(("---", "+++"))
            else "cyan"
            if body.startswith("@@")
            else "green"
            if body.startswith("+")
            else "red"
            if body.startswith("-")
            else ""
        )
        text.append(body, style=style)
    return text


