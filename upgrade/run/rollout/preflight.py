"""Decide a wave before anything is written: pins, plan, preflight, gate, resume moves.

``upgrade --wave N`` first reads (the journal, Astro, the repos, the runners) and decides;
only when the whole wave may start does it write (``upgrade.run.rollout.rollout``). So a gate
refusal, a failed preflight or a refused target leaves the journal exactly as it was, and
``--dry-run`` and ``plan --wave N`` show the same verdict from the same code:

1. the targets: the active rollout's pins, or every spec resolved now (``pins``);
2. the plan of the whole wave from fresh facts (Deployments outside ``--limit`` that it
   does not refuse are registered with their targets, so the wave passes only when they
   are done too);
3. the preflight of the selected Deployments: the checks the run does first (git clean
   and not mid-rebase, the runner reachable, the repo where the inventory says, the forge
   token of a pull-request repo set and accepted, the verification settings, the
   Airflow 3 migration lint, the gate's journal reasons);
4. the gate's live half: every verified Deployment of earlier waves verified again;
5. the resume rules for each Deployment against its journal row.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from upgrade.config.inventory import Deployment
from upgrade.config.verify import merge_verify_config
from upgrade.config.waves import WaveSettings
from upgrade.errors import (
    InputError,
    Interrupted,
    PlanRefused,
    PlaybookError,
    PolicyRefusal,
    ServiceError,
    UpgradeError,
)
from upgrade.journal.configured import existing_journal
from upgrade.journal.records import DeploymentRecord, WaveRecord
from upgrade.journal.states import VERIFIED
from upgrade.journal.store import Journal
from upgrade.model.versions import RuntimeVersion
from upgrade.plan.plan import RUNNING, Plan, PlannedDeployment, Preflight
from upgrade.plan.planner import runtime_context
from upgrade.plan.targets import Targets
from upgrade.run.rollout import gate
from upgrade.run.rollout import pins as pins_mod
from upgrade.run.rollout.pins import follow
from upgrade.run.rollout.resume import Resume, resume
from upgrade.run.session import Session

# `plan` imports this module: what only `upgrade` uses (playbook steps and their jinja2,
# the checks and the control plane's httpx) is imported where it is used.
if TYPE_CHECKING:
    from upgrade.config.playbook import Playbook
    from upgrade.run.verify.analysis import Measurement

GATE_VERIFY_TIMEOUT = 30.0  # s: a Deployment that soaked should pass at once, not in 15 min


@dataclass(frozen=True)
class WaveRequest:
    """What `astro-fleet upgrade --wave N` asked for."""

    wave: int
    limits: tuple[str, ...] = ()
    actor: str = ""
    skip_gate_reason: str | None = None
    accept_findings: bool = False  # --accept-migration-findings


@dataclass(frozen=True)
class Decided:
    """A wave decided and cleared to start; nothing of it is written yet."""

    request: WaveRequest
    settings: WaveSettings
    targets: Targets
    plan: Plan  # the selected Deployments, preflighted
    registered: tuple[PlannedDeployment, ...]  # every Deployment of the wave it works on
    moves: Mapping[str, Resume]  # Deployment id -> what this run does with it
    records: Mapping[str, DeploymentRecord]  # the wave's journal rows before this run
    reverified: int = 0  # earlier Deployments the gate verified again
    # The soak analyses of earlier waves the gate measured (journalled once the wave starts).
    analyses: tuple[Measurement, ...] = ()
    # Deployments of the wave the plan refuses, outside the selection: not part of the
    # wave's work, so the command that finishes the wave leaves them out too.
    left_out: tuple[str, ...] = ()
    # The rollout completed and every selected Deployment of the wave is verified in it:
    # there is nothing to do, and nothing is written.
    done: bool = False


def decide_wave(
    fleet: Session,
    journal: Journal | None,
    playbook: Playbook,
    request: WaveRequest,
    stop: threading.Event,
) -> Decided:
    """Everything ``upgrade --wave N`` decides before it writes; reads only.

    ``journal`` is None when there is none yet. The same decision as :func:`preview`
    (``plan --wave N``, ``upgrade --dry-run``), and the same exit: a selected Deployment
    the plan refuses or blocks stops the whole wave before anything is written, with
    ServiceError (7, a runner unreachable), InputError (2), GateRefused (3) or
    PlanRefused (3), in that order; PolicyRefusal (3) for a target the active rollout did
    not pin.
    """
    inv = fleet.inventory
    settings = inv.wave(request.wave)
    view = _view(fleet, journal, request.wave, request.limits)
    plan = fleet.preflight(view.plan, accept_findings=request.accept_findings)
    plan = plan.with_preflight(Preflight(deployments=verify_problems(fleet, playbook, plan)))
    reasons = ([] if request.skip_gate_reason is not None else
               gate.static_reasons(inv, view.waves, request.wave, datetime.now(UTC)))
    _refuse(plan, request, reasons)
    left_out = tuple(p.deployment.name for p in view.whole.deployments
                     if p.action == "refuse" and p.deployment.id not in view.chosen)
    # The wave's work: what runs, and what cannot run now (its runner unreachable, its
    # Dockerfile unreadable) outside the selection, so the wave passes only once it is
    # done too. A Deployment the plan refuses is not: nothing would ever finish it.
    decided = Decided(
        request, settings, view.targets, plan,
        registered=tuple(p for p in view.whole.deployments
                         if p.target is not None and p.action != "refuse"),
        moves={}, records=view.records, left_out=left_out, done=view.done,
    )
    if view.done:
        return decided
    active = view.targets.rollout
    if request.skip_gate_reason is None and active is not None and journal is not None:
        earlier = [d for d in journal.deployments(active.id)
                   if d.wave < request.wave and d.state == VERIFIED]
        from upgrade.run.verify import analysis

        # The soak's analyses first: reading their runs is quicker than verifying again.
        measured = analysis.measure_all(fleet.control_plane, journal, earlier,
                                        analysis.workspaces(inv, earlier), datetime.now(UTC))
        blocking = analysis.gate_reasons(measured, request.wave)
        if blocking:
            raise gate.refusal(request.wave, blocking)
        decided = replace(decided, analyses=tuple(measured))
        failures = reverify(fleet, playbook, active.id, earlier, stop)
        if stop.is_set():
            # Interrupted checks prove nothing either way: not a failure, and no reason to
            # skip the gate. Nothing of this wave has been written.
            raise Interrupted(
                f"interrupted while the gate re-verified the {len(earlier)} Deployment(s) of "
                f"earlier waves; wave {request.wave} did not start and nothing was recorded. "
                f"Run `astro-fleet upgrade --wave {request.wave}` again to re-verify and "
                "start it.")
        if failures:
            shown = "; ".join(failures[:10]) + (
                f"; and {len(failures) - 10} more" if len(failures) > 10 else "")
            raise gate.refusal(request.wave, [
                f"{len(failures)} Deployment(s) of earlier waves no longer pass verification: "
                f"{shown}"])
        decided = replace(decided, reverified=len(earlier))
    # Repos this rollout changed already: their Deployments were worked on, never no-ops.
    touched = ({c.repo for c in journal.repo_changes(active.id)}
               if journal is not None and active is not None else set())
    moves = {p.deployment.id: resume(p, view.records.get(p.deployment.id),
                                     touched=p.deployment.repo in touched)
             for p in plan.deployments if p.action != "not_targeted"}
    return replace(decided, moves=moves)


@dataclass(frozen=True)
class _View:
    """A wave (or a selection) as one decision sees it, before the preflight."""

    targets: Targets
    whole: Plan  # every Deployment of the wave (the selection, without a wave)
    plan: Plan  # the selected ones
    chosen: frozenset[str]  # their ids
    waves: Sequence[WaveRecord]  # what the gate reads: the followed rollout's waves
    records: Mapping[str, DeploymentRecord]  # the followed rollout's rows of the wave
    done: bool = False  # a completed rollout in which the selection is verified


def _view(fleet: Session, journal: Journal | None, wave: int | None, limits: Sequence[str], *,
          offline: bool = False, adopt: bool = False) -> _View:
    """The one decision ``plan``, ``upgrade --dry-run`` and ``upgrade`` share.

    The targets are the active rollout's pins; with none active, the last rollout's when
    it completed with what would be pinned now (running one of its waves again is then a
    no-op, when the selection is verified in it), else every spec resolved now. The whole
    wave is decided from fresh facts, then narrowed to the selection, so ``--limit``
    changes what runs, never how a Deployment is decided.
    """
    active = journal.active_rollout() if journal is not None else None
    completed = (pins_mod.last_completed(fleet, journal.rollouts())
                 if journal is not None and active is None and wave is not None else None)
    targets = follow(fleet, active or completed)
    selected = fleet.select(wave, limits)
    chosen = frozenset(d.id for d in selected)
    everyone = ([d for d in fleet.inventory.deployments if d.wave == wave]
                if wave is not None else selected)
    high_water = journal.high_water() if journal is not None else {}
    whole = fleet.decide(everyone, targets=targets, high_water=high_water,
                         offline=offline, adopt=adopt)
    plan = replace(whole.only(chosen), advice=pins_mod.yanked(targets))
    followed = targets.rollout
    if followed is None or journal is None or wave is None:
        return _View(targets, whole, plan, chosen, (), {})
    records = {r.deployment_id: r for r in journal.deployments(followed.id, wave)}
    if completed is None:
        return _View(targets, whole, plan, chosen, journal.waves(followed.id), records)
    if all(p.action not in RUNNING or (p.deployment.id in records
                                       and records[p.deployment.id].state == VERIFIED)
           for p in plan.deployments):
        return _View(targets, whole, plan, chosen, journal.waves(followed.id), records, done=True)
    # Work left in the selection: a rollout started now does it, with the same pins.
    return _View(replace(targets, rollout=None, note=None), whole, plan, chosen, (), {})


def preview(
    fleet: Session,
    journal: Journal | None,
    playbook: Playbook | None,
    wave: int | None,
    limits: Sequence[str],
    *,
    accept_findings: bool = False,
    skip_gate: bool = False,
    offline: bool = False,
    adopt: bool = False,
) -> Plan:
    """What a run would do now, for ``plan`` and ``upgrade --dry-run``; writes nothing.

    The decision :func:`decide_wave` makes (the same targets, facts, preflight and gate),
    shown instead of raised: with a wave, the gate's journal reasons mark every runnable
    Deployment blocked. ``offline`` asks no system (no preflight).
    """
    view = _view(fleet, journal, wave, limits, offline=offline, adopt=adopt)
    if offline:
        return view.plan
    reasons: list[str] = []
    if wave is not None and not skip_gate:
        reasons = gate.static_reasons(fleet.inventory, view.waves, wave, datetime.now(UTC))
        followed = view.targets.rollout
        if journal is not None and followed is not None:
            # What the journal already says of earlier waves' analyses (the gate of
            # `upgrade` measures them afresh, as it verifies them again).
            from upgrade.run.verify import analysis

            earlier = [d for d in journal.deployments(followed.id) if d.wave < wave]
            reasons += analysis.journal_reasons(journal, earlier, wave, datetime.now(UTC))
    plan = fleet.preflight(view.plan, gate=reasons, accept_findings=accept_findings)
    if playbook is not None:
        plan = plan.with_preflight(Preflight(deployments=verify_problems(fleet, playbook, plan)))
    return plan


def plan_fleet(fleet: Session, wave: int | None, limits: Sequence[str], *, offline: bool = False,
               adopt: bool = False) -> tuple[Plan, str | None]:
    """``astro-fleet plan``: the plan under the active rollout's pins (a ``--target`` that
    differs from them plans afresh, with a note), the gate's reasons for ``wave``."""
    existing = existing_journal(fleet.inventory.journal)
    with existing if existing is not None else contextlib.nullcontext():
        try:
            return preview(fleet, existing, None, wave, limits, offline=offline,
                           adopt=adopt), None
        except PolicyRefusal as exc:
            if fleet.inventory.override is None:
                raise
            # A preview of a new target while a rollout is active: show it, say why
            # `upgrade` would refuse it.
            return preview(fleet, None, None, wave, limits, offline=offline,
                           adopt=adopt), f"note: `upgrade` would refuse this target: {exc}"


