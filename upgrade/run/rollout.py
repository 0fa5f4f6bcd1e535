"""Roll one wave out: batches, parallelism per wave and per runner, failure budgets, resume.

The rollout's target is resolved once, when the rollout starts, and pinned in the journal;
every later wave deploys exactly that version. Every state change is committed to the
journal before the next step starts, so the same command resumes after any crash:
verified Deployments are skipped, failed and never-attempted ones run, and one caught
mid-deploy is inspected first (at target: go on to verify; not: deploy again).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from upgrade.config.playbook import Playbook, step_context
from upgrade.config.verify import merge_verify_config
from upgrade.config.waves import WaveSettings
from upgrade.errors import PolicyRefusal, WaveHalted
from upgrade.journal.backend import existing_journal, locked_journal
from upgrade.journal.records import DeploymentEntry, DeploymentRecord, Rollout, Signoff
from upgrade.journal.states import FAILED, PENDING, SKIPPABLE, SKIPPED, VERIFIED
from upgrade.journal.store import Journal
from upgrade.model.catalog import Resolution
from upgrade.model.versions import RuntimeVersion, parse_version
from upgrade.plan.fleet import Fleet
from upgrade.plan.plan import Plan, PlannedDeployment
from upgrade.run import gate
from upgrade.run.notify import Notifier
from upgrade.run.verify import run_checks
from upgrade.run.wave import Item, Reporter, WaveRunner


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
    target: str
    status: str  # passed | halted | incomplete
    reason: str = ""
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # From the journal: who ran the wave (each run, resumes included), who approved it and
    # who skipped its gate; each {"actor", "at", "reason"?}.
    runs: list[dict[str, str]] = field(default_factory=list)
    approval: dict[str, str] | None = None
    skip_gate: dict[str, str] | None = None

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
            "status": self.status,
            "reason": self.reason,
            "counts": self.counts(),
            "notes": self.notes,
            "runs": self.runs,
            "approval": self.approval,
            "skip_gate": self.skip_gate,
            "deployments": [o.__dict__ for o in self.outcomes],
        }


@dataclass(frozen=True)
class WaveRequest:
    """What `astro-fleet upgrade --wave N` asked for."""

    wave: int
    limits: tuple[str, ...] = ()
    actor: str = ""
    skip_gate_reason: str | None = None


def pinned_target(fleet: Fleet, journal: Journal, actor: str) -> tuple[int, Resolution, str | None]:
    """The active rollout's pinned target, starting a rollout (and pinning) if none is active.

    A later wave never resolves the spec again: it gets exactly what earlier waves verified.
    Returns (rollout id, resolution, note).
    """
    inv = fleet.inventory
    active = journal.active_rollout()
    if active is None:
        resolution = fleet.resolve()
        rollout = journal.start_rollout(str(inv.target), resolution.version, str(inv.path), actor)
        return (
            rollout.id,
            resolution,
            (f"rollout {rollout.id} started: '{inv.target}' pinned to {resolution.version}"),
        )
    pinned = fleet.catalog.resolve(str(active.target_version), source=f"rollout {active.id}")
    if inv.target_source == "--target" or str(inv.target) != active.target_spec:
        asked = fleet.resolve()
        if asked.version != pinned.version:
            raise PolicyRefusal(
                f"rollout {active.id} is pinned to {pinned.version} (from "
                f"'{active.target_spec}'); the requested target resolves to {asked.version}. "
                "Finish that rollout first, or abandon it with "
                '`astro-fleet abandon --reason "..."` to start a new one.'
            )
    return active.id, pinned, None


def upgrade_wave(
    fleet: Fleet,
    playbook: Playbook,
    request: WaveRequest,
    reporter: Reporter,
    stop: threading.Event,
    *,
    command: str,
) -> WaveResult:
    """``upgrade --wave N``: take the journal lock (named ``command``), run or resume the wave."""
    with locked_journal(fleet.inventory.journal, command) as (journal, note):
        if note:
            reporter.note(f"note: {note}")
        result = run_wave(fleet, journal, playbook, request, reporter, stop)
        record_history(journal, result)
        return result


def record_history(journal: Journal, result: WaveResult) -> None:
    """Who ran the wave, who approved it and who skipped its gate, from the journal."""
    result.runs = [{"actor": e.actor, "at": e.at.isoformat(timespec="seconds")}
                   for e in journal.events(result.rollout_id)
                   if e.kind == "wave_started" and e.wave == result.wave]
    wave = journal.wave(result.rollout_id, result.wave)
    if wave is not None:
        result.approval = _signoff(wave.approval)
        result.skip_gate = _signoff(wave.skip_gate)


def _signoff(signoff: Signoff | None) -> dict[str, str] | None:
    if signoff is None:
        return None
    return {"actor": signoff.actor, "at": signoff.at.isoformat(timespec="seconds"),
            "reason": signoff.reason}


def plan_wave(fleet: Fleet, wave: int, limits: Sequence[str]) -> Plan:
    """What ``upgrade --wave N`` would do now (its dry run): the active rollout's pinned
    target and the journal's high-water marks, with fresh facts. Changes nothing."""
    resolution, high_water = None, {}
    journal = existing_journal(fleet.inventory.journal)
    if journal is not None:
        with journal:
            active = journal.active_rollout()
            if active is not None:
                resolution = fleet.catalog.resolve(str(active.target_version))
            high_water = journal.high_water()
    return fleet.plan(fleet.select(wave, limits), resolution=resolution, high_water=high_water)


