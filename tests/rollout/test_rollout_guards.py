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
from support import SampleFleet

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
from upgrade.sim.testing import SimHandle

SINCE = r"since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+s ago\)"


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
    assert "Plan: 6 to upgrade, 0 already at 12.4.0, 0 refused." in out.stdout
    assert ("Would run playbook upgrade.yaml ('Upgrade Astro Runtime') for each upgrading "
            "Deployment (dry run: nothing was changed):") in out.stdout
    steps = [ln.strip() for ln in out.stdout.splitlines() if re.match(r"\s+\d\. ", ln)]
    assert steps == [
        "1. Rewrite the Dockerfile [render, once per repo]",
        "2. Commit on a branch [commit, once per repo]",
        "3. Parse the DAGs [run, once per repo] when {{ vars.run_parse | default(false) }}",
        "4. Deploy [deploy, once per deployment]",
        "5. Verify the new Runtime is running and healthy [verify, once per deployment]",
    ]
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert [s["kind"] for s in doc["steps"]] == ["render", "commit", "run", "deploy", "verify"]
    assert doc["summary"] == {"upgrade": 6, "noop": 0, "refuse": 0}
    # Nothing was written: no journal, not a byte of any repo, no deploy.
    assert not (sample_fleet.root / ".upgrade").exists()
    assert {p: p.read_bytes() for p in sample_fleet.root.rglob("*") if p.is_file()} == files
    deployments = sim.state()["deployments"]
    assert len(deployments) == 17 and all(not d["deploy_attempts"] for d in deployments)


def test_the_sample_rollout_to_wave_3_skips_the_policy_refusal_without_deploying_it(
    sample_fleet: SampleFleet, sim: SimHandle
) -> None:
    # Soak 0 so the waves may follow each other at once; the gate still re-verifies.
    inventory = sample_fleet.inventory.read_text()
    sample_fleet.inventory.write_text(inventory.replace("soak: 10s", "soak: 0s"))
    sample_fleet.use_simulator(sim.url)
    sample_fleet.seed()
    partner = sample_fleet.repo("partner-feeds") / "Dockerfile"
    partner_before = partner.read_bytes()

    wave1 = sample_fleet.invoke("upgrade", "--wave", "1")
    wave2 = sample_fleet.invoke("upgrade", "--wave", "2")
    refused = sample_fleet.invoke("upgrade", "--wave", "3")
    approve = sample_fleet.invoke("approve", "--wave", "3", "--reason", "CHG-1234 approved by CAB")
    wave3 = sample_fleet.invoke("upgrade", "--wave", "3")

    assert (wave1.returncode, wave2.returncode) == (0, 0), wave1.stderr + wave2.stderr
    assert "gate: 6 Deployment(s) of earlier waves verified again" in wave2.stdout
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert ('wave 3 requires an approval: `astro-fleet approve --wave 3 --reason "..."`'
            in refused.stderr)
    assert approve.returncode == 0, approve.stderr
    assert wave3.returncode == 0, wave3.stdout + wave3.stderr
    line = next(ln for ln in wave3.stdout.splitlines() if ln.startswith("partner-feeds-prod "))
    assert re.match(r"partner-feeds-prod +: skipped +12\.5\.0 → 12\.4\.0  state=skipped deploys=0",
                    line), line
    assert "(deployed version is 12.5.0, target is 12.4.0)" in line
    assert "gate: 10 Deployment(s) of earlier waves verified again" in wave3.stdout
    assert "rollout 1 completed: every wave passed" in wave3.stdout
    rows = records(sample_fleet.root / ".upgrade" / "journal.db")
    skipped = rows.pop("partner-feeds-prod")
    assert (skipped.state, skipped.deploys, skipped.attempts) == ("skipped", 0, 0)
    assert "Cannot deploy a downgraded Astro Runtime version" in (skipped.error or "")
    assert len(rows) == 16 and {r.state for r in rows.values()} == {"verified"}
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


def test_a_rollout_keeps_its_pinned_target_until_abandoned(tmp_path, sim: SimHandle) -> None:
    fleet = make_fleet(tmp_path, sim, repos=2)
    part = fleet.invoke("upgrade", "--wave", "1", "--limit", "r00-d0")
    assert part.returncode == 4, part.stdout + part.stderr  # the wave is not finished
    assert "resume with: astro-fleet upgrade --wave 1 --limit r00-d0" in part.stderr

    by_flag = fleet.invoke("upgrade", "--wave", "1", "--target", "12.5")
    fleet.inventory.write_text(fleet.inventory.read_text().replace("target: '12.4'", "target: '12.5'"))
    by_inventory = fleet.invoke("upgrade", "--wave", "1")

    for out in (by_flag, by_inventory):
        assert out.returncode == 3, out.stdout + out.stderr
        assert ("rollout 1 is pinned to 12.4.0 (from '12.4'); the requested target resolves to "
                "12.5.0. Finish that rollout first, or abandon it with `astro-fleet abandon --reason "
                '"..."` to start a new one.') in out.stderr
    assert fleet.deploy_counts() == {"r00-d0": 1, "r01-d0": 0}
    assert fleet.records()["r01-d0"].state == "pending"

    abandon = fleet.invoke("abandon", "--reason", "12.5 fixes the scheduler leak")
    assert abandon.returncode == 0, abandon.stderr
    assert "rollout 1 (→ 12.4.0) abandoned: 12.5 fixes the scheduler leak" in abandon.stdout
    fresh = fleet.invoke("upgrade", "--wave", "1")

    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "rollout 2 started: '12.5' pinned to 12.5.0" in fresh.stdout
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

    out = fleet.invoke("upgrade", "--wave", "1")

    assert out.returncode == 4, out.stdout + out.stderr
    rows = fleet.records()
    assert rows["r00-d0"].state == "verified" and not leftover.exists()
    assert git(fleet.repo_path("r00"), "status", "--porcelain") == ""
    assert rows["r01-d0"].state == "failed"
    assert "has uncommitted changes (1 files): notes.txt (untracked)" in (rows["r01-d0"].error or "")
    assert mine.read_text() == "work in progress\n"
    assert fleet.attempts()["r01-d0"] == 0