def verify_problems(fleet: Session, playbook: Playbook, plan: Plan) -> dict[str, str]:
    """Deployment id -> why its merged verification settings are invalid, for each one the
    plan would run (the playbook's verify step renders per Deployment)."""
    step = next((s for s in playbook.steps if s.kind == "verify"), None)
    inv = fleet.inventory
    problems = {}
    for p in plan.deployments:
        if p.action not in RUNNING or p.target is None:
            continue
        dep = p.deployment
        try:
            args = (step.render_args(step_context_for(fleet, p.target, "preflight", dep))
                    if step else None)
            merge_verify_config(args, inv.wave(dep.wave).verify, dep.verify)
        except (PlaybookError, InputError) as exc:
            problems[dep.id] = f"{dep.name}: verification settings: {exc}"
    return problems


def step_context_for(fleet: Session, target: RuntimeVersion, rollout: str, dep: Deployment,
            vars: Mapping[str, Any] | None = None, *, repo_scope: bool = False
            ) -> dict[str, Any]:
    """The template context a playbook step sees for ``dep`` going to ``target`` (a repo
    step: ``repo_scope``, with the ``vars`` the repo's Deployments share)."""
    from upgrade.config.playbook import step_context

    return step_context(
        target=str(target), rollout=rollout, wave=dep.wave,
        repo=fleet.inventory.repos[dep.repo], vars=dep.vars if vars is None else vars,
        runtime=runtime_context(target, fleet.catalog),
        deployment=None if repo_scope else dep,
    )