def approve(fleet: Fleet, wave: int, actor: str, reason: str, *,
            command: str) -> tuple[int, Resolution, str | None]:
    """Record ``actor``'s approval of ``wave``, starting (and pinning) a rollout if none is
    active; returns (rollout id, pinned target, note). ``command`` names the lock's holder."""
    inv = fleet.inventory
    inv.wave(wave)
    with locked_journal(inv.journal, command) as (journal, _):
        rollout_id, resolution, note = pinned_target(fleet, journal, actor)
        journal.record_approval(rollout_id, wave, actor, reason)
    return rollout_id, resolution, note


def abandon(fleet: Fleet, actor: str, reason: str, *, command: str) -> Rollout | None:
    """End the active rollout (recorded with who and why); None when there is none."""
    with locked_journal(fleet.inventory.journal, command) as (journal, _):
        active = journal.active_rollout()
        if active is None:
            return None
        return journal.abandon_rollout(active.id, actor, reason)


def run_wave(
    fleet: Fleet,
    journal: Journal,
    playbook: Playbook,
    request: WaveRequest,
    reporter: Reporter,
    stop: threading.Event,
) -> WaveResult:
    """Plan the wave from fresh facts, then run what is left of it, recording everything."""
    inv = fleet.inventory
    settings = inv.wave(request.wave)
    rollout_id, resolution, note = pinned_target(fleet, journal, request.actor)
    everyone = [d for d in inv.deployments if d.wave == request.wave]
    selected = fleet.select(request.wave, request.limits)
    plan = fleet.plan(selected, resolution=resolution, high_water=journal.high_water())
    current = {p.deployment.id: p.current for p in plan.deployments}
    journal.ensure_deployments(
        rollout_id,
        request.wave,
        [
            DeploymentEntry(d.id, d.name, d.repo, resolution.version, current.get(d.id))
            for d in everyone
        ],
    )
    result = WaveResult(rollout_id, request.wave, str(resolution.version), "incomplete")
    if note:
        result.notes.append(note)
    result.notes.extend(f"warning: {w}" for w in resolution.warnings)
    _pass_gate(fleet, journal, playbook, rollout_id, request, result, stop)
    records = {r.deployment_id: r for r in journal.deployments(rollout_id, request.wave)}
    runner = WaveRunner(fleet, journal, playbook, rollout_id, settings, plan, reporter, stop)
    for p in plan.deployments:  # a bad verify setting is refused before anything runs
        runner.verify_config(Item(p, "pending"))
    items = _items(journal, rollout_id, plan, records)
    before = journal.wave(rollout_id, request.wave)
    if not items and before is not None and before.status == "passed":
        # Nothing left to do: leave the wave (and its soak clock) exactly as it was.
        result.outcomes = _outcomes(journal.deployments(rollout_id, request.wave))
        result.status = "passed"
        passed = before.passed_at.isoformat(timespec="seconds") if before.passed_at else "?"
        result.notes.append(f"wave {request.wave} already passed at {passed}; nothing to do")
        return result
    journal.start_wave(
        rollout_id,
        request.wave,
        soak_seconds=settings.soak_seconds,
        budget=_budget_settings(settings),
    )
    notifier = Notifier.for_inventory(inv)
    _notify(notifier, "wave_started", result, {"deployments": len(items)})
    tripped, _ = runner.run(items)
    _finish(journal, result, rollout_id, request.wave, tripped, stop.is_set())
    if result.status in ("passed", "halted"):
        _notify(notifier, f"wave_{result.status}", result, {"reason": result.reason})
    if result.status == "passed" and all(
        (w := journal.wave(rollout_id, n)) is not None and w.status == "passed"
        for n in {d.wave for d in inv.deployments}
    ):
        journal.complete_rollout(rollout_id)
        result.notes.append(f"rollout {rollout_id} completed: every wave passed")
    return result


