"""The resume rules: what one run does with one planned Deployment, given its journal row.

Pure. Every run of a wave decides afresh from the plan and the journal, so the same
command resumes after any crash: verified is done, failed and skipped are decided again.
A Deployment the plan refuses never gets here: the wave does not start with one selected
(``upgrade.run.rollout.preflight``).
"""

from __future__ import annotations

from dataclasses import dataclass

from upgrade.journal.records import DeploymentRecord
from upgrade.journal.states import FAILED, PENDING, SKIPPED, VERIFIED
from upgrade.plan.plan import PlannedDeployment


@dataclass(frozen=True)
class Resume:
    """What one run does with one planned Deployment.

    ``move`` is the journal transition to record first (None: none), with ``why``; ``run``
    says whether it is worked on, from ``state``; ``retry`` marks a failed one tried again
    (Astro is asked before deploying it); ``noop`` one with nothing to do, only verified.
    """

    run: bool
    state: str = PENDING
    move: str | None = None
    why: str = ""
    retry: bool = False
    noop: bool = False


def resume(p: PlannedDeployment, record: DeploymentRecord | None, *,
           touched: bool = False) -> Resume:
    """The rules for ``p`` (which the plan runs) whose journal row is ``record`` (None:
    registered by this run); ``touched``: this rollout has changed its repo (a push, a PR)
    already.

    Verified is done; failed and skipped (by an older version) are decided afresh. Only a
    Deployment this rollout never worked on is a no-op when the plan finds it at the
    target: one it did work on (a killed run's, a failed one) got there by our change, and
    goes through the steps left, each of which reads its facts (the merge commit, the
    deploy record) from the system that knows them before it may pass.
    """
    state = record.state if record is not None else PENDING
    noop = p.action == "noop" and not touched and (record is None or record.started_at is None)
    if state == VERIFIED:
        return Resume(run=False)
    if state in (FAILED, SKIPPED):
        # Every run decides afresh: a failure is retried, and one whose reason is gone
        # (the Dockerfile was fixed, Astro now knows the Deployment) runs.
        assert record is not None
        return Resume(run=True, move=PENDING, why=f"retry after: {record.error or state}",
                      retry=state == FAILED, noop=noop)
    return Resume(run=True, state=state, noop=noop)
