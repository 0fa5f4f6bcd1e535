"""What the HTML rollout report shows, read from the journal: plain data, no markup.

A rollout becomes, per wave, one row per Deployment with a bar per phase it went through
(queued, render, commit/PR, test, deploy, verify, soak), the wave's annotations (runs,
batches, approvals, skipped gates, accepted findings, how it ended), then the fleet's
version matrix and the summary. Phases come from the journal's ``transition`` events: a
phase ends at the move that finishes it and starts at the Deployment's previous move
(or when a worker took it up, ``data.began``, recorded with its first move of a run).

Every text taken from the journal passes the one redaction rule again here: what was
stored before a secret became known (a token added to the environment later) is hidden
too. New kinds of events (a PR's URL, a merge commit) show up in a Deployment's list of
events without a change here; ``DETAIL_KEYS`` names data fields worth a line of their own.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from upgrade.journal.records import DeploymentRecord, Event, Rollout, WaveRecord
from upgrade.journal.states import (
    COMMITTED,
    DEPLOYED,
    DEPLOYING,
    FAILED,
    FINISHED,
    PENDING,
    RENDERED,
    RUNNING_NEW,
    SKIPPED,
    TESTED,
    VERIFIED,
)
from upgrade.journal.store import Journal
from upgrade.model.catalog import Catalog
from upgrade.model.redact import Redactor
from upgrade.model.versions import RuntimeVersion, try_parse_version
from upgrade.report.analysis import analysis_rows
from upgrade.run.verify.analysis import latest

# Phases in the order they happen, with the label people read.
PHASES = {
    "queued": "queued",
    "render": "render",
    "commit": "commit/PR",
    "test": "test",
    "deploy": "deploy",
    "verify": "verify",
    "soak": "soak",
}
# The phase a move into each state finishes.
_FINISHES = {RENDERED: "render", COMMITTED: "commit", TESTED: "test",
             DEPLOYING: "deploy", DEPLOYED: "deploy", VERIFIED: "verify"}
# The phase that was under way when a Deployment failed from each state.
_FAILS_IN = {PENDING: "render", RENDERED: "commit", COMMITTED: "deploy",
             TESTED: "deploy", DEPLOYING: "deploy", DEPLOYED: "verify"}
# Fields of an event's data shown as a line of their own (e.g. what a git mode records).
DETAIL_KEYS = ("pr_url", "pr_number", "merge_commit", "deployed_commit", "commit", "url")
QUEUED_MIN = timedelta(seconds=0.5)  # shorter waits for a worker are not worth a bar
MESSAGE_LIMIT = 400  # characters of one message in a tooltip: a log, not a novel


@dataclass(frozen=True)
class Bar:
    """One phase of one Deployment: when, how it ended, and what the journal said."""

    phase: str
    start: datetime
    end: datetime
    outcome: str  # ok | failed | running
    message: str = ""

    @property
    def seconds(self) -> float:
        """How long the phase took."""
        return max(0.0, (self.end - self.start).total_seconds())


@dataclass
class Row:
    """One Deployment of a wave, its bars and what became of it."""

    deployment_id: str
    name: str
    repo: str
    wave: int
    state: str
    from_version: str
    to_version: str
    error: str
    attempts: int
    batch: int | None = None
    bars: list[Bar] = field(default_factory=list)
    details: list[str] = field(default_factory=list)  # other events, one line each

    @property
    def result(self) -> str:
        """ok, failed, skipped or not finished: the word the Markdown report uses."""
        return {VERIFIED: "ok", FAILED: "failed", SKIPPED: "skipped"}.get(
            self.state, "not finished")


@dataclass(frozen=True)
class Note:
    """An annotation on a wave's timeline: a run, a batch, a signoff, the end."""

    at: datetime
    kind: str  # run | batch | approval | skip_gate | findings | passed | halted
    text: str


@dataclass
class WaveView:
    """One wave: its record, rows and annotations."""

    number: int
    status: str
    record: WaveRecord | None
    rows: list[Row] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    halt_reason: str = ""
    soak: Bar | None = None  # the wave's soak, once it passed

    @property
    def counts(self) -> dict[str, int]:
        """How many Deployments per result."""
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.result] = out.get(r.result, 0) + 1
        return dict(sorted(out.items()))


