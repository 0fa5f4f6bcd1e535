"""Decide a wave before anything is written: pins, plan, preflight, gate, resume moves.

``upgrade --wave N`` first reads (the journal, Astro, the repos, the runners) and decides;
only when the whole wave may start does it write (``upgrade.run.rollout``). So a gate
refusal, a failed preflight or a refused target leaves the journal exactly as it was, and
``--dry-run`` and ``plan --wave N`` show the same verdict from the same code:

1. the targets: the active rollout's pins, or every spec resolved now (``pins``);
2. the plan of the whole wave from fresh facts (Deployments outside ``--limit`` are
   registered with their targets, so the wave passes only when they are done too);
3. the preflight of the selected Deployments: the checks the run does first (git clean
   and not mid-rebase, the runner reachable, the repo where the inventory says, the
   verification settings, the Airflow 3 migration lint, the gate's journal reasons);
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
    PlaybookError,
    PolicyRefusal,
    ServiceError,
    UpgradeError,
)
from upgrade.journal.backend import existing_journal
from upgrade.journal.records import DeploymentRecord
from upgrade.journal.store import Journal
from upgrade.model.versions import RuntimeVersion
from upgrade.plan.fleet import Fleet
from upgrade.plan.plan import RUNNING, Plan, PlannedDeployment, Preflight
from upgrade.plan.planner import runtime_context
from upgrade.run import gate
from upgrade.run.pins import Pins, follow
from upgrade.run.resume import Resume, resume

# `plan` imports this module: what only `upgrade` uses (playbook steps and their jinja2,
# the checks and the control plane's httpx) is imported where it is used.
if TYPE_CHECKING:
    from upgrade.config.playbook import Playbook

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
    pins: Pins
    plan: Plan  # the selected Deployments, preflighted
    registered: tuple[PlannedDeployment, ...]  # every targeted Deployment of the wave
    moves: Mapping[str, Resume]  # Deployment id -> what this run does with it
    records: Mapping[str, DeploymentRecord]  # the wave's journal rows before this run
    reverified: int = 0  # earlier Deployments the gate verified again


def decide_wave(
    fleet: Fleet,
    journal: Journal | None,
    playbook: Playbook,
    request: WaveRequest,
    stop: threading.Event,
) -> Decided:
    """Everything ``upgrade --wave N`` decides before it writes; reads only.

    ``journal`` is None when there is none yet. Raises, before anything is written:
    GateRefused (3), PolicyRefusal (3, a target the active rollout did not pin), and
    for a blocked Deployment ServiceError (7, a runner unreachable), InputError (2) or
    PolicyRefusal (3, migration findings not accepted).
    """
    inv = fleet.inventory
    settings = inv.wave(request.wave)
    active = journal.active_rollout() if journal is not None else None
    pins = follow(fleet, active)
    waves = journal.waves(active.id) if journal is not None and active is not None else []
    if request.skip_gate_reason is None:
        reasons = gate.static_reasons(inv, waves, request.wave, datetime.now(UTC))
        if reasons:
            raise gate.refusal(request.wave, reasons)
    selected = fleet.select(request.wave, request.limits)
    chosen = {d.id for d in selected}
    everyone = [d for d in inv.deployments if d.wave == request.wave]
    high_water = journal.high_water() if journal is not None else {}
    whole = fleet.decide(everyone, targets=pins.targets, high_water=high_water)
    plan = fleet.preflight(whole.only(chosen), accept_findings=request.accept_findings)
    plan = plan.with_preflight(Preflight(deployments=verify_problems(fleet, playbook, plan)))
    _refuse_blocked(plan, request)
    decided = Decided(
        request, settings, pins, plan,
        registered=tuple(p for p in whole.deployments if p.target is not None),
        moves={}, records={},
    )
    if request.skip_gate_reason is None and active is not None and journal is not None:
        earlier = [d for d in journal.deployments(active.id)
                   if d.wave < request.wave and d.state == "verified"]
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
    records: dict[str, DeploymentRecord] = {}
    touched: set[str] = set()
    if journal is not None and active is not None:
        records = {r.deployment_id: r for r in journal.deployments(active.id, request.wave)}
        touched = {c.repo for c in journal.repo_changes(active.id)}
    moves = {p.deployment.id: resume(p, records.get(p.deployment.id),
                                     touched=p.deployment.repo in touched)
             for p in plan.deployments if p.action != "not_targeted"}
    return replace(decided, moves=moves, records=records)


def preview(
    fleet: Fleet,
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

    The active rollout's pins (``--target`` must match one), the journal's high-water
    marks, fresh facts, and the preflight: with a wave, the gate's journal reasons mark
    every runnable Deployment blocked. ``offline`` asks no system (no preflight).
    """
    active = journal.active_rollout() if journal is not None else None
    pins = follow(fleet, active)
    high_water = journal.high_water() if journal is not None else {}
    plan = fleet.decide(fleet.select(wave, limits), targets=pins.targets,
                        high_water=high_water, offline=offline, adopt=adopt)
    if offline:
        return plan
    reasons: list[str] = []
    if wave is not None and not skip_gate:
        waves = journal.waves(active.id) if journal is not None and active is not None else []
        reasons = gate.static_reasons(fleet.inventory, waves, wave, datetime.now(UTC))
    plan = fleet.preflight(plan, gate=reasons, accept_findings=accept_findings)
    if playbook is not None:
        plan = plan.with_preflight(Preflight(deployments=verify_problems(fleet, playbook, plan)))
    return plan


