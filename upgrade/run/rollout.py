"""Roll one wave out: batches, parallelism per wave and per runner, failure budgets, resume.

The rollout's target is resolved once, when the rollout starts, and pinned in the journal;
every later wave deploys exactly that version. Every state change is committed to the
journal before the next step starts, so the same command resumes after any crash:
verified Deployments are skipped, failed and never-attempted ones run, and one caught
mid-deploy is inspected first (at target: go on to verify; not: deploy again).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from upgrade.config.inventory import Deployment, WaveSettings
from upgrade.config.playbook import Playbook, Step, shared_vars, step_context
from upgrade.errors import EXIT_HALTED, EXIT_OK, InputError, PolicyRefusal, UpgradeError
from upgrade.journal.store import DeploymentEntry, Journal
from upgrade.model.catalog import Resolution
from upgrade.model.versions import RuntimeVersion, parse_version
from upgrade.plan.fleet import Fleet
from upgrade.plan.plan import Plan, PlannedDeployment
from upgrade.run import gate, steps
from upgrade.run.budget import FailureBudget
from upgrade.run.notify import Notifier
from upgrade.run.verify import VerifyConfig, capture_baseline, merge_verify_config, run_checks

# The journal state each step kind leaves a Deployment in, and the order of states.
STEP_STATE = {
    "render": "rendered",
    "commit": "committed",
    "run": "tested",
    "deploy": "deployed",
    "verify": "verified",
}
STATE_RANK = {
    s: i
    for i, s in enumerate(
        ("pending", "rendered", "committed", "tested", "deploying", "deployed", "verified")
    )
}
DEFAULT_PARALLEL = 10

ItemResult = Literal["ok", "failed", "interrupted"]


class Reporter(Protocol):
    """Where progress goes: a live display on a terminal, log lines elsewhere."""

    def wave_started(self, wave: int, target: str, total: int, batches: list[int]) -> None: ...
    def batch_started(self, index: int, size: int) -> None: ...
    def step_started(self, deployment: str, step: str) -> None: ...
    def item_finished(self, deployment: str, result: ItemResult, message: str) -> None: ...
    def note(self, message: str) -> None: ...
    def wave_finished(self) -> None: ...


@dataclass
class Item:
    """One Deployment to run in this wave, with where it starts from."""

    planned: PlannedDeployment
    state: str
    retry: bool = False
    noop: bool = False
    baseline: dict | None = None  # what verification compares with, taken before the deploy
    fail_with: str | None = None  # a reason it cannot run (its runner is unreachable)

    @property
    def deployment(self) -> Deployment:
        """The inventory Deployment."""
        return self.planned.deployment


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
    """The end of one `invoke upgrade --wave N` run."""

    rollout_id: int
    wave: int
    target: str
    status: str  # passed | halted | incomplete
    reason: str = ""
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when the wave passed, 4 when it halted or did not finish."""
        return EXIT_OK if self.status == "passed" else EXIT_HALTED

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
            "deployments": [o.__dict__ for o in self.outcomes],
        }


