"""The pure rules of a rollout, each as a unit: the gate's static reasons, resuming, plan errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from upgrade.config.inventory import Deployment
from upgrade.config.inventory_loader import load_inventory
from upgrade.errors import InputError, PlanRefused, ServiceError
from upgrade.journal.records import DeploymentRecord, Signoff, WaveRecord
from upgrade.model.catalog import load_snapshot
from upgrade.model.versions import parse_version
from upgrade.plan.plan import Plan, PlannedDeployment, RepoChange
from upgrade.run.rollout.gate import static_reasons
from upgrade.run.rollout.resume import resume

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
V = parse_version


@pytest.fixture
def inventory(tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "Dockerfile").write_text("FROM quay.io/astronomer/astro-runtime:12.3.0\n")
    (tmp_path / "inventory.yaml").write_text(
        'target: "12.4"\n'
        "waves:\n  3: {approval: true}\n"
        "repos:\n  repo:\n    path: repo\n    deployments:\n"
        "      - {id: d1, name: one, workspace_id: ws, wave: 1}\n"
        "      - {id: d2, name: two, workspace_id: ws, wave: 2}\n"
        "      - {id: d3, name: three, workspace_id: ws, wave: 3}\n")
    return load_inventory(tmp_path / "inventory.yaml")


def wave(number: int, status: str = "passed", *, soak_until: datetime | None = None,
         approved: bool = False, halt: str | None = None) -> WaveRecord:
    return WaveRecord(1, number, status, NOW, NOW, NOW if status == "passed" else None, 0,
                      soak_until, halt, {}, Signoff("ann@h", NOW, "ok") if approved else None,
                      None)


# ------------------------------------------------------------------------- the gate


def test_the_first_wave_has_nothing_in_its_way(inventory):
    assert static_reasons(inventory, [], 1, NOW) == []


def test_an_earlier_wave_not_started_or_halted_blocks(inventory):
    assert static_reasons(inventory, [], 2, NOW) == [
        "wave 1 has not passed (it is not started): run `astro-fleet upgrade --wave 1` first"]
    halted = wave(1, "halted", halt="1 Deployment(s) failed: one")
    assert static_reasons(inventory, [halted], 2, NOW) == [
        "wave 1 has not passed (it is halted (1 Deployment(s) failed: one)): run "
        "`astro-fleet upgrade --wave 1` first"]


def test_a_soaking_wave_blocks_until_its_soak_ends(inventory):
    soaking = wave(1, soak_until=NOW + timedelta(minutes=5))
    (reason,) = static_reasons(inventory, [soaking], 2, NOW)
    assert reason.startswith("wave 1 is soaking until 2026-12-03T12:05:00+00:00 (5m01s left)")
    assert static_reasons(inventory, [soaking], 2, NOW + timedelta(minutes=5)) == []


def test_approval_is_required_where_the_wave_says_so(inventory):
    earlier = [wave(1), wave(2)]
    assert static_reasons(inventory, earlier, 3, NOW) == [
        'wave 3 requires an approval: `astro-fleet approve --wave 3 --reason "..."`']
    assert static_reasons(inventory, [*earlier, wave(3, "pending", approved=True)], 3,
                          NOW) == []


def test_every_reason_is_given_at_once(inventory):
    assert len(static_reasons(inventory, [wave(1, "running")], 3, NOW)) == 3


# ---------------------------------------------------------------------- resuming


def dep(name: str = "one") -> Deployment:
    return Deployment(id=name, name=name, workspace_id="ws", repo="repo", wave=1,
                      groups=frozenset(), vars={}, own_vars={})


def planned(action: str = "upgrade", refusal: str | None = None) -> PlannedDeployment:
    change = RepoChange("repo", "repo/Dockerfile", V("12.3.0"), "a", "b")
    return PlannedDeployment(dep(), change, V("12.4.0"), action, "because", refusal=refusal)  # type: ignore[arg-type]


def record(state: str, error: str | None = None, started: bool = False) -> DeploymentRecord:
    return DeploymentRecord(1, "one", "one", "repo", 1, state, V("12.3.0"), V("12.4.0"), error,
                            None, 0, 0, None, NOW if started else None, NOW)


@pytest.mark.parametrize(("action", "refusal", "state", "expected"), [
    # verified is done, whatever the plan says now
    ("upgrade", None, "verified", (False, None, None, False)),
    ("noop", None, "verified", (False, None, None, False)),
    # registered by this run, never attempted, or caught mid-way: run from where it stands
    ("upgrade", None, None, (True, "pending", None, False)),
    ("migrate", None, None, (True, "pending", None, False)),
    ("upgrade", None, "pending", (True, "pending", None, False)),
    ("upgrade", None, "deploying", (True, "deploying", None, False)),
    ("noop", None, "committed", (True, "committed", None, False)),
    # failed or skipped before: decided afresh, a failure is a retry
    ("upgrade", None, "failed", (True, "pending", "pending", True)),
    ("upgrade", None, "skipped", (True, "pending", "pending", False)),
])
def test_resume_rules(action, refusal, state, expected):
    got = resume(planned(action, refusal), record(state, error="earlier") if state else None)
    run, start, move, retry = expected
    assert (got.run, got.move, got.retry) == (run, move, retry)
    if run:
        assert got.state == start


@pytest.mark.parametrize(("action", "row", "touched", "noop"), [
    # nothing to do, and nothing of this rollout touched it: only verified
    ("noop", None, False, True),
    ("noop", record("pending"), False, True),
    # worked on in this rollout (a killed run's, a failed one), or its repo changed: it got
    # to the target by our change, so it goes through the steps left, reading their facts
    ("noop", record("rendered", started=True), False, False),
    ("noop", record("deploying", started=True), False, False),
    ("noop", record("failed", error="earlier", started=True), False, False),
    ("noop", record("pending"), True, False),
    ("noop", None, True, False),
    ("upgrade", None, False, False),
])
def test_only_a_deployment_never_worked_on_is_a_noop(action, row, touched, noop):
    got = resume(planned(action), row, touched=touched)
    assert got.run and got.noop == noop


# ---------------------------------------------------------------------- plan errors


def plan(*decided: PlannedDeployment) -> Plan:
    return Plan({"12.4": load_snapshot().resolve("12.4")}, decided)


@pytest.mark.parametrize(("refusals", "error"), [
    ((), None),
    (("policy",), PlanRefused),
    (("input", "policy"), InputError),
    (("unreachable", "input", "policy"), ServiceError),
])
def test_a_plan_says_what_went_wrong_with_the_most_urgent_kind(refusals, error):
    decided = [planned("upgrade"), planned("not_targeted")] + [
        planned("blocked" if kind == "unreachable" else "refuse", kind) for kind in refusals]
    found = plan(*decided).error()
    if error is None:
        assert found is None
    else:
        assert type(found) is error
        assert str(found).startswith(
            f"1 Deployment(s) refused or blocked ({refusals[0]}): one.")