def _pass_gate(
    fleet: Fleet,
    journal: Journal,
    playbook: Playbook,
    rollout_id: int,
    request: WaveRequest,
    result: WaveResult,
    stop: threading.Event,
) -> None:
    """Open the gate for this wave, or raise GateRefused; a skip is recorded, never silent."""
    if request.skip_gate_reason:
        journal.record_skip_gate(rollout_id, request.wave, request.actor, request.skip_gate_reason)
    else:
        decision = gate.check(
            journal,
            fleet.inventory,
            rollout_id,
            request.wave,
            datetime.now(UTC),
            lambda records: _reverify(
                fleet, playbook, rollout_id, parse_version(result.target), records, stop
            ),
        )
        if not decision.open:
            refusal = gate.refuse(journal, rollout_id, decision)
            _notify(
                Notifier.for_inventory(fleet.inventory),
                "gate_refused",
                result,
                {"reasons": list(decision.reasons)},
            )
            raise refusal
        if decision.reverified:
            result.notes.append(
                f"gate: {decision.reverified} Deployment(s) of earlier waves verified again"
            )
    for w in journal.waves(rollout_id):
        if w.skip_gate is not None:
            result.notes.append(
                f"GATE SKIPPED for wave {w.number} by {w.skip_gate.actor} at "
                f"{w.skip_gate.at.isoformat(timespec='seconds')}: {w.skip_gate.reason}"
            )


GATE_VERIFY_TIMEOUT = 30.0  # s: a Deployment that soaked should pass at once, not in 15 min


def _reverify(
    fleet: Fleet,
    playbook: Playbook,
    rollout_id: int,
    target: RuntimeVersion,
    records: Sequence[Any],
    stop: threading.Event,
) -> list[str]:
    """Run each earlier Deployment's own verification again, in parallel; one line per failure.

    The checks are the ones its wave ran (playbook → its wave → its vars), against the
    baseline taken before its deploy, within a shorter time budget.
    """
    inv, catalog = fleet.inventory, fleet.catalog
    step = next((s for s in playbook.steps if s.kind == "verify"), None)
    release = catalog.get(target)
    runtime = {
        "version": str(target),
        "airflow": release.airflow if release else None,
        "python": release.python if release else None,
    }

    def one(record: Any) -> str | None:
        dep = inv.deployment(record.deployment_id)
        repo = inv.repos[dep.repo]
        context = step_context(
            target=str(target),
            rollout=str(rollout_id),
            wave=dep.wave,
            repo=repo,
            vars=dep.vars,
            runtime=runtime,
            deployment=dep,
        )
        config = merge_verify_config(
            step.render_args(context) if step else None, inv.wave(dep.wave).verify, dep.verify
        )
        config = replace(config, timeout=min(config.timeout, GATE_VERIFY_TIMEOUT))
        verdict = run_checks(
            fleet.control_plane,
            config,
            dep,
            target,
            catalog,
            baseline=record.baseline,
            host=fleet.host_for(repo),
            repo_dir=str(repo.path),
            stop=stop,
        )
        return None if verdict.ok else verdict.summary  # it names the Deployment

    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="gate") as pool:
        return [m for m in pool.map(one, records) if m]


