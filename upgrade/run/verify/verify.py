"""Post-deploy verification: the checks a wave's gate stands on.

A Runtime can never be rolled back, so these checks are the fleet's only protection: a
bad version must be caught in an early wave. Each check polls until it passes or its
time-out ends, and ends as ``pass``, ``fail`` or ``inconclusive`` (it could not tell:
Astro or the Airflow API kept failing or timing out). A failure that waiting cannot
change (healthy on another Runtime, new DAG import errors) ends the poll at once.

Settings come from three levels, merged by ``upgrade.config.verify``: the playbook's
verify step, then ``waves.N.verify``, then the Deployment's ``vars.verify``; the checks
themselves are in ``upgrade.run.verify.checks``. The semantics (order, reachability,
inconclusive) are documented in docs/verification.md.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from upgrade.config.inventory import Deployment
from upgrade.config.verify import CheckSpec, VerifyConfig
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.controlplane.deployment import DeploymentInfo
from upgrade.errors import (
    AirflowAPIError,
)
from upgrade.hosts.host import Host
from upgrade.model.catalog import Catalog
from upgrade.model.versions import RuntimeVersion
from upgrade.run.verify.checks import FAIL, FINISHERS, INCONCLUSIVE, NOT_RUN, PASS, PROBES, Run
from upgrade.run.verify.look import Abandoned, Attempt, Look

FIRST_POLL = 0.5  # s before the second look; doubles up to the poll interval
MIN_SLOT = 1.0  # s every check gets, even past the overall time-out
COMMAND_GRACE = 5.0  # s past its deadline for a timed-out command to be killed

# ------------------------------------------------------------------------ data types


@dataclass(frozen=True)
class CheckResult:
    """How one check ended: ``pass``, ``fail`` or ``inconclusive``, and why."""

    name: str
    status: str
    message: str
    duration: float = 0.0
    attempts: int = 0

    def to_json(self) -> dict[str, Any]:
        """Plain data for the journal and reports."""
        return {"name": self.name, "status": self.status, "message": self.message,
                "duration": round(self.duration, 3), "attempts": self.attempts}


@dataclass(frozen=True)
class Verdict:
    """The gate's answer for one Deployment: ``ok`` and each check's result."""

    ok: bool
    results: list[CheckResult]
    summary: str
    interrupted: bool = False

    def to_json(self) -> dict[str, Any]:
        """Plain data for the journal and reports."""
        return {"ok": self.ok, "interrupted": self.interrupted, "summary": self.summary,
                "results": [r.to_json() for r in self.results]}


# -------------------------------------------------------------------------- baseline


def capture_baseline(cp: ControlPlane, info: DeploymentInfo) -> dict[str, Any]:
    """The DAG import errors before a deploy: ``{"files": [...], "count", "captured_at"}``.

    Never raises for an Airflow API failure: ``files`` is then None and ``error`` says
    why, and the ``import_errors`` check counts every error after the deploy as new.
    """
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        errors = cp.import_errors(info)
    except AirflowAPIError as exc:
        return {"files": None, "count": None, "captured_at": stamp, "error": str(exc)}
    files = sorted({e.filename for e in errors})
    return {"files": files, "count": len(errors), "captured_at": stamp, "error": None}


def run_checks(
    cp: ControlPlane,
    config: VerifyConfig,
    deployment: Deployment,
    target: RuntimeVersion,
    catalog: Catalog,
    *,
    baseline: dict | None,
    host: Host | None,
    repo_dir: str | None,
    stop: threading.Event,
    deployed_at: datetime | None = None,
) -> Verdict:
    """Run the configured checks in order against one Deployment and return the verdict.

    ``baseline`` is :func:`capture_baseline`'s result from before the deploy (None: every
    import error counts as new). ``host`` and ``repo_dir`` are where ``command`` checks
    run. ``deployed_at`` is when this run's deploy ended (heartbeats must be newer). Once
    a check has failed, later checks still run but look once, without waiting.
    ``stop`` set: returns promptly with ``interrupted`` and ``ok`` False.
    """
    run = Run(cp, config, deployment, target, catalog, baseline, host, repo_dir, stop,
              deployed_at)
    results: list[CheckResult] = []
    for spec in config.checks:
        if stop.is_set():
            run.interrupted = True
        if run.interrupted:
            break
        result = _run_check(run, spec)
        results.append(result)
        if not _counts_as_pass(result, config):
            run.decided = True
    ok = not run.interrupted and all(_counts_as_pass(r, config) for r in results)
    return Verdict(ok=ok, results=results, summary=_summary(deployment, results, ok, run),
                   interrupted=run.interrupted)


def _counts_as_pass(result: CheckResult, config: VerifyConfig) -> bool:
    return result.status == PASS or (
        result.status == INCONCLUSIVE and config.inconclusive == "pass")


def _summary(dep: Deployment, results: list[CheckResult], ok: bool, run: Run) -> str:
    """One line that names the Deployment once, at the start (the rollout shows it as is)."""
    if run.interrupted:
        return f"{dep.name}: verification interrupted before it finished."
    if ok:
        notes = [f"{r.name} inconclusive (counted as pass)" for r in results
                 if r.status == INCONCLUSIVE]
        names = ", ".join(r.name for r in results if r.status == PASS)
        return f"{dep.name}: verified ({names or 'no checks'})" + (
            f"; {'; '.join(notes)}" if notes else "") + "."
    failed = [r for r in results if not _counts_as_pass(r, run.config)]
    # Checks skipped for the reason an earlier one already gave are listed, not repeated.
    skipped = [r.name for r in failed if r.message.startswith(NOT_RUN)]
    bad = [f"{r.name} {r.status}: {r.message.rstrip('.')}" for r in failed
           if not r.message.startswith(NOT_RUN)]
    if skipped:
        bad.append(f"not run: {', '.join(skipped)}")
    return f"{dep.name}: verification failed: " + "; ".join(bad) + "."


def _run_check(run: Run, spec: CheckSpec) -> CheckResult:
    """Poll one check until it passes, fails for good, or its deadline passes; then let it
    undo what it changed (the canary's unpause), which may fail a check that passed."""
    started = time.monotonic()
    deadline, budget = _deadline(spec, started, run)
    attempt = Attempt(spec, started, deadline, one_look=run.decided)
    result = _poll(run, spec, attempt, budget)
    finish = FINISHERS.get(spec.name)
    note = finish(run, attempt) if finish else None
    if note is None:
        return result
    status = FAIL if note.state == FAIL and result.status == PASS else result.status
    return replace(result, status=status, message=f"{result.message} {note.message}",
                   duration=time.monotonic() - started)


def _poll(run: Run, spec: CheckSpec, attempt: Attempt, budget: str) -> CheckResult:
    started, deadline = attempt.started, attempt.deadline
    # A command is killed at the deadline; give that kill time to be reported as such.
    grace = COMMAND_GRACE if spec.name == "command" else 0.0
    probe = PROBES[spec.name]
    last: Look | None = None
    attempts = 0

    def result(status: str, message: str) -> CheckResult:
        if attempt.one_look and status != PASS and not message.startswith(NOT_RUN):
            message += " (looked once: verification had already failed)"
        return CheckResult(spec.name, status, message, time.monotonic() - started, attempts)

    while True:
        attempts += 1
        attempt.tries = attempts
        try:
            look = run.call(lambda: probe(run, attempt), deadline + grace)
        except Abandoned as gone:
            if gone.stopped:
                run.interrupted = True
                return result(INCONCLUSIVE, "interrupted")
            if last is None:
                return result(INCONCLUSIVE, f"no answer within {budget}.")
            break
        last = look
        if look.state == PASS:
            return result(PASS, look.message)
        if look.final or attempt.one_look:
            break
        # Look again soon, then back off to the poll interval: right after a deploy most
        # Deployments turn healthy within seconds, a few take minutes.
        delay = min(spec.poll_interval, FIRST_POLL * 2 ** (attempts - 1))
        if time.monotonic() + delay > deadline:
            break
        if run.stop.wait(delay):
            run.interrupted = True
            return result(INCONCLUSIVE, "interrupted")
    assert last is not None
    if last.state == "unknown":
        return result(INCONCLUSIVE, last.message)
    if last.final or attempt.one_look:
        return result(FAIL, last.message)
    return result(FAIL, f"not passed within {budget}: {last.message}")


def _deadline(spec: CheckSpec, started: float, run: Run) -> tuple[float, str]:
    """When the check must end, and that budget in words (the limit that applied)."""
    own = started + spec.timeout
    slot = min(spec.timeout, MIN_SLOT)
    # Even when earlier checks used up the overall budget, each check gets a short slot.
    deadline = max(min(own, run.deadline), started + slot)
    left, overall = run.deadline - started, _seconds_text(run.config.timeout)
    if deadline == own:
        return deadline, f"{_seconds_text(spec.timeout)} s"
    if left >= slot - 0.05:  # the overall time-out ended it (give or take a rounding)
        if left >= run.config.timeout - 0.05:
            return deadline, f"{_seconds_text(left)} s (the verification's time-out)"
        return deadline, (f"{_seconds_text(left)} s (what was left of the verification's "
                          f"{overall} s time-out)")
    return deadline, (f"{_seconds_text(slot)} s (the least a check gets; the verification's "
                      f"{overall} s time-out left {_seconds_text(max(0.0, left))} s)")


def _seconds_text(seconds: float) -> str:
    return f"{seconds:.0f}" if seconds >= 10 else f"{round(seconds, 1):g}"