@dataclass(frozen=True)
class Cell:
    """One Deployment in the version matrix."""

    name: str
    version: str
    status: str  # current | behind | past end of maintenance | yanked | unknown
    source: str  # journal | Astro


@dataclass
class RolloutView:
    """Everything the report shows about one rollout."""

    rollout: Rollout
    waves: list[WaveView]
    now: datetime
    pins: dict[str, str]
    finish_reason: str
    matrix_lines: list[str]  # column heads, newest line first
    matrix: list[tuple[str, dict[str, list[Cell]]]]  # (row head, line -> cells)
    durations: list[tuple[str, int, float, float]]  # phase, count, median, p95 (seconds)
    failures: list[Row]
    resume: list[str]
    observed_note: str = ""
    path: Path | None = None  # where it was written
    analyses: list[dict[str, Any]] = field(default_factory=list)  # report.analysis rows

    @property
    def rows(self) -> list[Row]:
        """Every Deployment of the rollout, wave by wave."""
        return [r for w in self.waves for r in w.rows]


def rollout_view(journal: Journal, rollout_id: int | None, catalog: Catalog, now: datetime, *,
                 program: str, observed: Mapping[str, RuntimeVersion] | None = None,
                 observed_note: str = "", waves: Iterable[int] = ()) -> RolloutView | None:
    """The view of rollout ``rollout_id`` (None: the newest), or None when there is none.

    ``observed`` maps Deployment ids to the Runtime Astro reports now (one look at the
    fleet, when it could be had); the journal's record fills in the others. ``waves`` are
    the inventory's wave numbers: those the journal has not reached yet are still to run.
    """
    rollouts = journal.rollouts()
    if not rollouts:
        return None
    chosen = rollouts[-1] if rollout_id is None else journal.get_rollout(rollout_id)
    if chosen is None:
        return None
    redact = Redactor.from_env(os.environ)
    records = journal.deployments(chosen.id)
    by_number = {w.number: w for w in journal.waves(chosen.id)}
    events = journal.events(chosen.id)
    views = _waves(records, by_number, events, redact, now)
    observed = observed or {}
    lines, matrix = _matrix(views, catalog, now.date(), observed)
    return RolloutView(
        rollout=chosen,
        waves=views,
        now=now,
        pins={spec: str(v) for spec, v in chosen.pins.items()},
        finish_reason=redact(chosen.finish_reason or ""),
        matrix_lines=lines,
        matrix=matrix,
        durations=_durations([b for w in views for r in w.rows for b in r.bars]
                             + [w.soak for w in views if w.soak is not None]),
        failures=[r for w in views for r in w.rows if r.state == "failed"],
        resume=_resume(chosen, views, waves, program),
        observed_note=redact(observed_note),
        analyses=[{**row, "detail": redact(row["detail"])}
                  for row in analysis_rows(latest(journal, records))],
    )


# -- timeline -----------------------------------------------------------------------------


def _waves(records: Sequence[DeploymentRecord], waves: Mapping[int, WaveRecord],
           events: Sequence[Event], redact: Redactor, now: datetime) -> list[WaveView]:
    views: dict[int, WaveView] = {}
    for number in sorted({*waves, *(r.wave for r in records)}):
        record = waves.get(number)
        views[number] = WaveView(number, record.status if record else "pending", record,
                                 halt_reason=redact((record.halt_reason or "") if record else ""))
    rows: dict[str, Row] = {}
    for r in records:
        row = Row(r.deployment_id, r.name, r.repo, r.wave, r.state,
                  str(r.from_version) if r.from_version else "?", str(r.to_version),
                  redact(r.error or ""), r.attempts)
        rows[r.deployment_id] = row
        views[r.wave].rows.append(row)
    tested = any(e.to_state == TESTED for e in events)
    mark: dict[str, datetime | None] = {}  # where each Deployment's next bar starts
    queued_from: dict[int, datetime] = {}  # the start of the wave's current run or batch
    for e in events:
        wave = views.get(e.wave) if e.wave is not None else None
        row = rows.get(e.deployment_id) if e.deployment_id else None
        if row is not None and e.kind == "transition":
            _move(row, e, mark, queued_from.get(row.wave), tested, redact)
        elif row is not None:
            if e.kind in ("registered", "high_water", "baseline"):
                continue
            row.details.append(_detail(e, redact))
            if e.kind == "analysis" and (e.data or {}).get("status") == "fail":
                # The moment the soak's analysis failed, on the wave's timeline.
                views[row.wave].notes.append(Note(
                    e.at, "analysis_failed", f"analysis failed: {_clip(redact(e.message or ''))}"))
            elif e.kind in ("analysis_accepted", "analysis_retry"):
                views[row.wave].notes.append(Note(e.at, e.kind, _clip(
                    f"{row.name}: {redact(e.message or '')} ({e.actor})")))
        elif wave is not None:
            note = _wave_note(e, redact)
            if note is not None:
                wave.notes.append(note)
            if e.kind in ("wave_started", "batch_started"):
                queued_from[wave.number] = e.at
                batch = (e.data or {}).get("batch") if e.kind == "batch_started" else None
                if isinstance(batch, int) and isinstance(e.data.get("deployments"), list):
                    for dep_id in e.data["deployments"]:
                        if isinstance(dep_id, str) and dep_id in rows:
                            rows[dep_id].batch = batch
    for view in views.values():
        for row in view.rows:
            start = mark.get(row.deployment_id)
            if start is not None and row.state not in FINISHED:
                phase = _FAILS_IN.get(row.state, "deploy")
                row.bars.append(Bar(phase, start, max(now, start), "running", "under way"))
        _soak(view, now)
    return list(views.values())