def reverify(
    fleet: Session,
    playbook: Playbook,
    rollout_id: int,
    records: Sequence[DeploymentRecord],
    stop: threading.Event,
) -> list[str]:
    """Run each earlier Deployment's own verification again, in parallel; one line per
    failure. The checks are the ones its wave ran (playbook → its wave → its vars) at
    the version it reached, against the baseline taken before its deploy, within a
    shorter time budget."""
    from upgrade.run.verify.verify import run_checks

    inv, catalog = fleet.inventory, fleet.catalog
    step = next((s for s in playbook.steps if s.kind == "verify"), None)

    def one(record: DeploymentRecord) -> str | None:
        dep = inv.deployment(record.deployment_id)
        repo = inv.repos[dep.repo]
        args = (step.render_args(step_context_for(fleet, record.to_version, str(rollout_id), dep))
                if step else None)
        config = merge_verify_config(args, inv.wave(dep.wave).verify, dep.verify)
        config = replace(config, timeout=min(config.timeout, GATE_VERIFY_TIMEOUT))
        verdict = run_checks(fleet.control_plane, config, dep, record.to_version, catalog,
                             baseline=record.baseline, host=fleet.host_for(repo),
                             repo_dir=str(repo.path), stop=stop)
        return None if verdict.ok else verdict.summary  # it names the Deployment

    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="gate") as pool:
        return [m for m in pool.map(one, records) if m]