def plan_fleet(fleet: Fleet, wave: int | None, limits: Sequence[str], *, offline: bool = False,
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


def verify_problems(fleet: Fleet, playbook: Playbook, plan: Plan) -> dict[str, str]:
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


def step_context_for(fleet: Fleet, target: RuntimeVersion, rollout: str, dep: Deployment,
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
    fleet: Fleet,
    playbook: Playbook,
    rollout_id: int,
    records: Sequence[DeploymentRecord],
    stop: threading.Event,
) -> list[str]:
    """Run each earlier Deployment's own verification again, in parallel; one line per
    failure. The checks are the ones its wave ran (playbook → its wave → its vars) at
    the version it reached, against the baseline taken before its deploy, within a
    shorter time budget."""
    from upgrade.run.verify import run_checks

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


def _refuse_blocked(plan: Plan, request: WaveRequest) -> None:
    """Raise before anything is written when a selected Deployment cannot run now."""
    unpinned = [p for p in plan.deployments
                if p.action == "refuse" and p.target is None and p.spec is not None]
    if unpinned:
        raise PolicyRefusal("; ".join(f"{p.deployment.name}: {p.reason}" for p in unpinned[:5]))
    blocked = [p for p in plan.deployments if p.action == "blocked"]
    if not blocked:
        return
    kinds = {p.refusal for p in blocked}
    error: type[UpgradeError] = (ServiceError if "unreachable" in kinds else
                                 InputError if "input" in kinds else PolicyRefusal)
    lines = "\n".join(f"  - {p.deployment.name}: {p.reason}" for p in blocked[:20])
    more = f"\n  ... and {len(blocked) - 20} more" if len(blocked) > 20 else ""
    for repo in dict.fromkeys(p.repo.repo for p in blocked):
        found = plan.findings.get(repo, ())
        if found:
            more += f"\n{repo}: {len(found)} Airflow 3 migration finding(s) (ruff AIR3):"
            more += "".join(f"\n    {f}" for f in found[:20])
            more += f"\n    ... and {len(found) - 20} more" if len(found) > 20 else ""
    names = " ".join(f"--limit '!{p.deployment.name}'" for p in blocked[:3])
    raise error(
        f"wave {request.wave} cannot start: {len(blocked)} Deployment(s) blocked (nothing was "
        f"changed):\n{lines}{more}\nFix them, or leave them out ({names}); "
        f"`--dry-run` shows the whole plan.")