def _move(row: Row, e: Event, mark: dict[str, datetime | None], queued_from: datetime | None,
          tested: bool, redact: Redactor) -> None:
    """One transition: the bar it finishes, and where the next one starts."""
    message = _clip(redact(e.message or ""))
    start = mark.get(row.deployment_id)
    began = _began(e)
    if start is None and e.from_state == PENDING:
        # The first move of a run: queued from the batch's start until a worker took it up.
        if began is not None and queued_from is not None and began - queued_from > QUEUED_MIN:
            row.bars.append(Bar("queued", queued_from, began, "ok", "waiting for a worker"))
        start = began or queued_from
    elif began is not None:
        start = began
    to = e.to_state or ""
    if to == PENDING:  # a retry, or a refusal re-decided: the next run starts afresh
        mark[row.deployment_id] = None
        if message:
            row.details.append(f"{_hms(e.at)} back to pending: {message}")
        return
    if to == SKIPPED:
        row.details.append(f"{_hms(e.at)} skipped: {message}")
        mark[row.deployment_id] = None
        return
    if to == FAILED:
        phase = _FAILS_IN.get(e.from_state or "", "deploy")
        if phase == "deploy" and e.from_state == COMMITTED and tested:
            phase = "test"
        row.bars.append(Bar(phase, start or e.at, e.at, "failed", message))
        mark[row.deployment_id] = None
        return
    phase = _FINISHES.get(to)
    if phase is None:
        return
    if to == DEPLOYING:  # the deploy goes on until "deployed": keep its start
        mark[row.deployment_id] = start or e.at
        return
    row.bars.append(Bar(phase, start or e.at, e.at, "ok", message))
    mark[row.deployment_id] = e.at


def _soak(view: WaveView, now: datetime) -> None:
    """A passed wave soaks as a whole, from its pass until the next wave's gate may open."""
    w = view.record
    if w is None or w.status != "passed" or w.passed_at is None or w.proceed_after is None:
        return
    if w.proceed_after <= w.passed_at:
        return
    outcome = "ok" if now >= w.proceed_after else "running"
    text = f"soak {duration((w.proceed_after - w.passed_at).total_seconds())}"
    view.soak = Bar("soak", w.passed_at, w.proceed_after, outcome, text)


def _wave_note(e: Event, redact: Redactor) -> Note | None:
    message = redact(e.message or "")
    if e.kind == "wave_started":
        return Note(e.at, "run", f"run by {e.actor}")
    if e.kind == "batch_started":
        data = e.data or {}
        return Note(e.at, "batch", f"batch {data.get('batch')} of {data.get('of')}: "
                                   f"{data.get('size')} Deployment(s)")
    if e.kind == "approval":
        return Note(e.at, "approval", f"approved by {e.actor}: {message}")
    if e.kind == "skip_gate":
        return Note(e.at, "skip_gate", f"GATE SKIPPED by {e.actor}: {message}")
    if e.kind == "migration_findings_accepted":
        return Note(e.at, "findings", message)
    if e.kind in ("wave_passed", "wave_halted"):
        status = e.kind.removeprefix("wave_")
        return Note(e.at, status, f"wave {status}" + (f": {message}" if message else ""))
    if e.kind.startswith("rollout_"):
        return None
    return Note(e.at, e.kind, message or e.kind.replace("_", " "))


