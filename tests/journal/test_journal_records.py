"""Rollouts, waves, Deployments, events and high-water marks as the rollout code uses them."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from tests.journal.helpers import FROM, TARGET, FakeClock, V, deployed_at, entries
from upgrade.config.settings import JournalSettings
from upgrade.errors import IllegalTransition, InputError
from upgrade.journal.records import Rollout, actor
from upgrade.journal.store import Journal

# -- rollouts -------------------------------------------------------------------------------


def test_rollout_records_the_pinned_version_and_who_started_it(journal: Journal,
                                                              clock: FakeClock) -> None:
    r = journal.start_rollout("3.1", V("3.1-12"), Path("fleet/inventory.yaml"), "dan@ops")
    assert (r.target_spec, r.target_version, r.inventory) == ("3.1", V("3.1-12"),
                                                              "fleet/inventory.yaml")
    assert (r.created_by, r.created_at, r.status) == ("dan@ops", clock.now, "active")
    assert journal.active_rollout() == r == journal.get_rollout(r.id)
    started = journal.events(r.id)[0]
    assert (started.kind, started.actor) == ("rollout_started", "dan@ops")
    assert started.data == {"target_spec": "3.1", "target_version": "3.1-12",
                            "inventory": "fleet/inventory.yaml"}


def test_only_one_rollout_is_active_at_a_time(journal: Journal, rollout: Rollout) -> None:
    with pytest.raises(IllegalTransition, match=f"rollout {rollout.id} .* is still active"):
        journal.start_rollout("12.5", V("12.5.0"), "inventory.yaml")
    done = journal.complete_rollout(rollout.id)
    assert done.status == "completed" and done.finished_at is not None
    assert journal.active_rollout() is None
    second = journal.start_rollout("12.5", V("12.5.0"), "inventory.yaml")
    assert [r.id for r in journal.rollouts()] == [rollout.id, second.id]


def test_abandon_records_who_and_why_and_freezes_the_rollout(journal: Journal,
                                                             rollout: Rollout) -> None:
    journal.ensure_deployments(rollout.id, 1, entries(["d1"]))
    with pytest.raises(InputError, match="needs a reason"):
        journal.abandon_rollout(rollout.id, "erin@ops", "   ")
    r = journal.abandon_rollout(rollout.id, "erin@ops", "12.4.2 yanked upstream")
    assert (r.status, r.finished_by, r.finish_reason) == ("abandoned", "erin@ops",
                                                          "12.4.2 yanked upstream")
    with pytest.raises(IllegalTransition, match="is abandoned"):
        journal.transition(rollout.id, "d1", "rendered")
    with pytest.raises(IllegalTransition, match="is abandoned"):
        journal.start_wave(rollout.id, 1)
    assert journal.deployment(rollout.id, "d1").state == "pending"


def test_actor_is_user_at_host() -> None:
    user, _, host = actor().rpartition("@")
    assert user and host


# -- waves ----------------------------------------------------------------------------------


def test_passed_wave_may_be_followed_after_its_soak(journal: Journal, rollout: Rollout,
                                                    clock: FakeClock) -> None:
    assert journal.wave(rollout.id, 1) is None
    w = journal.start_wave(rollout.id, 1, soak_seconds=3600, budget={"max_failures": 2})
    assert (w.status, w.started_at, w.soak_seconds) == ("running", clock.now, 3600)
    clock.advance(90)
    w = journal.finish_wave(rollout.id, 1, "passed", budget={"total": 5, "failed": 1,
                                                             "max_failures": 2})
    assert (w.status, w.passed_at, w.finished_at) == ("passed", clock.now, clock.now)
    assert w.proceed_after == clock.now + timedelta(hours=1)
    assert w.budget == {"total": 5, "failed": 1, "max_failures": 2}
    kinds = [(e.kind, e.wave) for e in journal.events(rollout.id)]
    assert kinds[-2:] == [("wave_started", 1), ("wave_passed", 1)]


def test_halted_wave_needs_a_reason_and_can_be_restarted(journal: Journal,
                                                         rollout: Rollout) -> None:
    journal.start_wave(rollout.id, 1)
    with pytest.raises(IllegalTransition, match="needs a reason"):
        journal.finish_wave(rollout.id, 1, "halted")
    w = journal.finish_wave(rollout.id, 1, "halted", reason="2 of 4 failed > 25%")
    assert (w.status, w.halt_reason, w.passed_at, w.proceed_after) == (
        "halted", "2 of 4 failed > 25%", None, None)
    with pytest.raises(IllegalTransition, match="only a running wave finishes"):
        journal.finish_wave(rollout.id, 1, "passed")
    again = journal.start_wave(rollout.id, 1)
    assert (again.status, again.halt_reason, again.started_at) == ("running", None, w.started_at)


def test_rerunning_a_passed_wave_restarts_its_soak(journal: Journal, rollout: Rollout) -> None:
    journal.start_wave(rollout.id, 1, soak_seconds=60)
    journal.finish_wave(rollout.id, 1, "passed")
    w = journal.start_wave(rollout.id, 1, soak_seconds=60)
    assert (w.status, w.passed_at, w.proceed_after) == ("running", None, None)


def test_finishing_a_wave_never_started_is_a_bug(journal: Journal, rollout: Rollout) -> None:
    with pytest.raises(IllegalTransition, match="not started"):
        journal.finish_wave(rollout.id, 3, "passed")
    with pytest.raises(IllegalTransition, match="passed or halted"):
        journal.finish_wave(rollout.id, 3, "running")  # type: ignore[arg-type]


def test_approval_and_gate_override_are_recorded_with_reason(journal: Journal, rollout: Rollout,
                                                            clock: FakeClock) -> None:
    w = journal.record_approval(rollout.id, 2, "frank@ops", "canary clean for 24h")
    assert w.status == "pending"  # approved ahead of the wave
    assert (w.approval.actor, w.approval.at, w.approval.reason) == (
        "frank@ops", clock.now, "canary clean for 24h")
    w = journal.record_skip_gate(rollout.id, 2, "grace@ops", "wave 1 dag is known-flaky")
    assert w.skip_gate.reason == "wave 1 dag is known-flaky"
    assert w.approval.actor == "frank@ops"
    with pytest.raises(InputError, match="approval of wave 2 needs a reason"):
        journal.record_approval(rollout.id, 2, "frank@ops", "")
    events = journal.events(rollout.id)
    assert [(e.kind, e.actor, e.message) for e in events[-2:]] == [
        ("approval", "frank@ops", "canary clean for 24h"),
        ("skip_gate", "grace@ops", "wave 1 dag is known-flaky")]


# -- deployments ----------------------------------------------------------------------------


def test_ensure_deployments_is_idempotent_and_never_resets(journal: Journal,
                                                          rollout: Rollout) -> None:
    added = journal.ensure_deployments(rollout.id, 1, entries(["d1", "d2"]))
    assert added == ["d1", "d2"]
    journal.transition(rollout.id, "d1", "deploying", count_deploy=True)
    journal.transition(rollout.id, "d1", "deployed")

    added = journal.ensure_deployments(rollout.id, 1, entries(["d1", "d2", "d3"]))

    assert added == ["d3"]
    rows = {d.deployment_id: d for d in journal.deployments(rollout.id)}
    assert {k: d.state for k, d in rows.items()} == {"d1": "deployed", "d2": "pending",
                                                    "d3": "pending"}
    assert rows["d1"].deploys == 1
    assert (rows["d3"].from_version, rows["d3"].to_version, rows["d3"].wave) == (FROM, TARGET, 1)
    registered = [e.deployment_id for e in journal.events(rollout.id) if e.kind == "registered"]
    assert registered == ["d1", "d2", "d3"]
    # The same events, asked for by kind (after a given one, or of every rollout).
    by_kind = journal.events(rollout.id, kind="registered")
    assert [e.deployment_id for e in by_kind] == ["d1", "d2", "d3"]
    assert [e.deployment_id for e in journal.events(rollout.id, by_kind[0].seq,
                                                    kind="registered")] == ["d2", "d3"]
    assert [e.deployment_id for e in journal.events(None, kind="registered")] == ["d1", "d2", "d3"]


def test_deployments_by_wave_in_registration_order(journal: Journal, rollout: Rollout) -> None:
    journal.ensure_deployments(rollout.id, 2, entries(["z-prod", "a-prod"]))
    journal.ensure_deployments(rollout.id, 1, entries(["m-dev"]))
    assert [d.deployment_id for d in journal.deployments(rollout.id)] == [
        "m-dev", "z-prod", "a-prod"]
    assert [d.deployment_id for d in journal.deployments(rollout.id, wave=2)] == [
        "z-prod", "a-prod"]
    assert journal.wave(rollout.id, 2).status == "pending"


def test_baseline_is_kept_with_the_deployment(journal: Journal, rollout: Rollout) -> None:
    journal.ensure_deployments(rollout.id, 1, entries(["d1"]))
    journal.set_baseline(rollout.id, "d1", {"import_errors": ["dags/x.py"], "version": V("12.1.0")})
    assert journal.deployment(rollout.id, "d1").baseline == {"import_errors": ["dags/x.py"],
                                                             "version": "12.1.0"}
    with pytest.raises(IllegalTransition, match="not registered"):
        journal.set_baseline(rollout.id, "nope", {})


# -- events ---------------------------------------------------------------------------------


def test_events_are_append_only_even_for_raw_sql(journal: Journal, settings: JournalSettings,
                                                 rollout: Rollout) -> None:
    seq = journal.event("gate_refused", rollout_id=rollout.id, wave=2, message="wave 1 soaking")
    if settings.url is None:
        raw = sqlite3.connect(settings.file)
        try:
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                raw.execute("UPDATE events SET message = 'edited' WHERE seq = ?", (seq,))
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                raw.execute("DELETE FROM events")
            raw.rollback()
        finally:
            raw.close()
    else:
        # The database enforces it for any client, not only for this tool.
        with psycopg.connect(settings.url, autocommit=True) as raw:
            for sql in ("UPDATE events SET message = 'edited'", "DELETE FROM events",
                        "TRUNCATE events CASCADE"):
                with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                    raw.execute(sql)
    assert journal.events(rollout.id, since_seq=seq - 1)[0].message == "wave 1 soaking"


def test_events_since_seq_and_across_rollouts(journal: Journal, rollout: Rollout) -> None:
    first = journal.event("note", rollout_id=rollout.id, message="one")
    journal.event("lock_takeover", message="took over from pid 4242")  # no rollout yet needed
    second = journal.event("note", rollout_id=rollout.id, message="two", data={"n": 2})
    assert [e.message for e in journal.events(rollout.id, since_seq=first)] == ["two"]
    assert [e.seq for e in journal.events(None, since_seq=first)] == [first + 1, second]
    assert journal.events(rollout.id)[-1].data == {"n": 2}
    assert journal.events(None)[-2].rollout_id is None


# -- high-water marks -----------------------------------------------------------------------


def test_high_water_only_rises_in_runtime_order(journal: Journal) -> None:
    marks = []
    # "12.10.0" < "12.9.0" as strings; as Runtime versions it is higher. Every A.B-N is
    # newer than every X.Y.Z.
    for version, mark in [("12.9.0", "12.9.0"), ("12.10.0", "12.10.0"), ("12.9.5", "12.10.0"),
                          ("12.10.0", "12.10.0"), ("3.0-1", "3.0-1"), ("13.9.9", "3.0-1")]:
        deployed_at(journal, "d1", V(version))
        marks.append(journal.high_water())
        assert marks[-1] == {"d1": V(mark)}, version
    raised = [e.data for e in journal.events(None) if e.kind == "high_water"]
    assert raised == [{"from": None, "to": "12.9.0"}, {"from": "12.9.0", "to": "12.10.0"},
                      {"from": "12.10.0", "to": "3.0-1"}]


def test_deployed_raises_high_water_in_the_same_step(journal: Journal) -> None:
    deployed_at(journal, "old", V("12.5.0"))  # had a newer Runtime before
    rollout = journal.start_rollout("12.4", TARGET, "inventory.yaml", "alice@laptop")
    journal.ensure_deployments(rollout.id, 1, entries(["d1", "old"]))
    journal.transition(rollout.id, "d1", "deploying", count_deploy=True)
    assert "d1" not in journal.high_water()
    journal.transition(rollout.id, "d1", "deployed")
    journal.transition(rollout.id, "old", "verified")
    assert journal.high_water() == {"d1": TARGET, "old": V("12.5.0")}  # never lowered


def test_a_later_journal_sees_marks_from_earlier_rollouts(journal_path: Path) -> None:
    with Journal.open(journal_path) as j:
        r = j.start_rollout("12.4", TARGET, "inventory.yaml")
        j.ensure_deployments(r.id, 1, entries(["d1"]))
        j.transition(r.id, "d1", "verified")
        j.complete_rollout(r.id)
    with Journal.open(journal_path) as j:
        assert j.high_water() == {"d1": TARGET}
