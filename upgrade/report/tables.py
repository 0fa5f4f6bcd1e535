"""Tables for the read-only commands: the release catalog, the inventory, the runners."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from rich.table import Table
from rich.text import Text

from upgrade.config.inventory import Inventory
from upgrade.hosts.pool import RunnerProblem
from upgrade.model.catalog import Catalog


def catalog_table(cat: Catalog, day: date) -> Table:
    """The catalog, newest first; unknown values are shown as '?'."""
    table = Table(title=f"Astro Runtime releases ({len(cat)}; {', '.join(cat.sources)})")
    for column in ("version", "Airflow", "Python", "released", "end of maintenance", "status"):
        table.add_column(column)
    for r in cat:
        table.add_row(
            str(r.version),
            r.airflow or "?",
            r.python or "?",
            str(r.released or "?"),
            str(r.end_of_maintenance or "?"),
            r.status(day),
        )
    return table


def inventory_table(inv: Inventory) -> Table:
    """The fleet by wave: one row per Deployment."""
    table = Table(title=f"{inv.file}: {len(inv.deployments)} Deployments, {len(inv.repos)} repos")
    for column in ("wave", "deployment", "id", "workspace", "repo", "groups"):
        table.add_column(column)
    for d in sorted(inv.deployments, key=lambda d: d.wave):
        table.add_row(
            str(d.wave), d.name, d.id, d.workspace_id, d.repo, ", ".join(sorted(d.groups))
        )
    return table


def runner_lines(inv: Inventory, problems: Sequence[RunnerProblem]) -> list[Text]:
    """One line per runner in use: where it is, its parallelism, ok or problems."""
    lines = []
    for name in sorted({r.runner for r in inv.repos.values()}):
        runner = inv.runners[name]
        where = ("this machine" if runner.is_local
                 else f"{runner.user or ''}@{runner.host}:{runner.port}")
        count = sum(1 for r in inv.repos.values() if r.runner == name)
        bad = any(p.runner == name for p in problems)
        line = Text(f"{name} ({where}, parallel {runner.parallel}, {count} repos): ")
        line.append("problems" if bad else "ok", style="red" if bad else "green")
        lines.append(line)
    return lines
