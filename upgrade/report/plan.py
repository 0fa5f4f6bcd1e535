"""The plan as people read it: one row per Deployment, each changed repo's diff once."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from upgrade.config.inventory import Inventory
from upgrade.config.targets import AIRFLOW2, AIRFLOW3, LINE_NAMES, line_of
from upgrade.plan.plan import Plan

ACTION_STYLE = {"upgrade": "green", "migrate": "bold cyan", "noop": "dim",
                "not_targeted": "dim", "refuse": "bold red", "blocked": "bold yellow"}
LINE_SHORT = {AIRFLOW2: "af2", AIRFLOW3: "af3"}


def print_plan(plan: Plan, console: Console) -> None:
    """The human plan: the targets, one row per Deployment, each changed repo's diff once,
    each migrating repo's Airflow 3 findings, a summary."""
    for spec, resolution in plan.targets.items():
        line = LINE_NAMES[line_of(resolution.version)]
        console.print(Text.assemble("Target ", (f"'{spec}'", "bold"), " → ",
                                    (str(resolution.version), "bold"), f" ({line})"))
        for warning in resolution.warnings:
            console.print(Text(f"warning: {warning}", style="yellow"))
    table = Table(show_lines=False)
    for column in ("deployment", "wave", "repo", "line", "current", "target", "action"):
        table.add_column(column, no_wrap=True)
    table.add_column("reason", overflow="fold")
    for p in plan.deployments:
        table.add_row(
            p.deployment.name,
            str(p.deployment.wave),
            p.repo.repo,
            LINE_SHORT.get(p.line or "", "?"),
            str(p.current or "?"),
            str(p.target or "-"),
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
    for repo, findings in plan.findings.items():
        console.print(Text(f"\n{repo}: {len(findings)} Airflow 3 migration finding(s) "
                           "(ruff AIR3)", style="bold"))
        for finding in findings:
            console.print(Text(f"  {finding}"))
    console.print(Text(f"\nPlan: {plan.summary()}.", style="bold"))


def local_mode_warning(plan: Plan, inventory: Inventory) -> str | None:
    """The warning for repos the plan changes in ``git.mode: local``: what is deployed from
    them is committed on a local branch only, so it will exist on no shared branch."""
    local = [c.repo for c in plan.changed_repos()
             if c.repo in inventory.repos and inventory.repos[c.repo].git.mode == "local"]
    if not local:
        return None
    shown = ", ".join(local[:10]) + (f" and {len(local) - 10} more" if len(local) > 10 else "")
    return (f"warning: {len(local)} repo(s) use git.mode: local ({shown}): the code deployed "
            "from them will be committed on a local branch and exist on no shared branch. Set "
            "git.mode: direct or pull-request for repos with a remote (docs/git.md).")


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