def _detail(e: Event, redact: Redactor) -> str:
    """Any other event of a Deployment (including kinds added later), as one line."""
    parts = [f"{_hms(e.at)} {e.kind.replace('_', ' ')}"]
    if e.message:
        parts.append(_clip(redact(e.message)))
    for key in DETAIL_KEYS:
        if e.data and e.data.get(key) not in (None, ""):
            parts.append(f"{key.replace('_', ' ')}: {redact(str(e.data[key]))}")
    return ": ".join(parts[:2]) + "".join(f"; {p}" for p in parts[2:])


def _began(e: Event) -> datetime | None:
    text = (e.data or {}).get("began")
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


# -- matrix, durations, resume --------------------------------------------------------------


def status_against(version: RuntimeVersion | None, catalog: Catalog, today: date) -> str:
    """How a deployed Runtime stands in the catalog, in words."""
    if version is None:
        return "unknown"
    release = catalog.get(version)
    if release is not None and release.yanked:
        return "yanked"
    if release is not None and release.past_maintenance(today):
        return "past end of maintenance"
    newest = catalog.newest_in_line(version)
    if newest is not None and version < newest.version:
        return "behind"
    return "current" if release is not None or newest is not None else "unknown"


def line_label(version: RuntimeVersion) -> str:
    """A Runtime line as people name it: ``13.x`` or ``3.1-x`` (Airflow 3)."""
    major, minor = version.line
    return f"{major}.{minor}-x" if version.airflow_major == 3 else f"{major}.{minor}.x"


def _matrix(waves: Sequence[WaveView], catalog: Catalog, today: date,
            observed: Mapping[str, RuntimeVersion]
            ) -> tuple[list[str], list[tuple[str, dict[str, list[Cell]]]]]:
    keyed: dict[str, RuntimeVersion] = {}
    grid: list[tuple[str, dict[str, list[Cell]]]] = []
    for w in waves:
        cells: dict[str, list[Cell]] = {}
        for row in w.rows:
            seen = observed.get(row.deployment_id)
            if seen is not None:
                version, source = seen, "Astro"
            else:
                text = row.to_version if row.state in RUNNING_NEW else row.from_version
                version, source = try_parse_version(text), "journal"
            line = line_label(version) if version is not None else "unknown"
            if version is not None:
                keyed.setdefault(line, version)
            cells.setdefault(line, []).append(
                Cell(row.name, str(version) if version else "?",
                     status_against(version, catalog, today), source))
        grid.append((f"wave {w.number}", cells))
    lines = sorted(keyed, key=lambda k: keyed[k], reverse=True)
    if any("unknown" in cells for _, cells in grid):
        lines.append("unknown")
    return lines, grid


def _durations(bars: Iterable[Bar]) -> list[tuple[str, int, float, float]]:
    by_phase: dict[str, list[float]] = {}
    for bar in bars:
        if bar.outcome != "running":
            by_phase.setdefault(bar.phase, []).append(bar.seconds)
    out = []
    for phase in PHASES:
        values = sorted(by_phase.get(phase, ()))
        if values:
            out.append((phase, len(values), _percentile(values, 50), _percentile(values, 95)))
    return out


def _percentile(values: Sequence[float], pct: int) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return values[rank - 1]


def _resume(rollout: Rollout, views: Sequence[WaveView], planned: Iterable[int],
            program: str) -> list[str]:
    """The commands that take an active rollout on: every wave not passed (or with work
    left), in order, including the inventory's waves the journal has not reached."""
    if rollout.status != "active":
        return []
    done = {w.number for w in views
            if w.status == "passed" and all(r.state in (VERIFIED, SKIPPED) for r in w.rows)}
    todo = sorted({*(w.number for w in views), *planned} - done)
    return [f"{program} upgrade --wave {n}" for n in todo]


# -- words ----------------------------------------------------------------------------------


def _clip(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def _hms(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S")


def duration(seconds: float) -> str:
    """``0.4 s``, ``12 s``, ``3 min 5 s``, ``26 h 4 min``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    delta = timedelta(seconds=round(seconds))
    hours, rest = divmod(int(delta.total_seconds()), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s"

