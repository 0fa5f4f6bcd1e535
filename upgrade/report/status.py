"""``status``: every rollout in the journal, its pins, its waves (what each run left them
at, soak left, the versions they go to), approvals, skipped gates, accepted findings."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from upgrade.journal.lock import Holder
from upgrade.journal.records import Event, Rollout, Signoff, WaveRecord
from upgrade.journal.states import WAVE_LEFT
from upgrade.journal.store import Journal
from upgrade.model.versions import RuntimeVersion
from upgrade.report.analysis import analysis_rows, print_analyses
from upgrade.report.recap import STATUS_STYLE
from upgrade.run.verify.analysis import latest

FINDINGS_ACCEPTED = "migration_findings_accepted"


def rollout_status(journal: Journal, now: datetime,
                   holder: Holder | None = None) -> dict[str, Any]:
    """Every rollout with its waves: status, soak left, approvals, skips, state counts.

    ``holder`` is the run holding the journal's lock now (None: no run is in flight): a
    wave the journal has running is running only while a run of it holds the lock;
    otherwise its last run left it incomplete or stopped (and said why), or died.
    """
    rollouts = []
    for r in journal.rollouts():
        by_wave: dict[int, Counter[str]] = {}
        versions: dict[int, set[RuntimeVersion]] = {}
        for d in journal.deployments(r.id):
            by_wave.setdefault(d.wave, Counter())[d.state] += 1
            versions.setdefault(d.wave, set()).add(d.to_version)
        runs = _last_by_wave(journal.events(r.id, kind="wave_started"))
        left = _last_by_wave(journal.events(r.id, kind=WAVE_LEFT))
        accepted: dict[int, list[dict[str, Any]]] = {}
        for e in journal.events(r.id, kind=FINDINGS_ACCEPTED):
            if e.wave is not None:
                accepted.setdefault(e.wave, []).append({
                    "actor": e.actor, "at": _iso(e.at), "findings": dict(e.data or {})})
        waves = []
        for w in journal.waves(r.id):
            soak_left = None
            if w.status == "passed" and w.proceed_after is not None:
                soak_left = max(0, int((w.proceed_after - now).total_seconds()))
            status, why = _wave_state(r, w, runs.get(w.number), left.get(w.number), holder, now)
            waves.append(
                {
                    "wave": w.number,
                    "status": status,
                    "status_reason": why,
                    "targets": [str(v) for v in sorted(versions.get(w.number, ()),
                                                       reverse=True)],
                    "accepted_findings": accepted.get(w.number, []),
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
                # every pinned version, newest first (a rollout on two lines pins two)
                "target": ", ".join(str(v) for v in sorted(set(r.pins.values()),
                                                           reverse=True)),
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
                "analyses": analysis_rows(latest(journal, journal.deployments(r.id))),
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
        for column in ("wave", "status", "to", "Deployments", "soak left", "notes"):
            table.add_column(column)
        for w in r["waves"]:
            notes = []
            if w["status_reason"]:
                notes.append(w["status_reason"])
            for a in w["accepted_findings"]:
                found = a["findings"]
                notes.append(
                    f"{sum(len(v) for v in found.values())} Airflow 3 migration finding(s) "
                    f"accepted by {a['actor']} at {a['at']}: "
                    + ", ".join(f"{repo} ({len(v)})" for repo, v in found.items()))
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
                ", ".join(w["targets"]),
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
        print_analyses(r.get("analyses") or [], console)


def _last_by_wave(events: list[Event]) -> dict[int, Event]:
    """The newest event of each wave (events come oldest first)."""
    return {e.wave: e for e in events if e.wave is not None}


def _wave_state(rollout: Rollout, wave: WaveRecord, started: Event | None, left: Event | None,
                holder: Holder | None, now: datetime) -> tuple[str, str | None]:
    """What ``status`` says of a wave, and why: the journal's status, except that a wave
    it has running is ``running`` only while a run of it holds the lock, else
    ``incomplete`` (its last run finished its selection, work is left) or ``stopped``
    (its last run ended with an error or Ctrl-C, saying so, or died without a word)."""
    if wave.status != "running":
        return wave.status, wave.halt_reason
    resume = f"`astro-fleet upgrade --wave {wave.number}` resumes it"
    if (holder is not None and rollout.status == "active"
            and re.search(rf"\bupgrade --wave {wave.number}\b", holder.command)):
        return "running", f"run by {holder.describe(now)}"
    if left is not None and (started is None or left.seq > started.seq):
        how = (left.data or {}).get("how")
        return ("incomplete" if how == "incomplete" else "stopped",
                f"its last run ended at {_iso(left.at)}: {left.message}; {resume}")
    since = f" (started {_iso(started.at)} by {started.actor})" if started is not None else ""
    return "stopped", (f"its last run{since} is gone without a word (killed or crashed) and "
                       f"no run holds the journal's lock; {resume}")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _signoff(s: Signoff | None) -> dict[str, str] | None:
    return (
        None
        if s is None
        else {"actor": s.actor, "at": s.at.isoformat(timespec="seconds"), "reason": s.reason}
    )
