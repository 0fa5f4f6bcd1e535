"""What `invoke upgrade` refuses, and what it must leave untouched when it does.

One writer (invariant 5), a journal that is not ours, --dry-run, a policy refusal inside
a wave, a pinned target (invariant 2), and the repo-cleanliness guard of the render step.
"""

from __future__ import annotations

import json
import re
import socket
import sqlite3
from pathlib import Path

import pytest
from simulators import SimHandle
from support import SampleFleet, without_soak

from fleet_sim.forge import ForgeServer
from tests.rollout.helpers import (
    TARGET,
    deploy_children,
    git,
    kill_group,
    lock_holder_pid,
    make_fleet,
    records,
    wait_for,
)
from upgrade.journal.records import os_user
from upgrade.journal.store import Journal

SINCE = r"since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+s ago\)"


@pytest.mark.slow
def test_a_second_run_is_refused_while_the_first_holds_the_lock(tmp_path, sim: SimHandle) -> None:
    fleet = make_fleet(tmp_path, sim, repos=2, wave={"parallel": 2})
    for dep in fleet.deps:
        sim.set_fault(dep.id, deploy_extra_seconds=60_000)  # 60 s builds: the first run lasts
    first = fleet.start("upgrade", "--wave", "1")
    children: list[int] = []
    try:
        wait_for(lambda: lock_holder_pid(fleet.lock_file) == first.pid, what="the lock")

        second = fleet.invoke("upgrade", "--wave", "1")
        refused_unlock = fleet.invoke("unlock")

        assert first.poll() is None  # still running: both refusals happened while it lived
        children = [c for d in fleet.deps for c in deploy_children(first.pid, d.id)]
        assert children  # the two deploys are in flight
    finally:
        first.kill()  # then it is a dead run that left its name in the lock file
        first.communicate()
    for child in children:
        kill_group(child)
    holder = (rf"astro-fleet upgrade --wave 1 by {re.escape(os_user())} on "
              rf"{re.escape(socket.gethostname())}, pid {first.pid}, {SINCE}")
    assert second.returncode == 6, second.stdout + second.stderr
    assert re.search(rf"error: another run holds the journal lock: {holder}\. Wait for it, or "
                     r"if it is dead run `astro-fleet unlock`\.", second.stderr), second.stderr
    assert "Traceback" not in second.stderr and second.stdout == ""
    assert refused_unlock.returncode == 6, refused_unlock.stdout + refused_unlock.stderr
    assert re.search(rf"a live run holds the journal lock: {holder}\. It is not stale, so it was "
                     "not cleared", refused_unlock.stderr), refused_unlock.stderr
    # The refused run changed nothing: one rollout, one deploy started per Deployment.
    with fleet.journal() as journal:
        assert len(journal.rollouts()) == 1
    assert {r.deploys for r in fleet.records().values()} == {1}

    cleared = fleet.invoke("unlock")  # now the holder is dead: unlock clears its name

    assert cleared.returncode == 0, cleared.stderr
    assert re.search(rf"cleared: cleared the journal lock left by {holder}\.", cleared.stdout)
    assert fleet.lock_file.read_text() == ""
    for dep in fleet.deps:
        sim.clear_faults(dep.id)
    done = fleet.invoke("upgrade", "--wave", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "took over" not in done.stderr  # nothing left to take over after unlock
    assert fleet.lock_file.read_text() == ""  # a clean exit leaves the lock nameless
    assert {r.state for r in fleet.records().values()} == {"verified"}
    again = fleet.invoke("unlock")
    assert (again.returncode, again.stdout.strip()) == (0, "the journal was not locked")


@pytest.mark.parametrize("kind", ["garbage", "foreign-sqlite"])
def test_a_journal_file_that_is_not_ours_is_refused_and_left_byte_for_byte(
    tmp_path, sim: SimHandle, kind: str
) -> None:
    fleet = make_fleet(tmp_path, sim, repos=2)
    fleet.journal_file.parent.mkdir(mode=0o700)
    if kind == "garbage":
        fleet.journal_file.write_bytes(bytes(range(256)) * 40)
        message = (f"{fleet.journal_file} is not a SQLite database (damaged, or some other file). "
                   "It was left untouched")
    else:
        db = sqlite3.connect(fleet.journal_file)
        db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
        db.execute("INSERT INTO invoices (amount) VALUES (12.5)")
        db.commit()
        db.close()
        message = (f"{fleet.journal_file} is a SQLite database of another application, not an "
                   "upgrade journal. It was left untouched")
    before = fleet.journal_file.read_bytes()
    siblings = sorted(p.name for p in fleet.journal_file.parent.iterdir())

    for args in (("upgrade", "--wave", "1"), ("status",), ("upgrade", "--wave", "1", "--json")):
        out = fleet.invoke(*args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert message in out.stderr and "Traceback" not in out.stderr

    assert fleet.journal_file.read_bytes() == before
    assert not Path(f"{fleet.journal_file}-wal").exists()
    assert not Path(f"{fleet.journal_file}-shm").exists()
    assert {p.name for p in fleet.journal_file.parent.iterdir()} <= {*siblings, "lock"}
    assert fleet.attempts() == {d.name: 0 for d in fleet.deps}
    for repo in ("r00", "r01"):
        assert git(fleet.repo_path(repo), "branch", "--format=%(refname:short)").split() == ["main"]


def test_dry_run_lists_the_steps_and_changes_nothing(sample_fleet: SampleFleet, sim: SimHandle) -> None:
    sample_fleet.use_simulator(sim.url)
    sample_fleet.seed()
    files = {p: p.read_bytes() for p in sample_fleet.root.rglob("*") if p.is_file()}

    out = sample_fleet.invoke("upgrade", "--wave", "1", "--dry-run")
    as_json = sample_fleet.invoke("upgrade", "--wave", "1", "--dry-run", "--json")

    assert out.returncode == 0, out.stdout + out.stderr
    assert "Plan: 8 to upgrade, 0 already at their target, 0 refused." in out.stdout
    assert ("Would run playbook upgrade.yaml ('Upgrade Astro Runtime') for each upgrading "
            "Deployment (dry run: nothing was changed):") in out.stdout
    steps = [ln.strip() for ln in out.stdout.splitlines() if re.match(r"\s+\d\. ", ln)]
    assert steps == [
        "1. Rewrite the Dockerfile [render, once per repo]",
        "2. Commit the change [commit, once per repo]",
        "3. Parse the DAGs [run, once per repo] when {{ vars.run_parse | default(false) }}",
        "4. Deploy [deploy, once per deployment]",
        "5. Verify the new Runtime is running and healthy [verify, once per deployment]",
    ]
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert [s["kind"] for s in doc["steps"]] == ["render", "commit", "run", "deploy", "verify"]
    assert doc["summary"] == {"upgrade": 8, "migrate": 0, "noop": 0, "not_targeted": 0,
                              "refuse": 0, "blocked": 0}
    # Nothing was written: no journal, not a byte of any repo, no deploy.
    assert not (sample_fleet.root / ".upgrade").exists()
    assert {p: p.read_bytes() for p in sample_fleet.root.rglob("*") if p.is_file()} == files
    deployments = sim.state()["deployments"]
    assert len(deployments) == 24 and all(not d["deploy_attempts"] for d in deployments)


@pytest.mark.slow
@pytest.mark.timeout(300)  # four waves, a pull request and a CI deploy, on a shared machine
def test_the_mixed_sample_fleet_rolls_out_each_line_to_its_own_pin(
    sample_fleet: SampleFleet, sim: SimHandle, forge: ForgeServer
) -> None:
    """Waves 1-3 move Airflow 2 to 13.x and Airflow 3 to 3.1-N (a repo held on 3.0-N);
    wave 3 does not start while it holds the policy refusal, and runs once that is left
    out by name; wave 4 migrates a group to Airflow 3
    once its lint findings are accepted; every Deployment ends verified at its own line's
    pinned target and verify-all finds no drift."""
    # No soak so the waves may follow each other at once; the gate still re-verifies.
    sample_fleet.inventory.write_text(without_soak(sample_fleet.inventory.read_text()))
    sample_fleet.use_simulator(sim.url)
    sample_fleet.use_forge(forge)  # customer-360 changes through a pull request
    sample_fleet.seed()
    partner = sample_fleet.repo("partner-feeds") / "Dockerfile"
    partner_before = partner.read_bytes()

    wave1 = sample_fleet.invoke("upgrade", "--wave", "1")
    wave2 = sample_fleet.invoke("upgrade", "--wave", "2")
    refused = sample_fleet.invoke("upgrade", "--wave", "3")
    approve = sample_fleet.invoke("approve", "--wave", "3", "--reason", "CHG-1234 approved by CAB")
    held = sample_fleet.invoke("upgrade", "--wave", "3")
    wave3 = sample_fleet.invoke("upgrade", "--wave", "3", "--limit", "!partner-feeds-prod")

    assert (wave1.returncode, wave2.returncode) == (0, 0), wave1.stderr + wave2.stderr
    assert "gate: 8 Deployment(s) of earlier waves verified again" in wave2.stdout
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert ('wave 3 requires an approval: `astro-fleet approve --wave 3 --reason "..."`'
            in refused.stderr)
    assert approve.returncode == 0, approve.stderr
    # partner-feeds is past its 12.4: the wave does not start with it, and says how to go on.
    assert held.returncode == 3, held.stdout + held.stderr
    assert "wave 3 cannot start: 1 Deployment(s) refused (nothing was changed)" in held.stderr
    assert "(deployed version is 12.5.0, target is 12.4.0)" in held.stderr
    assert "--limit '!partner-feeds-prod'" in held.stderr
    assert wave3.returncode == 0, wave3.stdout + wave3.stderr
    assert "1 Deployment(s) of wave 3 left out, refused by the plan" in wave3.stdout
    assert not any(ln.startswith("partner-feeds-prod ") for ln in wave3.stdout.splitlines())
    assert "gate: 13 Deployment(s) of earlier waves verified again" in wave3.stdout
    assert "rollout 1 completed" not in wave3.stdout  # wave 4 is still to come

    journal_file = sample_fleet.root / ".upgrade" / "journal.db"
    before = journal_file.read_bytes()
    blocked = sample_fleet.invoke("upgrade", "--wave", "4")
    assert blocked.returncode == 3, blocked.stdout + blocked.stderr
    assert "wave 4 cannot start: 2 Deployment(s) blocked (nothing was changed)" in blocked.stderr
    assert "Airflow 3 migration finding(s) in customer-360's DAGs" in blocked.stderr
    assert "dags/legacy_segments.py:14: AIR301 `schedule_interval` is removed" in blocked.stderr
    assert journal_file.read_bytes() == before
    wave4 = sample_fleet.invoke("upgrade", "--wave", "4", "--accept-migration-findings")
    assert wave4.returncode == 0, wave4.stdout + wave4.stderr
    assert "accepted 8 Airflow 3 migration finding(s) for wave 4: customer-360 (8)" in wave4.stdout
    assert "rollout 1 completed: every wave passed" in wave4.stdout
    rows = records(journal_file)
    assert "partner-feeds-prod" not in rows  # left out: never part of the rollout's work
    assert len(rows) == 23 and {r.state for r in rows.values()} == {"verified"}
    # Each line at its own pin, as Astro runs it and as the journal recorded it.
    expected = {"events-stream": "3.1-17", "reverse-etl": "3.0-14", "customer-360": "3.1-17"}
    for name, row in rows.items():
        want = expected.get(row.repo, "13.9.0")
        assert (str(row.to_version), sim.deployment(row.deployment_id)["runtime_version"]) == (
            want, want), name
    assert rows["reverse-etl-prod"].target_spec == "3.0"
    assert rows["customer-360-dev"].target_spec == "3.1"
    migrated = (sample_fleet.repo("customer-360") / "Dockerfile").read_text()
    assert "FROM astrocrpublic.azurecr.io/runtime:3.1-17-python-3.12-base\n" in migrated
    with Journal.open(journal_file) as journal:
        accepted = [e for e in journal.events(1) if e.kind == "migration_findings_accepted"]
        pins = {spec: str(v) for spec, v in journal.get_rollout(1).pins.items()}  # type: ignore[union-attr]
    assert pins == {"13": "13.9.0", "3.1": "3.1-17", "12.4": "12.4.0", "3.0": "3.0-14"}
    assert len(accepted) == 1 and accepted[0].wave == 4
    assert len(accepted[0].data["customer-360"]) == 8  # type: ignore[index]
    report4 = (sample_fleet.root / ".upgrade" / "reports" / "rollout-1-wave-4.md").read_text()
    assert "accepted 8 Airflow 3 migration finding(s)" in report4
    drift = sample_fleet.invoke("verify-all")
    assert drift.returncode == 0, drift.stdout + drift.stderr
    assert sim.deployment("cm1ptnprd000017")["deploy_attempts"] == []
    assert partner.read_bytes() == partner_before
    assert sample_fleet.git("partner-feeds", "branch", "--format=%(refname:short)").split() == ["main"]
    with Journal.open(sample_fleet.root / ".upgrade" / "journal.db") as journal:
        approval = journal.wave(1, 3).approval
    assert approval is not None and approval.reason == "CHG-1234 approved by CAB"
    report = (sample_fleet.root / ".upgrade" / "reports" / "rollout-1-wave-3.md").read_text()
    assert re.search(rf"^- approved by {re.escape(approval.actor)} at \S+: CHG-1234 approved by "
                     "CAB$", report, re.M), report
    assert "- gate: passed (not skipped)" in report


@pytest.mark.slow
def test_a_rollout_keeps_its_pinned_target_until_abandoned(tmp_path, sim: SimHandle) -> None:
    fleet = make_fleet(tmp_path, sim, repos=2)
    part = fleet.invoke("upgrade", "--wave", "1", "--limit", "r00-d0")
    assert part.returncode == 4, part.stdout + part.stderr  # the wave is not finished
    # The hint finishes the wave: the same --limit again would end INCOMPLETE again.
    assert "resume with: astro-fleet upgrade --wave 1\n" in part.stderr

    by_flag = fleet.invoke("upgrade", "--wave", "1", "--target", "12.5")
    fleet.inventory.write_text(fleet.inventory.read_text().replace("target: '12.4'", "target: '12.5'"))
    by_inventory = fleet.invoke("upgrade", "--wave", "1")

    assert by_flag.returncode == 3, by_flag.stdout + by_flag.stderr
    assert ("rollout 1 pinned '12.4' → 12.4.0; --target 12.5 resolves to 12.5.0. Leave --target "
            "out to follow the rollout, or finish it, or abandon it with `astro-fleet abandon "
            '--reason "..."` to start a new one.') in by_flag.stderr
    assert by_inventory.returncode == 3, by_inventory.stdout + by_inventory.stderr
    assert ("r01-d0: its target '12.5' (from inventory) is not one the active rollout pinned "
            "('12.4' → 12.4.0). Finish or abandon that rollout to change targets.") in by_inventory.stderr
    assert fleet.deploy_counts() == {"r00-d0": 1, "r01-d0": 0}
    assert fleet.records()["r01-d0"].state == "pending"

    abandon = fleet.invoke("abandon", "--reason", "12.5 fixes the scheduler leak")
    assert abandon.returncode == 0, abandon.stderr
    assert "rollout 1 (→ 12.4.0) abandoned: 12.5 fixes the scheduler leak" in abandon.stdout
    fresh = fleet.invoke("upgrade", "--wave", "1")

    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "rollout 2 started: '12.5' → 12.5.0 pinned" in fresh.stdout
    with fleet.journal() as journal:
        first, second = journal.rollouts()
        marks = {k: str(v) for k, v in journal.high_water().items()}
    assert (first.status, first.finish_reason, str(first.target_version)) == (
        "abandoned", "12.5 fixes the scheduler leak", TARGET)
    assert (second.status, str(second.target_version)) == ("completed", "12.5.0")
    for dep in fleet.deps:
        assert fleet.sim_dep(dep)["runtime_version"] == "12.5.0"
    assert [d["runtime_version"] for d in fleet.sim_dep("r00-d0")["deploys"]] == [TARGET, "12.5.0"]
    assert marks == {d.id: "12.5.0" for d in fleet.deps}


def test_render_removes_a_temp_file_left_by_a_killed_write_but_not_the_users_files(
    tmp_path, sim: SimHandle
) -> None:
    fleet = make_fleet(tmp_path, sim, repos=2)
    leftover = fleet.repo_path("r00") / ".Dockerfile.k1ll3d_.tmp"  # hosts.write_text's name
    leftover.write_text("FROM quay.io/astronomer/astro-runtime:12.4")
    mine = fleet.repo_path("r01") / "notes.txt"
    mine.write_text("work in progress\n")

    refused = fleet.invoke("upgrade", "--wave", "1")
    out = fleet.invoke("upgrade", "--wave", "1", "--limit", "!r01-d0")

    # The preflight finds the user's file before anything runs: the whole wave is refused
    # (our own leftover does not count), and nothing is written.
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert ("r01-d0: " in refused.stderr and "has uncommitted changes (1 files): notes.txt "
            "(untracked)" in refused.stderr and "--limit '!r01-d0'" in refused.stderr)
    # Left out, the rest runs: the leftover is cleaned up, the user's file is left alone.
    assert out.returncode == 4, out.stdout + out.stderr  # r01-d0 is still to do
    rows = fleet.records()
    assert rows["r00-d0"].state == "verified" and not leftover.exists()
    assert git(fleet.repo_path("r00"), "status", "--porcelain") == ""
    assert rows["r01-d0"].state == "pending"
    assert mine.read_text() == "work in progress\n"
    assert fleet.attempts()["r01-d0"] == 0
