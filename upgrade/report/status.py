"""``status``: every rollout in the journal, its waves, soak left, approvals, skipped gates."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from upgrade.journal.records import Signoff
from upgrade.journal.store import Journal
from upgrade.report.recap import STATUS_STYLE


def rollout_status(journal: Journal, now: datetime) -> dict[str, Any]:
    """Every rollout with its waves: status, soak left, approvals, skips, state counts."""
    rollouts = []
    for r in journal.rollouts():
        by_wave: dict[int, Counter[str]] = {}
        for d in journal.deployments(r.id):
            by_wave.setdefault(d.wave, Counter())[d.state] += 1
        waves = []
        for w in journal.waves(r.id):
            soak_left = None
            if w.status == "passed" and w.proceed_after is not None:
                soak_left = max(0, int((w.proceed_after - now).total_seconds()))
            waves.append(
                {
                    "wave": w.number,
                    "status": w.status,
                    "started_at": _iso(w.started_at),
                    "finished_at": _iso(w.finished_at),
                    "passed_at": _iso(w.passed_at),
                    "proceed_after": _iso(w.proceed_after),
                    "soak_left_seconds": soak_left,
                    "halt_reason": w.halt_reason,
                    "approval": _signoff(w.approval),
                    "skip_gate": _signoff(w.skip_gate),
                    "deployments": dict(by_wave.get(w.number, {})),
                }
            )
        rollouts.append(
            {
                "rollout": r.id,
                "target_spec": r.target_spec,
                "target": str(r.target_version),
                "pins": {spec: str(v) for spec, v in r.pins.items()},
                "target_source": r.target_source,
                "status": r.status,
                "created_at": _iso(r.created_at),
                "created_by": r.created_by,
                "waves": waves,
                "repos": [
                    {"repo": c.repo, "mode": c.mode, "branch": c.branch,
                     "pushed_commit": c.pushed_commit, "pr_number": c.pr_number,
                     "pr_url": c.pr_url, "merge_commit": c.merge_commit}
                    for c in journal.repo_changes(r.id)
                ],
            }
        )
    return {"rollouts": rollouts}


def print_status(doc: dict[str, Any], console: Console) -> None:
    """`invoke status` as tables."""
    if not doc["rollouts"]:
        console.print("no rollout recorded yet")
    for r in doc["rollouts"]:
        console.print(
            Text(
                f"rollout {r['rollout']}: "
                + ", ".join(f"'{spec}' → {v}" for spec, v in r["pins"].items())
                + f" ({r['status']}), started {r['created_at']} by {r['created_by']}",
                style="bold",
            )
        )
        table = Table()
        for column in ("wave", "status", "Deployments", "soak left", "notes"):
            table.add_column(column)
        for w in r["waves"]:
            notes = []
            if w["halt_reason"]:
                notes.append(w["halt_reason"])
            if w["approval"]:
                notes.append(f"approved by {w['approval']['actor']}: {w['approval']['reason']}")
            if w["skip_gate"]:
                notes.append(
                    f"GATE SKIPPED by {w['skip_gate']['actor']}: {w['skip_gate']['reason']}"
                )
            soak = (
                ""
                if w["soak_left_seconds"] is None
                else ("done" if w["soak_left_seconds"] == 0 else f"{w['soak_left_seconds']}s")
            )
            counts = ", ".join(f"{k} {v}" for k, v in sorted(w["deployments"].items()))
            table.add_row(
                str(w["wave"]),
                Text(w["status"], style=STATUS_STYLE.get(w["status"], "")),
                counts,
                soak,
                "; ".join(notes),
            )
        console.print(table)
        for c in r.get("repos") or ():
            line = f"  {c['repo']} ({c['mode']}): "
            if c["pr_number"] is not None:
                line += f"PR #{c['pr_number']} {c['pr_url']}"
                line += (f", merged as {c['merge_commit'][:12]}" if c["merge_commit"]
                         else ", not merged yet")
            elif c["pushed_commit"]:
                line += f"pushed {c['pushed_commit'][:12]} to {c['branch']}"
            else:
                line += "nothing pushed yet"
            console.print(Text(line))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _signoff(s: Signoff | None) -> dict[str, str] | None:
    return (
        None
        if s is None
        else {"actor": s.actor, "at": s.at.isoformat(timespec="seconds"), "reason": s.reason}
    )
