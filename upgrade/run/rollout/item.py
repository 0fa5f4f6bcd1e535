"""One Deployment of a wave taken through the playbook's steps, from the state it is at.

An :class:`ItemRunner` does a Deployment's work (render, commit, run, deploy, verify, wait):
each step rendered from its context, run once per repo for a repo step, every state change
committed to the journal before the next step starts. Which Deployment starts when, and
when a wave stops, is :class:`~upgrade.run.rollout.wave.WaveRunner`'s.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from upgrade.config.inventory import Deployment, Repo
from upgrade.config.playbook import Playbook, shared_vars
from upgrade.config.step import Step
from upgrade.config.verify import VerifyConfig, merge_verify_config
from upgrade.config.waves import WaveSettings
from upgrade.errors import DeployRefused, ForgeError, JournalUnreachable, UpgradeError
from upgrade.journal.states import DEPLOYED, DEPLOYING, FAILED, PENDING, RANK, STEP_STATE
from upgrade.journal.store import Journal
from upgrade.plan.plan import Plan, PlannedDeployment, dockerfile_diff
from upgrade.run import steps
from upgrade.run.rollout import gitflow
from upgrade.run.rollout.preflight import step_context_for
from upgrade.run.rollout.progress import ItemResult, Reporter
from upgrade.run.session import Session
from upgrade.run.verify import analysis
from upgrade.run.verify.verify import capture_baseline, run_checks


@dataclass
class Item:
    """One Deployment to run in this wave, with where it starts from."""

    planned: PlannedDeployment
    state: str
    retry: bool = False
    noop: bool = False
    baseline: dict | None = None  # what verification compares with, taken before the deploy
    deployed_at: datetime | None = None  # when this run's deploy command returned
    began: datetime | None = None  # when a worker took it up; told with its first move

    @property
    def deployment(self) -> Deployment:
        """The inventory Deployment."""
        return self.planned.deployment


class ItemRunner:
    """Takes the Deployments of one wave through the playbook, one item per call of
    :meth:`work` (from any worker thread). Holds no state between waves."""

    def __init__(
        self,
        fleet: Session,
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
        self.unsupported: DeployRefused | None = None  # Astro refused the target itself
        self._gits: dict[str, gitflow.RepoGit] = {}
        self._commit_step = next((s for s in playbook.steps if s.kind == "commit"), None)
        self._verify_step = next((s for s in playbook.steps if s.kind == "verify"), None)
        self._planned = fleet.planned(plan)
        by_repo: dict[str, list[Deployment]] = {}
        for p in plan.deployments:
            by_repo.setdefault(p.deployment.repo, []).append(p.deployment)
        self._repo_vars = {repo: shared_vars(deps) for repo, deps in by_repo.items()}

    def local_branch(self, repo: Repo) -> str | None:
        """The branch the playbook's commit step used for ``repo`` (``git.mode: local``)."""
        planned = next((p for p in self.plan.deployments if p.deployment.repo == repo.name), None)
        if self._commit_step is None or planned is None or planned.target is None:
            return None
        context = step_context_for(self.fleet, planned.target, str(self.rollout_id),
                                   planned.deployment, self._repo_vars.get(repo.name, {}),
                                   repo_scope=True)
        return self._commit_step.render_args(context).get("branch")

    def _title(self, step: Step, dep: Deployment) -> str:
        """The step's name, or for the commit step what it does in the repo's git mode (the
        same step commits on a local branch, on the default branch or for a pull request)."""
        if step.kind != "commit":
            return step.name
        mode = self.fleet.inventory.repos[dep.repo].git.mode
        where = {"local": "a local branch", "direct": "the default branch, pushed",
                 "pull-request": "a branch and its pull request"}
        return f"{step.name} ({where.get(mode, mode)}: git.mode {mode})"

    def work(self, item: Item) -> ItemResult:
        """Take ``item`` through the steps it has left; its result. Raises
        JournalUnreachable or ForgeError: not this Deployment's failure, the wave's."""
        dep = item.deployment
        state = item.state
        item.began = datetime.now(UTC)
        try:
            for step in self._steps_from(state, item):
                context = self._context(item, repo_scope=step.scope == "repo")
                if not step.enabled(context):
                    continue
                args = step.render_args(context)
                self.reporter.step_started(dep.name, self._title(step, dep))
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
        except (JournalUnreachable, ForgeError):
            raise  # not this Deployment's failure: the wave stops (_run_item)
        except UpgradeError as exc:
            self.journal.transition(self.rollout_id, dep.id, FAILED, error=str(exc),
                                    data=_began(item))
            self.reporter.item_finished(dep.name, "failed", str(exc))
            refused = exc.__cause__ if isinstance(exc.__cause__, DeployRefused) else exc
            if isinstance(refused, DeployRefused) and refused.reason == "unsupported":
                with self._repo_lock:
                    self.unsupported = self.unsupported or refused
            return "failed"
        except Exception as exc:  # a bug in one worker must not take the wave down unrecorded
            message = f"unexpected error: {type(exc).__name__}: {exc}"
            self.journal.transition(self.rollout_id, dep.id, FAILED, error=message,
                                    data=_began(item))
            self.reporter.item_finished(dep.name, "failed", message)
            return "failed"

    def _steps_from(self, state: str, item: Item) -> list[Step]:
        """The steps still to do for a Deployment that is at ``state`` (resume)."""
        all_steps = list(self.playbook.steps)
        if item.noop:
            return [s for s in all_steps if s.kind == "verify"]
        rank = RANK[state]
        after = PENDING
        start = len(all_steps)
        for i, step in enumerate(all_steps):
            after = STEP_STATE.get(step.kind, after)
            stateful = step.kind in STEP_STATE
            if RANK[after] > rank or (not stateful and RANK[after] == rank):
                start = i
                break
        return all_steps[start:]

    def _advance(self, item: Item, state: str, new_state: str | None, message: str) -> str:
        if new_state is None or RANK[new_state] <= RANK[state]:
            return state
        self.journal.transition(self.rollout_id, item.deployment.id, new_state, message=message,
                                data=_began(item))
        return new_state

    def _deploy(self, item: Item, state: str, args: dict[str, Any]) -> str:
        planned, dep = item.planned, item.deployment
        repo = self.fleet.inventory.repos[dep.repo]
        if repo.git.shared and repo.git.mode == "pull-request" and repo.git.deploy == "ci":
            return self._wait_for_ci(item, state, repo)
        skip = steps.already_at_target(
            self.cp, planned, resuming=state == DEPLOYING or item.retry
        )
        if skip:
            return self._found_deployed(item, state, skip, repo)
        self._capture_baseline(item)
        # In git modes only a clean commit on the remote's default branch is deployed
        # (refused before anything is recorded as deploying).
        commit = gitflow.deployable(self._git(repo)) if repo.git.shared else None
        data = _began(item) or {}
        if commit is not None:
            data["commit"] = commit  # what a resumed run will find Astro's record of
        # Durable before the deploy starts: a crash from here on is resumed by inspecting.
        self.journal.transition(
            self.rollout_id, dep.id, DEPLOYING, count_deploy=True, message="deploy started",
            data=data or None,
        )
        message = steps.deploy(
            self.cp,
            planned,
            self.fleet.host_for(repo),
            repo,
            args.get("description") or self._description(item),
            timeout=float(args["timeout"]) if args.get("timeout") else None,
        )
        item.deployed_at = datetime.now(UTC)
        if commit is not None:
            message += f" from {commit[:12]}"
        return self._reach_deployed(item, DEPLOYING, message, commit, source="astro")

    def _found_deployed(self, item: Item, state: str, why: str, repo: Repo) -> str:
        """Astro runs the target already (``why``): deployed, with, in git modes, the commit
        its deploy record names (a fact read from Astro, never assumed from the checkout)."""
        if not repo.git.shared:
            return self._reach_deployed(item, state, why, source="astro")
        found = gitflow.deployed_record(self.cp, item.deployment)
        if isinstance(found, str):
            return self._reach_deployed(item, state, f"{why}; the commit deployed is unknown: "
                                        f"{found}", source="astro")
        assert found.git is not None
        commit = found.git.commit_sha
        return self._reach_deployed(item, state, f"{why}; deployed from {commit[:12]} (Astro's "
                                    f"deploy record {found.id})", commit, source="astro",
                                    record=found.id)

    def _wait_for_ci(self, item: Item, state: str, repo: Repo) -> str:
        """``deploy: ci``: no deploy of ours; wait until Astro runs the target from a deploy
        of the merge commit (CI's), for at most ``git.ci_timeout``."""
        dep = item.deployment
        assert item.planned.target is not None
        self._capture_baseline(item)
        if state != DEPLOYING:
            self.journal.transition(self.rollout_id, dep.id, DEPLOYING,
                                    message="waiting for CI to deploy the merge commit")
        record = gitflow.wait_for_ci(self.cp, self._git(repo), dep, item.planned.target)
        assert record.git is not None
        commit = record.git.commit_sha
        item.deployed_at = datetime.now(UTC)
        return self._reach_deployed(item, DEPLOYING, f"CI deployed {commit[:12]} (Astro's "
                                    f"deploy record {record.id})", commit, source="astro",
                                    record=record.id)

    def _reach_deployed(self, item: Item, state: str, message: str,
                        commit: str | None = None, *, source: str,
                        record: str | None = None) -> str:
        """Record ``deployed`` with the system that says so (``source``) and, in git
        modes, the commit and Astro's deploy record it was read from."""
        # The journal raises the high-water mark in the same transaction.
        if RANK[DEPLOYED] <= RANK[state]:
            return state
        data = {"source": source, **({"deploy_record": record} if record else {})}
        self.journal.transition(self.rollout_id, item.deployment.id, DEPLOYED,
                                message=message, commit=commit, data=data)
        return DEPLOYED

    def _git(self, repo: Repo) -> gitflow.RepoGit:
        """The repo's git mode for this run (one per repo: it caches the default branch)."""
        with self._repo_lock:
            found = self._gits.get(repo.name)
            if found is None:
                found = self._gits[repo.name] = gitflow.RepoGit(
                    repo, self.fleet.host_for(repo), self.journal, self.rollout_id, self.stop)
            return found

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
        assert item.planned.target is not None  # only targeted Deployments run
        work = steps.RepoWork(
            repo, self.fleet.host_for(repo), item.planned.repo, item.planned.target, branch,
            self._planned,
        )
        if repo.git.shared and step.kind in ("render", "commit"):
            return self._git_step(item, step, args, work)
        if step.kind == "render":
            return steps.render(work)
        if step.kind == "commit":
            return steps.commit(work, args)
        if step.kind == "run":
            return steps.run(work, args)
        raise steps.StepFailed(f"unknown repo step kind '{step.kind}'")

    def _git_step(self, item: Item, step: Step, args: dict[str, Any],
                  work: steps.RepoWork) -> str:
        """render and commit in ``direct`` and ``pull-request`` modes (run/rollout/gitflow.py)."""
        rg = self._git(work.repo)
        branch = work.branch or f"runtime-upgrade/{work.target}"
        # The rewrite of a text read from the remote, or why there is none.
        planned = self.fleet.rewriter(self.plan, work.repo)
        if step.kind == "render":
            steps.ensure_clean(work)
            return gitflow.render(rg, branch, planned)
        given = args.get("message")

        def message(before: str | None) -> str:
            return given or steps.commit_message(work.repo.dockerfile, steps.pinned(before),
                                                 work.target)

        if work.repo.git.mode == "direct":
            return gitflow.commit_direct(rg, message, planned)

        def describe(before: str | None, after: str | None) -> tuple[str, str]:
            return self._pull_request(item, work, before, after)

        return gitflow.commit_pull_request(rg, args.get("branch") or branch, message, describe)

    def _pull_request(self, item: Item, work: steps.RepoWork, before: str | None,
                      after: str | None) -> tuple[str, str]:
        """The pull request's title and description, from the Dockerfile on the base branch
        (``before``) and on the pushed branch (``after``): what, where, the diff, what the
        gate checks. Paths are the repo's own, the same on every machine."""
        repo = work.repo
        deps = [p.deployment.name for p in self.plan.deployments
                if p.deployment.repo == repo.name and p.target is not None]
        checks = ", ".join(self.verify_config(item).names()) or "none"
        old, new = steps.pinned(before), steps.pinned(after) or work.target
        diff = (dockerfile_diff(before, after, repo.dockerfile).rstrip()
                if before is not None and after is not None else "")
        title = f"Upgrade Astro Runtime {old or '?'} → {new} ({repo.name})"
        return title, (
            f"Upgrades Astro Runtime {old or '?'} → {new} in `{repo.dockerfile}`.\n\n"
            f"- Rollout: {self.rollout_id}, wave {self.wave.number} (`astro-fleet status` "
            f"shows it)\n"
            f"- Deployments: {', '.join(deps) or 'none'}\n"
            f"- Deploy: {repo.git.deploy} (after this is merged)\n"
            f"- Verification after the deploy: {checks}\n\n"
            + (f"```diff\n{diff}\n```\n\n" if diff else "")
            + "Opened by astro-fleet-upgrade.\n"
        )

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
        return merge_verify_config(args, self.wave.verify, item.deployment.verify)

    def _verify(self, item: Item, args: dict[str, Any]) -> str:
        dep = item.deployment
        repo = self.fleet.inventory.repos[dep.repo]
        config = merge_verify_config(args, self.wave.verify, dep.verify)
        assert item.planned.target is not None
        verdict = run_checks(
            self.cp,
            config,
            dep,
            item.planned.target,
            self.fleet.catalog,
            baseline=item.baseline,
            host=self.fleet.host_for(repo),
            repo_dir=str(repo.path),
            stop=self.stop,
            deployed_at=item.deployed_at,
        )
        if verdict.interrupted:
            raise steps.Interrupted(f"{dep.name}: verification interrupted")
        if not verdict.ok:
            raise steps.StepFailed(verdict.summary)  # names the Deployment and each failed check
        return verdict.summary

    def _capture_baseline(self, item: Item) -> None:
        # Only what a check (or the soak's analysis) will compare with, and only once: after
        # a crash the stored baseline is the one from before the first deploy attempt.
        config = self.verify_config(item)
        errors = "import_errors" in config.names()
        if item.baseline is not None or not (errors or config.analysis):
            return
        dep = item.deployment
        try:
            info = self.cp.status(dep.id, dep.workspace_id)
        except UpgradeError as exc:
            raise steps.StepFailed(
                f"{dep.name}: cannot take the pre-deploy baseline: {exc}"
            ) from exc
        item.baseline = capture_baseline(self.cp, info) if errors else {}
        runs = analysis.baseline_for(self.cp, info, config, datetime.now(UTC))
        if runs is not None:
            item.baseline = {**item.baseline, "analysis": runs}
        self.journal.set_baseline(self.rollout_id, dep.id, item.baseline)

    def _description(self, item: Item) -> str:
        return (
            f"astro-fleet-upgrade rollout {self.rollout_id} wave {self.wave.number}: "
            f"Astro Runtime {item.planned.target}"
        )

    def _context(self, item: Item, *, repo_scope: bool = False) -> dict[str, Any]:
        dep = item.deployment
        assert item.planned.target is not None
        # A repo step runs once for all of the repo's Deployments in the wave: it sees only
        # the variables they agree on.
        shared = self._repo_vars.get(dep.repo, {}) if repo_scope else dep.vars
        return step_context_for(self.fleet, item.planned.target, str(self.rollout_id), dep, shared,
                       repo_scope=repo_scope)


def _began(item: Item) -> dict[str, str] | None:
    """``{"began": time}`` on the first move of an item this run, so a report can tell the
    first step's duration from the time it waited for a worker; None after that."""
    began, item.began = item.began, None
    return None if began is None else {"began": began.astimezone(UTC).isoformat()}
