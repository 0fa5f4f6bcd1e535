"""Roll one wave out, once it is decided: record it, run it, record how it ended.

``upgrade.run.rollout.preflight`` decides the wave reading only (pins, plan, preflight, gate,
resume moves); this module then writes: the rollout (started, pinning every target spec,
when none is active), the wave's Deployments with their own targets, the moves, and
every state change, committed before the next step starts. So the same command resumes
after any crash: verified Deployments are skipped, failed and never-attempted ones run,
and one caught mid-deploy is inspected first (at target: go on to verify; not: deploy
again). ``approve`` and ``abandon`` are the other commands that write a rollout.
"""

from __future__ import annotations

import contextlib
import shlex
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from upgrade.config.playbook import Playbook
from upgrade.config.targets import TargetSource
from upgrade.config.waves import WaveSettings
from upgrade.errors import GateRefused, InputError, WaveHalted
from upgrade.journal.configured import existing_journal, locked_journal, run_lock
from upgrade.journal.records import DeploymentEntry, DeploymentRecord, Rollout, Signoff
from upgrade.journal.states import FAILED, SKIPPED, VERIFIED, WAVE_LEFT
from upgrade.journal.store import Journal
from upgrade.plan.plan import Plan
from upgrade.plan.targets import Targets, describe
from upgrade.run.rollout.item import Item
from upgrade.run.rollout.notify import Notifier
from upgrade.run.rollout.pins import follow
from upgrade.run.rollout.preflight import Decided, WaveRequest, decide_wave, preview
from upgrade.run.rollout.progress import Reporter
from upgrade.run.rollout.resume import Resume
from upgrade.run.rollout.wave import WaveRunner
from upgrade.run.session import Session
from upgrade.run.verify.analysis import Measurement
from upgrade.run.verify.analysis import record as record_analysis


@dataclass
class Outcome:
    """How one Deployment ended in this run (for the recap, JSON and Markdown)."""

    deployment: str
    repo: str
    state: str
    result: str  # ok | changed | failed | skipped | interrupted | not started
    message: str
    deploys: int = 0
    from_version: str | None = None
    to_version: str | None = None