def _refuse(plan: Plan, request: WaveRequest, reasons: Sequence[str]) -> None:
    """Raise before anything is written when a selected Deployment cannot run now, or the
    gate refuses: the exit :meth:`Plan.error` gives ``plan`` and ``--dry-run`` (the gate's
    reasons mark them blocked by policy there), and the same advice (``plan.advice``)."""
    unpinned = [p for p in plan.deployments
                if p.action == "refuse" and p.target is None and p.spec is not None]
    if unpinned:
        raise PolicyRefusal("; ".join(f"{p.deployment.name}: {p.reason}" for p in unpinned[:5]))
    stopped = [p for p in plan.deployments if p.action in ("refuse", "blocked")]
    kinds = {p.refusal for p in stopped}
    if reasons and not kinds & {"unreachable", "input"}:
        raise gate.refusal(request.wave, reasons)
    if not stopped:
        return
    error: type[UpgradeError] = (ServiceError if "unreachable" in kinds else
                                 InputError if "input" in kinds else PlanRefused)
    lines = "\n".join(f"  - {p.deployment.name}: {p.reason}" for p in stopped[:20])
    more = f"\n  ... and {len(stopped) - 20} more" if len(stopped) > 20 else ""
    for repo in dict.fromkeys(p.repo.repo for p in stopped if p.action == "blocked"):
        found = plan.findings.get(repo, ())
        if found:
            more += f"\n{repo}: {len(found)} Airflow 3 migration finding(s) (ruff AIR3):"
            more += "".join(f"\n    {f}" for f in found[:20])
            more += f"\n    ... and {len(found) - 20} more" if len(found) > 20 else ""
    what = " or ".join(a for a in ("refused", "blocked")
                       if any(p.action == a.replace("refused", "refuse") for p in stopped))
    names = " ".join(f"--limit '!{p.deployment.name}'" for p in stopped[:20])
    raise error(
        f"wave {request.wave} cannot start: {len(stopped)} Deployment(s) {what} (nothing was "
        f"changed):\n{lines}{more}\n" + (f"{plan.advice}\n" if plan.advice else "")
        + f"Fix them, or leave them out ({names}); `--dry-run` shows the whole plan.")