def _notify(notifier: Notifier | None, event: str, result: WaveResult, extra: dict) -> None:
    """Send a webhook; a failure becomes a note in the recap, never an error."""
    if notifier is None:
        return
    payload = {"rollout": result.rollout_id, "wave": result.wave, "target": result.target, **extra}
    warning = notifier.send(event, payload)
    if warning:
        result.notes.append(f"warning: {warning}")


@dataclass(frozen=True)
class Resume:
    """What one run does with one planned Deployment, given its journal record (pure).

    ``move`` is the journal transition to record first (None: none), with ``why``; ``run``
    says whether it is worked on, from ``state``; ``retry`` marks a failed one tried again
    (Astro is asked before deploying it); ``fail_with`` makes it fail at once (its runner
    is unreachable, which counts against the budget).
    """

    run: bool
    state: str = "pending"
    move: str | None = None
    why: str = ""
    retry: bool = False
    fail_with: str | None = None


def resume(p: PlannedDeployment, record: DeploymentRecord) -> Resume:
    """The resume rules: verified is done; a refusal is skipped (policy) or failed (input);
    an unreachable runner fails again; failed and skipped are decided afresh."""
    state = record.state
    again = state in (FAILED, SKIPPED)
    retry_why = f"retry after: {record.error or state}"
    if state == VERIFIED:
        return Resume(run=False)
    if p.action == "refuse" and p.refusal == "unreachable":
        return Resume(run=True, state=PENDING if again else state,
                      move=PENDING if again else None, why=retry_why, fail_with=p.reason)
    if p.action == "refuse":
        # A policy refusal (already newer, Airflow 3 not allowed...) is a skip. An input
        # refusal (Astro does not know the Deployment, unreadable Dockerfile) leaves the
        # Deployment un-upgraded, so it fails the wave (exit 4) and is retried by the
        # next run once the input is fixed.
        if again:
            return Resume(run=False)
        skip = p.refusal != "input" and state in SKIPPABLE
        return Resume(run=False, move=SKIPPED if skip else FAILED, why=p.reason)
    if again:
        # Every run decides afresh: a failure is retried, and a refusal whose reason is
        # gone (the Dockerfile was fixed, Astro now knows the Deployment) runs.
        return Resume(run=True, move=PENDING, why=retry_why, retry=state == FAILED)
    return Resume(run=True, state=state)


def _items(journal: Journal, rollout_id: int, plan: Plan, records: dict) -> list[Item]:
    """Apply the resume rules to each planned Deployment: record its move, list what runs."""
    items = []
    for p in plan.deployments:
        record = records[p.deployment.id]
        decided = resume(p, record)
        if decided.move in (FAILED, SKIPPED):
            journal.transition(rollout_id, p.deployment.id, decided.move, error=decided.why)
        elif decided.move is not None:
            journal.transition(rollout_id, p.deployment.id, decided.move, message=decided.why)
        if decided.run:
            items.append(Item(p, decided.state, retry=decided.retry, noop=p.action == "noop",
                              baseline=record.baseline, fail_with=decided.fail_with))
    return items


def _finish(
    journal: Journal,
    result: WaveResult,
    rollout_id: int,
    wave: int,
    tripped: str | None,
    interrupted: bool,
) -> WaveResult:
    records = journal.deployments(rollout_id, wave)
    failed = [r for r in records if r.state == "failed"]
    open_ = [r for r in records if r.state not in ("verified", "skipped", "failed")]
    result.outcomes = _outcomes(records)
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
        result.reason = f"{len(open_)} Deployment(s) of the wave not done yet (outside --limit?)"
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


def _outcomes(records: Sequence[Any]) -> list[Outcome]:
    """One recap line per journal row of the wave."""
    return [
        Outcome(
            deployment=r.name,
            repo=r.repo,
            state=r.state,
            result={"verified": "ok", "skipped": "skipped", "failed": "failed"}.get(
                r.state, "not finished"
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