@dataclass
class WaveResult:
    """The end of one `astro-fleet upgrade --wave N` run."""

    rollout_id: int
    wave: int
    target: str  # the wave's target versions, newest first: "13.9.0, 3.1-17"
    status: str  # passed | halted | incomplete
    reason: str = ""
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: dict[str, str] = field(default_factory=dict)  # spec -> pinned version
    # From the journal: who ran the wave (each run, resumes included), who approved it and
    # who skipped its gate; each {"actor", "at", "reason"?}.
    runs: list[dict[str, str]] = field(default_factory=list)
    approval: dict[str, str] | None = None
    skip_gate: dict[str, str] | None = None
    # False when running the same command again cannot help (Astro refused the target).
    resumable: bool = True
    # The command that finishes the wave (not this run's --limit, which may have left the
    # rest out: running it again would end the same way).
    resume: str = ""
    # The soak analyses of earlier waves, as the gate measured them before this wave.
    analyses: list[Measurement] = field(default_factory=list)

    def error(self) -> WaveHalted | None:
        """None when the wave passed; WaveHalted (4) when it halted or did not finish."""
        if self.status == "passed":
            return None
        return WaveHalted(f"wave {self.wave} {self.status}: {self.reason or 'not finished'}")

    def counts(self) -> dict[str, int]:
        """How many Deployments per result."""
        out: dict[str, int] = {}
        for o in self.outcomes:
            out[o.result] = out.get(o.result, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        """The documented ``upgrade --json`` document."""
        return {
            "rollout": self.rollout_id,
            "wave": self.wave,
            "target": self.target,
            "targets": self.targets,
            "status": self.status,
            "reason": self.reason,
            "counts": self.counts(),
            "notes": self.notes,
            "runs": self.runs,
            "approval": self.approval,
            "skip_gate": self.skip_gate,
            "deployments": [o.__dict__ for o in self.outcomes],
        }


def upgrade_wave(
    fleet: Session,
    playbook: Playbook,
    request: WaveRequest,
    reporter: Reporter,
    stop: threading.Event,
    *,
    command: str,
) -> WaveResult:
    """``upgrade --wave N``: under the journal lock (named ``command``), decide the wave
    reading only, then run or resume it, recording everything.

    A refusal (the gate, a failed preflight, a target the rollout did not pin) is raised
    before anything is written: it leaves the journal exactly as it was (and makes none).
    """
    with run_lock(fleet.inventory.journal, command) as held:
        decided = _decide(fleet, held.existing(), playbook, request, stop)
        if held.note:
            reporter.note(f"note: {held.note}")
        journal = held.journal()
        result = run_wave(fleet, journal, playbook, decided, reporter, stop)
        record_history(journal, result)
        return result


def _decide(fleet: Session, journal: Journal | None, playbook: Playbook, request: WaveRequest,
            stop: threading.Event) -> Decided:
    try:
        return decide_wave(fleet, journal, playbook, request, stop)
    except GateRefused as exc:
        # Nothing is recorded for a refusal; the team still hears of it.
        notifier = Notifier.for_inventory(fleet.inventory)
        if notifier is not None:
            notifier.send("gate_refused", {"wave": request.wave, "reasons": str(exc)})
        raise


def record_history(journal: Journal, result: WaveResult) -> None:
    """Who ran the wave, who approved it and who skipped its gate, from the journal."""
    result.runs = [{"actor": e.actor, "at": e.at.isoformat(timespec="seconds")}
                   for e in journal.events(result.rollout_id, kind="wave_started")
                   if e.wave == result.wave]
    wave = journal.wave(result.rollout_id, result.wave)
    if wave is not None:
        result.approval = _signoff(wave.approval)
        result.skip_gate = _signoff(wave.skip_gate)


def _signoff(signoff: Signoff | None) -> dict[str, str] | None:
    if signoff is None:
        return None
    return {"actor": signoff.actor, "at": signoff.at.isoformat(timespec="seconds"),
            "reason": signoff.reason}


def dry_run(fleet: Session, playbook: Playbook, request: WaveRequest) -> Plan:
    """What ``upgrade --wave N`` would do now; changes nothing."""
    existing = existing_journal(fleet.inventory.journal)
    with existing if existing is not None else contextlib.nullcontext():
        return preview(fleet, existing, playbook, request.wave, request.limits,
                       accept_findings=request.accept_findings,
                       skip_gate=request.skip_gate_reason is not None)


def approve(fleet: Session, wave: int, actor: str, reason: str, *,
            command: str) -> tuple[int, Targets, str | None]:
    """Record ``actor``'s approval of ``wave``, starting (and pinning) a rollout if none is
    active; returns (rollout id, pins, note). ``command`` names the lock's holder."""
    inv = fleet.inventory
    if not inv.wave(wave).approval:
        raise InputError(
            f"wave {wave} needs no approval (its settings do not say 'approval: true'); "
            f"nothing was recorded. Run it: astro-fleet upgrade --wave {wave}.")
    with run_lock(inv.journal, command) as held:
        existing = held.existing()
        targets = follow(fleet, existing.active_rollout() if existing is not None else None)
        if targets.rollout is not None and existing is not None:
            before = existing.wave(targets.rollout.id, wave)
            if before is not None and before.status == "passed":
                at = before.passed_at.isoformat(timespec="seconds") if before.passed_at else "?"
                raise InputError(
                    f"wave {wave} of rollout {targets.rollout.id} already passed at {at}: an "
                    "approval would change nothing; nothing was recorded.")
        journal = held.journal()
        if targets.rollout is not None:
            rollout_id, note = targets.rollout.id, None
            journal.record_approval(rollout_id, wave, actor, reason)
        else:  # the rollout and the approval in one transaction: both or neither
            rollout_id, note = _rollout(journal, fleet, targets, actor, approval=(wave, reason))
    return rollout_id, targets, note or targets.note


def abandon(fleet: Session, actor: str, reason: str, *, command: str) -> Rollout | None:
    """End the active rollout (recorded with who and why); None when there is none."""
    with locked_journal(fleet.inventory.journal, command) as (journal, _):
        active = journal.active_rollout()
        if active is None:
            return None
        return journal.abandon_rollout(active.id, actor, reason)


def _rollout(journal: Journal, fleet: Session, targets: Targets, actor: str,
             approval: tuple[int, str] | None = None) -> tuple[int, str | None]:
    """The followed rollout's id, or a rollout started now pinning ``targets`` (with
    ``approval``, see ``Journal.start_rollout``), with a note."""
    if targets.rollout is not None:
        return targets.rollout.id, None
    inv = fleet.inventory
    headline = targets.given if targets.given is not None else inv.target
    versions = targets.versions
    first = next(iter(versions.values()))
    source = TargetSource.INVENTORY if targets.given is None else TargetSource.FLAG
    rollout = journal.start_rollout(str(headline or "per-group targets"), first, str(inv.path),
                                    actor, pins=versions, target_source=source.value,
                                    approval=approval)
    return rollout.id, f"rollout {rollout.id} started: {describe(versions)} pinned"


def run_wave(
    fleet: Session,
    journal: Journal,
    playbook: Playbook,
    decided: Decided,
    reporter: Reporter,
    stop: threading.Event,
) -> WaveResult:
    """Record the decided wave (its rollout, Deployments, resume moves), then run it."""
    inv = fleet.inventory
    request, plan, settings = decided.request, decided.plan, decided.settings
    if decided.done:
        return _done(journal, decided)
    rollout_id, note = _rollout(journal, fleet, decided.targets, request.actor)
    used = {p.spec for p in decided.registered}
    targets = {s: r for s, r in decided.targets.resolutions.items() if s in used}
    result = WaveResult(rollout_id, request.wave,
                        ", ".join(str(v) for v in sorted({r.version for r in targets.values()},
                                                         reverse=True)) or "none",
                        "incomplete", targets={s: str(r.version) for s, r in targets.items()},
                        resume=finishing_command(request.wave, decided.left_out))
    result.notes.extend(n for n in (decided.targets.note, note) if n)
    result.notes.extend(f"warning: {w}" for r in targets.values() for w in r.warnings)
    journal.ensure_deployments(rollout_id, request.wave, [
        DeploymentEntry(p.deployment.id, p.deployment.name, p.deployment.repo, p.target,
                        p.current, target_spec=p.spec)
        for p in decided.registered if p.target is not None])
    for measured in decided.analyses:
        if measured.fresh:  # what the gate judged now; a replayed verdict is journalled
            record_analysis(journal, rollout_id, measured)
        result.notes.append(f"gate: soak analysis of {measured.line()}")
    result.analyses = list(decided.analyses)
    if request.skip_gate_reason:
        journal.record_skip_gate(rollout_id, request.wave, request.actor, request.skip_gate_reason)
    elif decided.reverified:
        result.notes.append(
            f"gate: {decided.reverified} Deployment(s) of earlier waves verified again")
    _record_findings(journal, rollout_id, request, plan, result)
    for w in journal.waves(rollout_id):
        if w.skip_gate is not None:
            result.notes.append(
                f"GATE SKIPPED for wave {w.number} by {w.skip_gate.actor} at "
                f"{w.skip_gate.at.isoformat(timespec='seconds')}: {w.skip_gate.reason}")
    if decided.left_out:
        result.notes.append(
            f"{len(decided.left_out)} Deployment(s) of wave {request.wave} left out, refused by "
            f"the plan (not part of the wave's work): {', '.join(decided.left_out[:10])}")
    untargeted = [p.deployment.name for p in plan.deployments if p.action == "not_targeted"]
    if untargeted:
        result.notes.append(f"{len(untargeted)} Deployment(s) not targeted (no target for their "
                            f"Runtime line), left as they are: {', '.join(untargeted[:10])}")
    items = _items(journal, rollout_id, plan, decided.moves, decided.records)
    before = journal.wave(rollout_id, request.wave)
    if not items and before is not None and before.status == "passed":
        # Nothing left to do: leave the wave (and its soak clock) exactly as it was.
        result.outcomes = _outcomes(journal.deployments(rollout_id, request.wave))
        result.status = "passed"
        passed = before.passed_at.isoformat(timespec="seconds") if before.passed_at else "?"
        result.notes.append(f"wave {request.wave} already passed at {passed}; nothing to do")
        return result
    journal.start_wave(rollout_id, request.wave, soak_seconds=settings.soak_seconds,
                       budget=_budget_settings(settings))
    notifier = Notifier.for_inventory(inv)
    _notify(notifier, "wave_started", result, {"deployments": len(items)})
    runner = WaveRunner(fleet, journal, playbook, rollout_id, settings, plan, reporter, stop)
    try:
        tripped, _ = runner.run(items)
        result.resumable = not runner.target_refused
        _wave_outcome(journal, result, rollout_id, request.wave, tripped, stop.is_set(),
                      left_out=frozenset(decided.left_out))
    except BaseException as exc:
        _record_stop(journal, rollout_id, request.wave, exc)
        raise
    if result.status == "incomplete":
        # The wave stays running in the journal; `status` tells this from a run in flight.
        journal.event(WAVE_LEFT, rollout_id=rollout_id, wave=request.wave,
                      message=result.reason,
                      data={"how": "stopped" if stop.is_set() else "incomplete"})
    if result.status in ("passed", "halted"):
        _notify(notifier, f"wave_{result.status}", result, {"reason": result.reason})
    if result.status == "passed" and all(
        (w := journal.wave(rollout_id, n)) is not None and w.status == "passed"
        for n in {d.wave for d in inv.deployments}
    ):
        journal.complete_rollout(rollout_id)
        result.notes.append(f"rollout {rollout_id} completed: every wave passed")
    return result


def _record_stop(journal: Journal, rollout_id: int, wave: int, exc: BaseException) -> None:
    """Say in the journal why this run of the wave ended unfinished (a system unreachable,
    Ctrl-C, a bug), so ``status`` shows the wave stopped, not running. A journal that
    cannot be written now (the database is gone) is the error already being raised."""
    code = getattr(exc, "exit_code", 1) if isinstance(exc, Exception) else 130
    said = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    with contextlib.suppress(Exception):
        journal.event(WAVE_LEFT, rollout_id=rollout_id, wave=wave,
                      message=f"exit {code}: {said}", data={"how": "stopped", "exit": code})


def _done(journal: Journal, decided: Decided) -> WaveResult:
    """The wave of a completed rollout, run again: nothing to do, nothing written."""
    rollout = decided.targets.rollout
    assert rollout is not None
    wave = decided.request.wave
    before = journal.wave(rollout.id, wave)
    targets = {s: str(r.version) for s, r in decided.targets.resolutions.items()}
    result = WaveResult(rollout.id, wave, ", ".join(sorted(set(targets.values()), reverse=True)),
                        "passed", targets=targets)
    chosen = {p.deployment.id for p in decided.plan.deployments}
    result.outcomes = _outcomes([r for r in journal.deployments(rollout.id, wave)
                                 if r.deployment_id in chosen])
    finished = rollout.finished_at.isoformat(timespec="seconds") if rollout.finished_at else "?"
    passed = (before.passed_at.isoformat(timespec="seconds")
              if before is not None and before.passed_at else "?")
    result.notes.append(f"rollout {rollout.id} completed at {finished} ({describe(rollout.pins)}); "
                        f"wave {wave} passed at {passed}: nothing to do")
    return result


def finishing_command(wave: int, left_out: Sequence[str]) -> str:
    """The command that finishes ``wave``: every Deployment of it, less those the plan
    refuses (named, so the command is not refused for them)."""
    return f"astro-fleet upgrade --wave {wave}" + "".join(
        f" --limit {shlex.quote('!' + name)}" for name in left_out)


def _record_findings(journal: Journal, rollout_id: int, request: WaveRequest, plan: Plan,
                     result: WaveResult) -> None:
    """--accept-migration-findings, used: who accepted which findings, in the journal and
    in every report of the wave."""
    migrating = set(plan.migrating_repos())
    found = {repo: [str(f) for f in lint] for repo, lint in plan.findings.items()
             if repo in migrating and lint}
    if not (request.accept_findings and found):
        return
    total = sum(len(v) for v in found.values())
    message = (f"{request.actor} accepted {total} Airflow 3 migration finding(s) for wave "
               f"{request.wave}: " + ", ".join(f"{r} ({len(v)})" for r, v in found.items()))
    journal.event("migration_findings_accepted", rollout_id=rollout_id, wave=request.wave,
                  message=message, data=found)
    result.notes.append(message)


def _notify(notifier: Notifier | None, event: str, result: WaveResult, extra: dict) -> None:
    """Send a webhook; a failure becomes a note in the recap, never an error."""
    if notifier is None:
        return
    payload = {"rollout": result.rollout_id, "wave": result.wave, "target": result.target, **extra}
    warning = notifier.send(event, payload)
    if warning:
        result.notes.append(f"warning: {warning}")


def _items(journal: Journal, rollout_id: int, plan: Plan, moves: Mapping[str, Resume],
           records: Mapping[str, DeploymentRecord]) -> list[Item]:
    """Record each decided move, list what runs."""
    items = []
    for p in plan.deployments:
        decided = moves.get(p.deployment.id)
        if decided is None:
            continue  # not targeted: not part of the rollout
        if decided.move is not None:
            journal.transition(rollout_id, p.deployment.id, decided.move, message=decided.why)
        if decided.run:
            record = records.get(p.deployment.id)
            items.append(Item(p, decided.state, retry=decided.retry, noop=decided.noop,
                              baseline=record.baseline if record is not None else None))
    return items


def _wave_outcome(
    journal: Journal,
    result: WaveResult,
    rollout_id: int,
    wave: int,
    tripped: str | None,
    interrupted: bool,
    *,
    left_out: frozenset[str] = frozenset(),
) -> WaveResult:
    records = journal.deployments(rollout_id, wave)
    failed = [r for r in records if r.state == FAILED]
    # Skipped (by an older version, for policy) is not done: a wave never passes with it.
    # A row registered by an earlier run whose Deployment the plan now refuses and this run
    # leaves out is not work left: no run could finish it (the resume hint would loop).
    open_ = [r for r in records if r.state not in (VERIFIED, FAILED)
             and r.name not in left_out]
    result.outcomes = _outcomes(records, left_out)
    if tripped:
        result.status, result.reason = "halted", tripped
    elif interrupted:
        result.status, result.reason = "incomplete", "interrupted (Ctrl-C)"
    elif failed:
        result.status = "halted"
        result.reason = f"{len(failed)} Deployment(s) failed: " + ", ".join(
            r.name for r in failed[:10]
        )
    elif open_:
        # Work left outside --limit: the wave stays running until a run finishes it.
        result.status = "incomplete"
        result.reason = (f"{len(open_)} Deployment(s) of the wave not done yet: "
                         + ", ".join(r.name for r in open_[:10]))
        return result
    else:
        result.status = "passed"
    journal.finish_wave(
        rollout_id,
        wave,
        "passed" if result.status == "passed" else "halted",
        reason=result.reason or None,
    )
    return result


def _outcomes(records: Sequence[Any], left_out: frozenset[str] = frozenset()) -> list[Outcome]:
    """One recap line per journal row of the wave (``left_out``: names the plan refuses
    now and the run left out)."""
    return [
        Outcome(
            deployment=r.name,
            repo=r.repo,
            state=r.state,
            result={VERIFIED: "ok", SKIPPED: "skipped", FAILED: "failed"}.get(
                r.state, "left out" if r.name in left_out else "not finished"
            ),
            message=r.error or "",
            deploys=r.deploys,
            from_version=str(r.from_version) if r.from_version else None,
            to_version=str(r.to_version),
        )
        for r in records
    ]


def _budget_settings(wave: WaveSettings) -> dict[str, Any]:
    return {
        "parallel": wave.parallel,
        "batch": list(wave.batch),
        "max_fail_percentage": wave.max_fail_percentage,
        "max_failures": wave.max_failures,
    }