class WaveRunner:
    """Runs the items of one wave through the playbook. Holds no state between waves."""

    def __init__(
        self,
        fleet: Fleet,
        journal: Journal,
        playbook: Playbook,
        rollout_id: int,
        wave: WaveSettings,
        plan: Plan,
        reporter: Reporter,
        stop: threading.Event,
    ):
        self.fleet, self.journal, self.playbook = fleet, journal, playbook
        self.rollout_id, self.wave, self.plan = rollout_id, wave, plan
        self.reporter, self.stop = reporter, stop
        self.cp = fleet.control_plane
        self._repo_futures: dict[tuple[str, int], Future[str]] = {}
        self._repo_lock = threading.Lock()
        self._commit_step = next((s for s in playbook.steps if s.kind == "commit"), None)
        self._verify_step = next((s for s in playbook.steps if s.kind == "verify"), None)
        by_repo: dict[str, list[Deployment]] = {}
        for p in plan.deployments:
            by_repo.setdefault(p.deployment.repo, []).append(p.deployment)
        self._repo_vars = {repo: shared_vars(deps) for repo, deps in by_repo.items()}
        release = fleet.catalog.get(plan.target)
        self._runtime = {
            "version": str(plan.target),
            "airflow": release.airflow if release else None,
            "python": release.python if release else None,
        }

    # ------------------------------------------------------------------ scheduling

    def run(self, items: list[Item]) -> tuple[str | None, dict[str, ItemResult]]:
        """Run ``items`` batch by batch; return (budget trip message, result per name)."""
        results: dict[str, ItemResult] = {}
        budget = FailureBudget(self.wave.max_fail_percentage, self.wave.max_failures)
        sizes = self.wave.batch_sizes(len(items))
        self.reporter.wave_started(self.wave.number, str(self.plan.target), len(items), sizes)
        position = 0
        limit = self.wave.parallel or DEFAULT_PARALLEL
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="deploy") as pool:
            for index, size in enumerate(sizes):
                if self.stop.is_set() or budget.tripped:
                    break
                batch = items[position : position + size]
                position += size
                budget.start_batch(size)
                self.reporter.batch_started(index + 1, size)
                self._run_batch(pool, batch, limit, budget, results)
        self.reporter.wave_finished()
        return budget.tripped, results

    def _run_batch(
        self,
        pool: ThreadPoolExecutor,
        batch: list[Item],
        limit: int,
        budget: FailureBudget,
        results: dict[str, ItemResult],
    ) -> None:
        waiting: deque[Item] = deque(batch)
        busy: dict[str, int] = {}  # runner name -> Deployments in flight
        in_flight: dict[Future[ItemResult], Item] = {}
        # Finished futures arrive on a queue: waiting on all in-flight futures again after
        # every completion cost a fifth of the orchestrator's CPU at parallel 50.
        finished: queue.SimpleQueue[Future[ItemResult]] = queue.SimpleQueue()
        while waiting or in_flight:
            while waiting and len(in_flight) < limit and not (self.stop.is_set() or budget.tripped):
                item = self._next_startable(waiting, busy)
                if item is None:
                    break
                runner = self.fleet.inventory.runner_of(item.deployment)
                busy[runner.name] = busy.get(runner.name, 0) + 1
                future = pool.submit(self._run_item, item)
                in_flight[future] = item
                future.add_done_callback(finished.put)
            if not in_flight:
                break
            future = finished.get()
            item = in_flight.pop(future)
            runner = self.fleet.inventory.runner_of(item.deployment)
            busy[runner.name] -= 1
            result = future.result()
            results[item.deployment.name] = result
            if result != "interrupted":
                tripped = budget.record(result == "failed")
                if tripped:
                    self.reporter.note(f"budget tripped: {tripped}; no new Deployment starts")

    def _next_startable(self, waiting: deque[Item], busy: dict[str, int]) -> Item | None:
        # The first Deployment whose runner has a free slot: a busy runner never blocks
        # work queued behind it for another runner.
        for i, item in enumerate(waiting):
            runner = self.fleet.inventory.runner_of(item.deployment)
            if busy.get(runner.name, 0) < runner.parallel:
                del waiting[i]
                return item
        return None

    # ------------------------------------------------------------------ one Deployment

    def _run_item(self, item: Item) -> ItemResult:
        dep = item.deployment
        state = item.state
        try:
            if item.fail_with:
                raise steps.StepFailed(item.fail_with)
            for step in self._steps_from(state, item):
                context = self._context(item, repo_scope=step.scope == "repo")
                if not step.enabled(context):
                    continue
                args = step.render_args(context)
                self.reporter.step_started(dep.name, step.name)
                if step.kind == "deploy":
                    state = self._deploy(item, state, args)
                    continue
                if step.scope == "repo":
                    message = self._repo_step(item, step, args)
                else:
                    message = self._deployment_step(item, step, args)
                state = self._advance(item, state, STEP_STATE.get(step.kind), message)
            self.reporter.item_finished(dep.name, "ok", f"{state}")
            return "ok"
        except steps.Interrupted as exc:
            self.reporter.item_finished(dep.name, "interrupted", str(exc))
            return "interrupted"
        except UpgradeError as exc:
            self.journal.transition(self.rollout_id, dep.id, "failed", error=str(exc))
            self.reporter.item_finished(dep.name, "failed", str(exc))
            return "failed"
        except Exception as exc:  # a bug in one worker must not take the wave down unrecorded
            message = f"unexpected error: {type(exc).__name__}: {exc}"
            self.journal.transition(self.rollout_id, dep.id, "failed", error=message)
            self.reporter.item_finished(dep.name, "failed", message)
            return "failed"

    def _steps_from(self, state: str, item: Item) -> list[Step]:
        """The steps still to do for a Deployment that is at ``state`` (resume)."""
        all_steps = list(self.playbook.steps)
        if item.noop:
            return [s for s in all_steps if s.kind == "verify"]
        rank = STATE_RANK[state]
        after = "pending"
        start = len(all_steps)
        for i, step in enumerate(all_steps):
            after = STEP_STATE.get(step.kind, after)
            stateful = step.kind in STEP_STATE
            if STATE_RANK[after] > rank or (not stateful and STATE_RANK[after] == rank):
                start = i
                break
        return all_steps[start:]

    def _advance(self, item: Item, state: str, new_state: str | None, message: str) -> str:
        if new_state is None or STATE_RANK[new_state] <= STATE_RANK[state]:
            return state
        self.journal.transition(self.rollout_id, item.deployment.id, new_state, message=message)
        return new_state

    def _deploy(self, item: Item, state: str, args: dict[str, Any]) -> str:
        planned, dep = item.planned, item.deployment
        skip = steps.already_at_target(
            self.cp, planned, resuming=state == "deploying" or item.retry
        )
        if skip:
            return self._reach_deployed(item, state, skip)
        self._capture_baseline(item)
        # Durable before the deploy starts: a crash from here on is resumed by inspecting.
        self.journal.transition(
            self.rollout_id, dep.id, "deploying", count_deploy=True, message="deploy started"
        )
        repo = self.fleet.inventory.repos[dep.repo]
        message = steps.deploy(
            self.cp,
            planned,
            self.fleet.host_for(repo),
            repo,
            args.get("description") or self._description(),
            timeout=float(args["timeout"]) if args.get("timeout") else None,
        )
        return self._reach_deployed(item, "deploying", message)

    def _reach_deployed(self, item: Item, state: str, message: str) -> str:
        # The journal raises the high-water mark in the same transaction.
        return self._advance(item, state, "deployed", message)

    def _repo_step(self, item: Item, step: Step, args: dict[str, Any]) -> str:
        # Once per repo and step per run: the first Deployment of a repo to get here runs
        # it, the others wait for that result (and share its failure).
        key = (item.deployment.repo, step.index)
        with self._repo_lock:
            future = self._repo_futures.get(key)
            owner = future is None
            if owner:
                future = self._repo_futures[key] = Future()
        assert future is not None
        if owner:
            try:
                future.set_result(self._do_repo_step(item, step, args))
            except BaseException as exc:
                future.set_exception(exc)
        try:
            return future.result()
        except steps.StepFailed as exc:
            if owner:
                raise
            raise steps.StepFailed(f"repo step '{step.name}' failed: {exc}") from exc

    def _do_repo_step(self, item: Item, step: Step, args: dict[str, Any]) -> str:
        repo = self.fleet.inventory.repos[item.deployment.repo]
        branch = None
        if self._commit_step is not None:
            context = self._context(item, repo_scope=True)
            branch = self._commit_step.render_args(context).get("branch")
        work = steps.RepoWork(
            repo, self.fleet.host_for(repo), item.planned.repo, item.planned.target, branch
        )
        if step.kind == "render":
            return steps.render(work)
        if step.kind == "commit":
            return steps.commit(work, args)
        if step.kind == "run":
            return steps.run(work, args)
        raise steps.StepFailed(f"unknown repo step kind '{step.kind}'")

    def _deployment_step(self, item: Item, step: Step, args: dict[str, Any]) -> str:
        if step.kind == "verify":
            return self._verify(item, args)
        if step.kind == "wait":
            return steps.wait(float(args["seconds"]), self.stop)
        raise steps.StepFailed(f"unknown Deployment step kind '{step.kind}'")

    def verify_config(self, item: Item) -> VerifyConfig:
        """The merged checks for one Deployment: playbook step → wave → Deployment vars."""
        step = self._verify_step
        args = step.render_args(self._context(item)) if step is not None else None
        return merge_verify_config(args, self.wave, item.deployment, inventory=self.fleet.inventory)

    def _verify(self, item: Item, args: dict[str, Any]) -> str:
        dep = item.deployment
        repo = self.fleet.inventory.repos[dep.repo]
        config = merge_verify_config(args, self.wave, dep, inventory=self.fleet.inventory)
        verdict = run_checks(
            self.cp,
            config,
            dep,
            self.plan.target,
            self.fleet.catalog,
            baseline=item.baseline,
            host=self.fleet.host_for(repo),
            repo_dir=str(repo.path),
            stop=self.stop,
        )
        if verdict.interrupted:
            raise steps.Interrupted(f"{dep.name}: verification interrupted")
        if not verdict.ok:
            raise steps.StepFailed(verdict.summary)  # names the Deployment and each failed check
        return verdict.summary

    def _capture_baseline(self, item: Item) -> None:
        # Only what a check will compare with, and only once: after a crash the stored
        # baseline is the one from before the first deploy attempt.
        if item.baseline is not None or "import_errors" not in self.verify_config(item).names():
            return
        dep = item.deployment
        try:
            info = self.cp.status(dep.id, dep.workspace_id)
        except UpgradeError as exc:
            raise steps.StepFailed(
                f"{dep.name}: cannot take the pre-deploy baseline: {exc}"
            ) from exc
        item.baseline = capture_baseline(self.cp, info)
        self.journal.set_baseline(self.rollout_id, dep.id, item.baseline)

    def _description(self) -> str:
        return (
            f"astro-fleet-upgrade rollout {self.rollout_id} wave {self.wave.number}: "
            f"Astro Runtime {self.plan.target}"
        )

    def _context(self, item: Item, *, repo_scope: bool = False) -> dict[str, Any]:
        dep = item.deployment
        repo = self.fleet.inventory.repos[dep.repo]
        # A repo step runs once for all of the repo's Deployments in the wave: it sees only
        # the variables they agree on.
        shared = self._repo_vars.get(dep.repo, {}) if repo_scope else dep.vars
        return step_context(
            target=str(self.plan.target),
            rollout=str(self.rollout_id),
            wave=self.wave.number,
            repo=repo,
            vars=shared,
            runtime=self._runtime,
            deployment=None if repo_scope else dep,
        )


