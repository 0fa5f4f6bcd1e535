"""The Deployment state machine: every pair of states, counters, and concurrent workers."""

from __future__ import annotations

import threading
import time
from itertools import product

import pytest

from tests.journal.helpers import entries
from upgrade.errors import IllegalTransition
from upgrade.journal.records import Rollout
from upgrade.journal.states import STATES
from upgrade.journal.store import Journal

# Written out by hand (not derived from the module) so a change to the table shows up here.
FORWARD_ALL = {"rendered", "committed", "tested", "deploying", "deployed", "verified"}
LEGAL = {
    "pending": FORWARD_ALL | {"failed", "skipped"},
    # Verified only after deployed, or from pending with nothing to do.
    "rendered": FORWARD_ALL - {"rendered", "verified"} | {"failed", "skipped"},
    "committed": {"tested", "deploying", "deployed", "failed", "skipped"},
    "tested": {"deploying", "deployed", "failed", "skipped"},
    "deploying": {"deploying", "deployed", "failed"},
    "deployed": {"verified", "failed"},
    "verified": set(),
    "failed": {"pending"},
    "skipped": {"pending"},
}


def bring_to(journal: Journal, rollout_id: int, dep: str, state: str) -> None:
    if state in ("failed", "skipped"):
        journal.transition(rollout_id, dep, state, error="setup")
    elif state != "pending":
        journal.transition(rollout_id, dep, state)


@pytest.mark.parametrize(("src", "dst"), list(product(STATES, STATES)))
def test_transition_table(journal: Journal, rollout: Rollout, src: str, dst: str) -> None:
    journal.ensure_deployments(rollout.id, 1, entries(["d1"]))
    bring_to(journal, rollout.id, "d1", src)
    seq = journal.events(rollout.id)[-1].seq
    error = "why" if dst in ("failed", "skipped") else None

    if dst in LEGAL[src]:
        record = journal.transition(rollout.id, "d1", dst, error=error, message="step done")
        assert record.state == dst == journal.deployment(rollout.id, "d1").state
        moves = [(e.from_state, e.to_state) for e in journal.events(rollout.id, seq)
                 if e.kind == "transition"]
        assert moves == [(src, dst)]
    else:
        with pytest.raises(IllegalTransition, match=f"{src} → {dst} is not a legal transition"):
            journal.transition(rollout.id, "d1", dst, error=error)
        assert journal.deployment(rollout.id, "d1").state == src
        assert journal.events(rollout.id, seq) == []


def test_failure_keeps_error_and_origin_until_retried(journal: Journal, rollout: Rollout) -> None:
    journal.ensure_deployments(rollout.id, 1, entries(["d1"]))
    with pytest.raises(IllegalTransition, match="needs an error"):
        journal.transition(rollout.id, "d1", "failed")
    journal.transition(rollout.id, "d1", "rendered")
    failed = journal.transition(rollout.id, "d1", "failed", error="uv pip compile failed")
    assert (failed.error, failed.failed_from, failed.attempts) == ("uv pip compile failed",
                                                                  "rendered", 1)
    assert journal.events(rollout.id)[-1].message == "uv pip compile failed"
    retried = journal.transition(rollout.id, "d1", "pending", message="resume")
    assert (retried.error, retried.failed_from) == (None, None)
    journal.transition(rollout.id, "d1", "rendered")
    assert journal.deployment(rollout.id, "d1").attempts == 2


def test_deploys_are_counted_only_when_asked(journal: Journal, rollout: Rollout) -> None:
    journal.ensure_deployments(rollout.id, 1, entries(["d1"]))
    first = journal.transition(rollout.id, "d1", "deploying", count_deploy=True)
    assert (first.deploys, first.started_at is not None) == (1, True)
    # Resume after a kill: poll the deploy already started, then re-deploy once.
    assert journal.transition(rollout.id, "d1", "deploying").deploys == 1
    assert journal.transition(rollout.id, "d1", "deploying", count_deploy=True).deploys == 2
    with pytest.raises(IllegalTransition, match="only a move to deploying counts"):
        journal.transition(rollout.id, "d1", "deployed", count_deploy=True)


def test_skip_records_the_reason_without_an_attempt(journal: Journal, rollout: Rollout) -> None:
    journal.ensure_deployments(rollout.id, 1, entries(["d1"]))
    skipped = journal.transition(rollout.id, "d1", "skipped", error="already at 12.4.2")
    assert (skipped.state, skipped.error, skipped.attempts, skipped.started_at) == (
        "skipped", "already at 12.4.2", 0, None)


