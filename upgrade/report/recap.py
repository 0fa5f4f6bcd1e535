"""What people read: plan tables and diffs, recaps, JSON and Markdown reports."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from upgrade.journal.store import Journal, Signoff
from upgrade.plan.plan import Plan
from upgrade.run.rollout import WaveResult

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


RESULT_STYLE = {"ok": "green", "skipped": "cyan", "failed": "bold red", "not finished": "yellow"}
STATUS_STYLE = {
    "passed": "bold green",
    "halted": "bold red",
    "incomplete": "bold yellow",
    "running": "yellow",
    "pending": "dim",
}


def print_recap(result: WaveResult, console: Console) -> None:
    """An Ansible-like recap: one line per Deployment, then the totals and the verdict."""
    console.print(
        Text(
            f"\nRECAP wave {result.wave} → {result.target} (rollout {result.rollout_id})",
            style="bold",
        )
    )
    width = max((len(o.deployment) for o in result.outcomes), default=10)
    for o in result.outcomes:
        line = Text(f"{o.deployment:<{width}} : ")
        line.append(f"{o.result:<12}", style=RESULT_STYLE.get(o.result, ""))
        line.append(
            f" {o.from_version or '?'} → {o.to_version}  state={o.state} deploys={o.deploys}"
        )
        if o.message:
            line.append(f"  {o.message}", style="dim" if o.result == "ok" else "")
        console.print(line)
    counts = " ".join(f"{k}={v}" for k, v in sorted(result.counts().items()))
    console.print(Text(f"\n{counts}"))
    for note in result.notes:
        console.print(Text(note, style="yellow"))
    verdict = Text(
        f"wave {result.wave}: {result.status.upper()}", style=STATUS_STYLE[result.status]
    )
    if result.reason:
        verdict.append(f": {result.reason}")
    console.print(verdict)


def wave_markdown(result: WaveResult, now: datetime) -> str:
    """The per-wave report for change tickets."""
    lines = [
        f"# Rollout {result.rollout_id}, wave {result.wave}: Astro Runtime {result.target}",
        "",
        f"- status: **{result.status}**" + (f" ({result.reason})" if result.reason else ""),
        f"- written: {now.isoformat(timespec='seconds')}",
        f"- totals: {', '.join(f'{k} {v}' for k, v in sorted(result.counts().items()))}",
        *(f"- note: {n}" for n in result.notes),
        "",
        "| Deployment | repo | from | to | result | state | deploys | message |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in result.outcomes:
        message = o.message.replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {o.deployment} | {o.repo} | {o.from_version or '?'} | {o.to_version} | "
            f"{o.result} | {o.state} | {o.deploys} | {message} |"
        )
    return "\n".join(lines) + "\n"


def write_wave_markdown(journal_dir: Path, result: WaveResult) -> Path:
    """Write the wave's Markdown report under the journal dir; return its path."""
    reports = journal_dir / "reports"
    reports.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = reports / f"rollout-{result.rollout_id}-wave-{result.wave}.md"
    path.write_text(wave_markdown(result, datetime.now(UTC)), "utf-8")
    return path


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
                "status": r.status,
                "created_at": _iso(r.created_at),
                "created_by": r.created_by,
                "waves": waves,
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
                f"rollout {r['rollout']}: {r['target_spec']} → {r['target']} ({r['status']}), "
                f"started {r['created_at']} by {r['created_by']}",
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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _signoff(s: Signoff | None) -> dict[str, str] | None:
    return (
        None
        if s is None
        else {"actor": s.actor, "at": s.at.isoformat(timespec="seconds"), "reason": s.reason}
    )