@dataclass(frozen=True)
class WaveRequest:
    """What `invoke upgrade --wave N` asked for."""

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
                '`invoke abandon --reason "..."` to start a new one.'
            )
    return active.id, pinned, None


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
    if request.wave not in inv.waves:
        known = ", ".join(str(n) for n in sorted(inv.waves)) or "none"
        raise InputError(f"--wave {request.wave}: the inventory has no such wave (waves: {known}).")
    rollout_id, resolution, note = pinned_target(fleet, journal, request.actor)
    settings = inv.waves[request.wave]
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
    notifier = Notifier.from_inventory(inv)
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
                Notifier.from_inventory(fleet.inventory),
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
            step.render_args(context) if step else None,
            inv.waves.get(dep.wave),
            dep,
            inventory=inv,
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


def _items(journal: Journal, rollout_id: int, plan: Plan, records: dict) -> list[Item]:
    """Classify each planned Deployment: done, refused, or to run (fresh, retried, resumed)."""
    items = []
    for p in plan.deployments:
        record = records[p.deployment.id]
        if record.state == "verified":
            continue
        if p.action == "refuse" and p.refusal == "unreachable":
            # Runs, and fails at once: an unreachable runner counts against the budget.
            if record.state in ("failed", "skipped"):
                journal.transition(
                    rollout_id,
                    p.deployment.id,
                    "pending",
                    message=f"retry after: {record.error or record.state}",
                )
            items.append(
                Item(
                    p,
                    "pending" if record.state in ("failed", "skipped") else record.state,
                    fail_with=p.reason,
                )
            )
            continue
        if p.action == "refuse":
            # A policy refusal (already newer, Airflow 3 not allowed...) is a skip. An input
            # refusal (Astro does not know the Deployment, unreadable Dockerfile) leaves the
            # Deployment un-upgraded, so it fails the wave (exit 4) and is retried by the
            # next run once the input is fixed.
            if record.state not in ("failed", "skipped"):
                skip = p.refusal != "input" and record.state in _SKIPPABLE
                journal.transition(
                    rollout_id, p.deployment.id, "skipped" if skip else "failed", error=p.reason
                )
            continue
        state, retry = record.state, False
        if state in ("failed", "skipped"):
            # Every run decides afresh: a failure is retried, and a refusal whose reason is
            # gone (the Dockerfile was fixed, Astro now knows the Deployment) runs.
            journal.transition(
                rollout_id,
                p.deployment.id,
                "pending",
                message=f"retry after: {record.error or state}",
            )
            state, retry = "pending", state == "failed"
        items.append(Item(p, state, retry=retry, noop=p.action == "noop", baseline=record.baseline))
    return items


_SKIPPABLE = ("pending", "rendered", "committed", "tested")


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