def test_unknown_deployment_or_state_is_a_bug(journal: Journal, rollout: Rollout) -> None:
    with pytest.raises(IllegalTransition, match="not registered"):
        journal.transition(rollout.id, "ghost", "rendered")
    journal.ensure_deployments(rollout.id, 1, entries(["d1"]))
    with pytest.raises(IllegalTransition, match="unknown state"):
        journal.transition(rollout.id, "d1", "merged")


def test_racing_workers_cannot_both_make_the_same_move(journal: Journal,
                                                       rollout: Rollout) -> None:
    journal.ensure_deployments(rollout.id, 1, entries(["d1"]))
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def worker() -> None:
        start.wait()
        try:
            journal.transition(rollout.id, "d1", "rendered")
            outcomes.append("moved")
        except IllegalTransition:
            outcomes.append("refused")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["moved"] + ["refused"] * 7
    assert [e.kind for e in journal.events(rollout.id)].count("transition") == 1


STEPS = [("rendered", None), ("committed", None), ("failed", "push rejected"), ("pending", None),
         ("tested", None), ("deploying", None), ("deployed", None), ("verified", None)]


def test_1000_deployments_times_8_transitions_from_8_threads(journal: Journal, backend: str,
                                                             rollout: Rollout) -> None:
    # PostgreSQL: the same correctness on a fifth of the work. The cost per transition on
    # either backend is a figure of benchmarks/journal.py, not a limit.
    n = 1000 if backend == "sqlite" else 200
    ids = [f"dep-{i:04d}" for i in range(n)]
    journal.ensure_deployments(rollout.id, 1, entries(ids))
    errors: list[BaseException] = []

    def worker(mine: list[str]) -> None:
        try:
            for dep in mine:
                for state, error in STEPS:
                    journal.transition(rollout.id, dep, state, error=error,
                                       count_deploy=state == "deploying")
        except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(ids[k::8],)) for k in range(8)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began

    assert errors == []
    rows = journal.deployments(rollout.id)
    assert {(d.state, d.attempts, d.deploys, d.error) for d in rows} == {("verified", 2, 1, None)}
    moves: dict[str, list[str]] = {}
    for e in journal.events(rollout.id):
        if e.kind == "transition":
            moves.setdefault(e.deployment_id, []).append(e.to_state)
    assert moves == {dep: [s for s, _ in STEPS] for dep in ids}
    assert len(journal.high_water()) == n
    print(f"\n{n * 8} transitions from 8 threads on {backend}: {elapsed:.2f} s "
          f"({elapsed / (n * 8) * 1000:.3f} ms per transition)")


def test_a_move_names_the_states_it_passes_over(journal: Journal, rollout: Rollout) -> None:
    journal.ensure_deployments(rollout.id, 1, entries(["d1"]))
    journal.transition(rollout.id, "d1", "rendered", data={"began": "t0"})
    journal.transition(rollout.id, "d1", "deploying", count_deploy=True)  # no run step
    journal.transition(rollout.id, "d1", "deployed")
    journal.transition(rollout.id, "d1", "verified")
    data = [e.data for e in journal.events(rollout.id) if e.kind == "transition"]
    assert data == [{"began": "t0"}, {"skipped": ["committed", "tested"]}, None, None]


def test_verified_straight_from_pending_only_with_nothing_done(journal: Journal,
                                                               rollout: Rollout) -> None:
    journal.ensure_deployments(rollout.id, 1, entries(["idle", "retried", "changed"]))
    done = journal.transition(rollout.id, "idle", "verified")  # nothing to do: at target
    assert done.state == "verified"
    assert journal.events(rollout.id)[-2].data["skipped"] == [
        "rendered", "committed", "tested", "deploying", "deployed"]
    journal.transition(rollout.id, "retried", "rendered")
    journal.transition(rollout.id, "retried", "failed", error="push refused")
    journal.transition(rollout.id, "retried", "pending", message="retry")
    journal.record_repo_change(rollout.id, "repo-change", "direct", "pushed", source="git",
                               pushed_commit="abc")
    for dep in ("retried", "changed"):  # worked on, or its repo changed: deployed first
        with pytest.raises(IllegalTransition, match="pending → verified only for a Deployment "
                                                    "with nothing to do"):
            journal.transition(rollout.id, dep, "verified")
        assert journal.deployment(rollout.id, dep).state == "pending"
