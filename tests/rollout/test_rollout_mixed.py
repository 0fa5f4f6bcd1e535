"""A fleet on both Runtime lines: the pinned map, commands that follow the active rollout,
refusals that change nothing (byte for byte), and a dry run that predicts the real run.

The generated fleet: r00 (Airflow 2, 13.2.0) and r01 (Airflow 3, 3.1-12) each feed one
Deployment of wave 1 and one of wave 2 (which needs an approval); m00 (Airflow 2, 13.8.0)
migrates to Airflow 3 in wave 3 through a group. Target {airflow2: "13", airflow3: "3.1"}.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from simulators import SimHandle, make_astro_project

from fleet_sim import lifecycle
from tests.cli.test_json_contracts import document
from tests.rollout.helpers import (
    FAST_PLAYBOOK,
    Dep,
    GenFleet,
    git,
    kill_mid_deploy,
    records,
)
from upgrade.journal.store import Journal

AF2, AF3 = "13.9.0", "3.1-17"
START = {"r00": "13.2.0", "r01": "3.1-12", "m00": "13.8.0"}
IMAGE = {"r00": "quay.io/astronomer/astro-runtime", "r01": "astrocrpublic.azurecr.io/runtime",
         "m00": "quay.io/astronomer/astro-runtime"}
WAVES = {"r00-d0": 1, "r00-d1": 2, "r01-d0": 1, "r01-d1": 2, "m00-d0": 3}
# An Airflow 3 DAG: nothing for ruff's AIR3 rules to find.
CLEAN_DAG = '''from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("example_dag", start_date=datetime(2024, 1, 1), schedule=None, catchup=False):
    EmptyOperator(task_id="noop")
'''


def make_mixed(tmp_path: Path, sim: SimHandle, *, feed: dict | None = None,
               wave1: dict | None = None) -> GenFleet:
    root = tmp_path / "fleet"
    fleet = GenFleet(root, sim)
    repos: dict[str, Any] = {}
    for repo, version in START.items():
        make_astro_project(root / "repos" / repo, f"FROM {IMAGE[repo]}:{version}\n")
        deps = []
        for name, wave in WAVES.items():
            if name.startswith(repo):
                dep = Dep(f"cl{len(fleet.deps):03d}{repo}", name, repo)
                fleet.deps.append(dep)
                deps.append({"id": dep.id, "name": name, "workspace_id": "ws-1", "wave": wave})
        repos[repo] = {"path": f"repos/{repo}", "deployments": deps}
    repos["m00"]["groups"] = ["to-af3"]
    doc: dict[str, Any] = {
        "target": {"airflow2": "13", "airflow3": "3.1"},
        "control_plane": sim.control_plane_settings(),
        "journal": ".upgrade",
        "groups": {"to-af3": {"target": "3.1", "vars": {"allow_airflow3": True}}},
        "waves": {1: dict(wave1 or {}), 2: {"approval": True}, 3: {}},
        "repos": repos,
    }
    if feed is not None:
        (root / "feed.json").write_text(json.dumps(feed))
        doc["catalog"] = {"feed": "feed.json"}
    (root / "inventory.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    (root / "playbooks").mkdir()
    (root / "playbooks" / "upgrade.yaml").write_text(
        FAST_PLAYBOOK.format(extra="", deploy_timeout=60, verify_timeout=10), "utf-8")
    lifecycle.seed(sim.url, [
        {"id": d.id, "name": d.name, "workspace_id": "ws-1", "runtime_version": START[d.repo]}
        for d in fleet.deps])
    return fleet


def journal_bytes(fleet: GenFleet) -> bytes | None:
    """The journal file as it is on disk (None: there is none); no -wal is left behind."""
    assert not Path(f"{fleet.journal_file}-wal").exists() or \
        Path(f"{fleet.journal_file}-wal").stat().st_size == 0
    return fleet.journal_file.read_bytes() if fleet.journal_file.exists() else None


def versions(fleet: GenFleet) -> dict[str, str]:
    return {d.name: fleet.sim_dep(d)["runtime_version"] for d in fleet.deps}


@pytest.mark.slow
def test_each_line_goes_to_its_pin_and_later_commands_follow_the_rollout(
    tmp_path, sim: SimHandle
) -> None:
    fleet = make_mixed(tmp_path, sim)

    one = fleet.invoke("upgrade", "--wave", "1")

    assert one.returncode == 0, one.stdout + one.stderr
    assert f"rollout 1 started: '13' → {AF2}, '3.1' → {AF3} pinned" in one.stdout
    assert versions(fleet) == {"r00-d0": AF2, "r00-d1": "13.2.0", "r01-d0": AF3,
                               "r01-d1": "3.1-12", "m00-d0": "13.8.0"}
    rows = fleet.records()
    assert {n: (str(r.to_version), r.target_spec) for n, r in rows.items()} == {
        "r00-d0": (AF2, "13"), "r01-d0": (AF3, "3.1")}
    with fleet.journal() as journal:
        rollout = journal.active_rollout()
    assert rollout is not None and rollout.target_source == "inventory"
    assert {s: str(v) for s, v in rollout.pins.items()} == {"13": AF2, "3.1": AF3}

    # A --target that is not a pin is refused, naming the pins; it changes nothing.
    before = journal_bytes(fleet)
    other = fleet.invoke("upgrade", "--wave", "2", "--target", "12")
    assert other.returncode == 3, other.stdout + other.stderr
    assert (f"rollout 1 pinned '13' → {AF2}, '3.1' → {AF3}; --target 12 resolves to "
            "12.") in other.stderr
    assert journal_bytes(fleet) == before

    # approve and the next wave need no --target; one that names a pin is a check only.
    approve = fleet.invoke("approve", "--wave", "2", "--reason", "CHG-1")
    assert approve.returncode == 0, approve.stdout + approve.stderr
    assert f"wave 2 of rollout 1 ('13' → {AF2}, '3.1' → {AF3}) approved by " in approve.stdout
    two = fleet.invoke("upgrade", "--wave", "2", "--target", AF2)
    assert two.returncode == 0, two.stdout + two.stderr
    assert f"--target {AF2} is rollout 1's pin ({AF2}); following the rollout" in two.stdout
    # Following the rollout: the Airflow 3 Deployment moved too (not left by --target 13.9.0).
    assert versions(fleet)["r01-d1"] == AF3 and versions(fleet)["r00-d1"] == AF2
    status = json.loads(fleet.invoke("status", "--json").stdout)
    assert status["rollouts"][0]["pins"] == {"13": AF2, "3.1": AF3}

    # The migration wave: the plan says migrate, the lint's findings block it (nothing
    # changed), accepted they are recorded and the Deployment moves to Airflow 3.
    plan = json.loads(fleet.invoke("plan", "--wave", "3", "--json").stdout)
    [m00] = plan["deployments"]
    assert (m00["action"], m00["line"], m00["target"]) == ("blocked", "airflow2", AF3)
    assert "Airflow 3 migration finding(s) in m00's DAGs" in m00["reason"]
    assert any("AIR311" in f for f in plan["findings"]["m00"])
    before = journal_bytes(fleet)
    blocked = fleet.invoke("upgrade", "--wave", "3")
    assert blocked.returncode == 3, blocked.stdout + blocked.stderr
    assert journal_bytes(fleet) == before
    three = fleet.invoke("upgrade", "--wave", "3", "--accept-migration-findings")
    assert three.returncode == 0, three.stdout + three.stderr
    assert versions(fleet)["m00-d0"] == AF3
    dockerfile = (fleet.repo_path("m00") / "Dockerfile").read_text()
    assert dockerfile == f"FROM astrocrpublic.azurecr.io/runtime:{AF3}\n"
    assert "rollout 1 completed: every wave passed" in three.stdout
    accepted = fleet.events("migration_findings_accepted")
    assert len(accepted) == 1 and accepted[0].wave == 3 and "m00" in (accepted[0].data or {})
    # status: every pin, the versions each wave went to, the findings accepted and by whom.
    status = document(fleet.invoke("status", "--json"), "status")
    [rollout] = status["rollouts"]
    assert rollout["target"] == f"{AF3}, {AF2}" and rollout["pins"] == {"13": AF2, "3.1": AF3}
    waves = {w["wave"]: w for w in rollout["waves"]}
    assert waves[1]["targets"] == [AF3, AF2] and waves[3]["targets"] == [AF3]
    [taken] = waves[3]["accepted_findings"]
    assert taken["actor"] == accepted[0].actor and list(taken["findings"]) == ["m00"]
    assert all("AIR3" in f for f in taken["findings"]["m00"])
    text = fleet.invoke("status").stdout
    assert f"rollout 1: '13' → {AF2}, '3.1' → {AF3} (completed)" in text
    assert f"Airflow 3 migration finding(s) accepted by {taken['actor']}" in text
    drift = fleet.invoke("verify-all")
    assert drift.returncode == 0, drift.stdout + drift.stderr


def test_a_clean_migration_needs_no_acceptance(tmp_path, sim: SimHandle) -> None:
    fleet = make_mixed(tmp_path, sim)
    repo = fleet.repo_path("m00")
    (repo / "dags" / "example_dag.py").write_text(CLEAN_DAG)
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qam",
        "Airflow 3 imports")

    out = fleet.invoke("upgrade", "--wave", "3", "--skip-gate", "--reason", "migration first")

    assert out.returncode == 0, out.stdout + out.stderr
    assert versions(fleet)["m00-d0"] == AF3
    assert not fleet.events("migration_findings_accepted")


FEED = {"version": "test", "runtimeVersions": {
    "13.9.0": {"metadata": {"airflowVersion": "2.11.0", "channel": "stable",
                            "releaseDate": "2025-10-01"}}},
    "runtimeVersionsV3": {
    "3.1-17": {"metadata": {"airflowVersion": "3.1.8", "channel": "stable",
                            "releaseDate": "2025-11-01"}}}}
NEWER = {
    "13.10.0": {"metadata": {"airflowVersion": "2.11.1", "channel": "stable",
                             "releaseDate": "2026-11-30"}},
    "3.1-18": {"metadata": {"airflowVersion": "3.1.9", "channel": "stable",
                            "releaseDate": "2026-11-30"}},
}


def test_the_pinned_map_survives_kill_9_and_a_newer_catalog(tmp_path, sim: SimHandle) -> None:
    fleet = make_mixed(tmp_path, sim, feed=FEED, wave1={"parallel": 2})
    killed = kill_mid_deploy(fleet, sim, "r01-d0", others=["r00-d0"])
    assert fleet.records()["r01-d0"].state == "deploying"
    # Astronomer ships newer releases of both lines while the rollout is stopped.
    feed = json.loads(json.dumps(FEED))
    feed["runtimeVersions"]["13.10.0"] = NEWER["13.10.0"]
    feed["runtimeVersionsV3"]["3.1-18"] = NEWER["3.1-18"]
    (fleet.root / "feed.json").write_text(json.dumps(feed))
    assert "13 → 13.10.0" in fleet.invoke("catalog", "--resolve", "13").stdout

    planned = json.loads(fleet.invoke("plan", "--json", "--wave", "1").stdout)
    again = fleet.invoke("upgrade", "--wave", "1")

    # Every later command follows the pins, not the newer catalog.
    assert {s: t["version"] for s, t in planned["targets"].items()} == {"13": AF2, "3.1": AF3}
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"pid {killed}," in again.stderr
    assert versions(fleet)["r00-d0"] == AF2 and versions(fleet)["r01-d0"] == AF3
    rows = fleet.records()
    assert {n: str(r.to_version) for n, r in rows.items()} == {"r00-d0": AF2, "r01-d0": AF3}
    with fleet.journal() as journal:
        [rollout] = journal.rollouts()
    assert {s: str(v) for s, v in rollout.pins.items()} == {"13": AF2, "3.1": AF3}


def test_a_rollout_started_with_target_is_followed_without_it(tmp_path, sim: SimHandle) -> None:
    fleet = make_mixed(tmp_path, sim)
    one = fleet.invoke("upgrade", "--wave", "1", "--target", "13")
    approve = fleet.invoke("approve", "--wave", "2", "--reason", "CHG-2")
    two = fleet.invoke("upgrade", "--wave", "2")

    for out in (one, approve, two):
        assert out.returncode == 0, out.stdout + out.stderr
    # --target 13 names only the Airflow 2 line: the Airflow 3 Deployments stay where they are
    # in every wave of that rollout, and are not part of it.
    assert versions(fleet) == {"r00-d0": AF2, "r00-d1": AF2, "r01-d0": "3.1-12",
                               "r01-d1": "3.1-12", "m00-d0": "13.8.0"}
    assert "1 Deployment(s) not targeted" in two.stdout and "r01-d1" in two.stdout
    assert set(fleet.records()) == {"r00-d0", "r00-d1"}
    with fleet.journal() as journal:
        rollout = journal.active_rollout()
    assert rollout is not None and rollout.target_source == "--target"
    assert {s: str(v) for s, v in rollout.pins.items()} == {"13": AF2}


def _dirty(fleet: GenFleet) -> str:
    (fleet.repo_path("r00") / "notes.txt").write_text("work in progress\n")
    return "has uncommitted changes (1 files): notes.txt (untracked)"


def _mid_rebase(fleet: GenFleet) -> str:
    (fleet.repo_path("r00") / ".git" / "rebase-merge").mkdir()
    return "rebase"


def _bad_verify(fleet: GenFleet) -> str:
    book = fleet.root / "playbooks" / "upgrade.yaml"
    book.write_text(book.read_text().replace("timeout: 10\n", "timeout: \"{{ vars.wait }}\"\n"))
    text = fleet.inventory.read_text().replace(
        "      wave: 1\n", "      wave: 1\n      vars: {wait: soon}\n", 1)
    fleet.inventory.write_text(text)
    return "r00-d0: verification settings: "


def _gate(fleet: GenFleet) -> str:
    text = fleet.inventory.read_text().replace("  1: {}\n", "  1: {approval: true}\n")
    fleet.inventory.write_text(text)
    return "wave 1 requires an approval"


@pytest.mark.parametrize(("make", "code", "who"), [
    (_dirty, 2, "r00-d0"),
    (_mid_rebase, 2, "r00-d0"),
    (_bad_verify, 2, "r00-d0"),
    (_gate, 3, "r00-d0"),
], ids=["dirty repo", "mid-rebase", "bad verification settings", "gate"])
def test_the_dry_run_predicts_each_refusal_and_the_real_run_writes_nothing(
    tmp_path, sim: SimHandle, make, code: int, who: str
) -> None:
    fleet = make_mixed(tmp_path, sim)
    why = make(fleet)
    repos = {r: (fleet.repo_path(r) / "Dockerfile").read_bytes() for r in START}

    dry = fleet.invoke("upgrade", "--wave", "1", "--dry-run", "--json")
    planned = fleet.invoke("plan", "--wave", "1", "--json")
    real = fleet.invoke("upgrade", "--wave", "1")

    assert dry.returncode == code, dry.stdout + dry.stderr
    row = next(r for r in json.loads(dry.stdout)["deployments"] if r["deployment"] == who)
    assert row["action"] == "blocked" and why in row["reason"], row
    if make is not _bad_verify:  # plan has no playbook; the rest it predicts alike
        assert planned.returncode == code, planned.stdout + planned.stderr
        row = next(r for r in json.loads(planned.stdout)["deployments"] if r["deployment"] == who)
        assert row["action"] == "blocked" and why in row["reason"], row
    assert real.returncode == code, real.stdout + real.stderr
    assert why in real.stderr and "Traceback" not in real.stderr
    assert journal_bytes(fleet) is None  # no journal was made
    assert {r: (fleet.repo_path(r) / "Dockerfile").read_bytes() for r in START} == repos
    assert all(not fleet.sim_dep(d)["deploy_attempts"] for d in fleet.deps)


@pytest.mark.parametrize("case", ["gate", "dirty repo", "target not pinned", "unknown wave"])
def test_a_refused_command_leaves_the_journal_byte_for_byte(
    tmp_path, sim: SimHandle, case: str
) -> None:
    fleet = make_mixed(tmp_path, sim)
    one = fleet.invoke("upgrade", "--wave", "1")
    assert one.returncode == 0, one.stdout + one.stderr
    args = ["upgrade", "--wave", "2", "--skip-gate", "--reason", "would be recorded"]
    if case == "gate":
        args, code = ["upgrade", "--wave", "2"], 3  # wave 2 needs an approval
    elif case == "dirty repo":
        (fleet.repo_path("r01") / "notes.txt").write_text("wip\n")
        code = 2
    elif case == "target not pinned":
        text = fleet.inventory.read_text().replace(
            "    path: repos/r01\n", "    path: repos/r01\n    target: '3.0'\n")
        fleet.inventory.write_text(text)
        code = 3
    else:
        args, code = ["upgrade", "--wave", "9"], 2
    before = journal_bytes(fleet)

    out = fleet.invoke(*args)

    assert out.returncode == code, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert journal_bytes(fleet) == before
    with Journal.open(fleet.journal_file) as journal:
        assert journal.wave(1, 2) is None  # not even the wave was started
    assert records(fleet.journal_file).keys() == {"r00-d0", "r01-d0"}


@pytest.mark.parametrize("staged", [False, True], ids=["written", "staged"])
def test_a_killed_runs_uncommitted_rewrite_is_continued_and_committed(
    tmp_path, sim: SimHandle, staged: bool
) -> None:
    # What a run killed between writing the Dockerfile and committing it leaves behind.
    fleet = make_mixed(tmp_path, sim)
    dockerfile = fleet.repo_path("r00") / "Dockerfile"
    dockerfile.write_text(f"FROM {IMAGE['r00']}:{AF2}\n")
    if staged:
        git(fleet.repo_path("r00"), "add", "Dockerfile")

    out = fleet.invoke("upgrade", "--wave", "1")

    assert out.returncode == 0, out.stdout + out.stderr
    assert fleet.sim_dep(fleet.dep("r00-d0"))["runtime_version"] == AF2
    assert git(fleet.repo_path("r00"), "status", "--porcelain") == ""
    assert f":{AF2}" in git(fleet.repo_path("r00"), "show", "HEAD:Dockerfile")


def test_a_persons_uncommitted_edit_of_the_dockerfile_is_refused_even_at_the_target(
    tmp_path, sim: SimHandle
) -> None:
    # The same version as the run would write, plus a line the run would never write: not ours.
    fleet = make_mixed(tmp_path, sim)
    dockerfile = fleet.repo_path("r00") / "Dockerfile"
    dockerfile.write_text(f"FROM {IMAGE['r00']}:{AF2}\nRUN echo hand-made\n")

    out = fleet.invoke("upgrade", "--wave", "1")

    assert out.returncode == 2, out.stdout + out.stderr
    assert "uncommitted changes to Dockerfile that are not a killed run's rewrite" in out.stderr
    assert journal_bytes(fleet) is None
    assert not fleet.sim_dep(fleet.dep("r00-d0"))["deploy_attempts"]


def test_approve_refuses_a_wave_that_needs_no_approval_or_already_passed(
    tmp_path, sim: SimHandle
) -> None:
    fleet = make_mixed(tmp_path, sim)
    needless = fleet.invoke("approve", "--wave", "1", "--reason", "just in case")
    assert needless.returncode == 2, needless.stdout + needless.stderr
    assert needless.stderr.strip() == (
        "error: wave 1 needs no approval (its settings do not say 'approval: true'); nothing "
        "was recorded. Run it: astro-fleet upgrade --wave 1.")
    assert journal_bytes(fleet) is None

    for args in (("upgrade", "--wave", "1"), ("approve", "--wave", "2", "--reason", "CHG-3"),
                 ("upgrade", "--wave", "2")):
        out = fleet.invoke(*args)
        assert out.returncode == 0, out.stdout + out.stderr
    before = journal_bytes(fleet)
    again = fleet.invoke("approve", "--wave", "2", "--reason", "once more")
    assert again.returncode == 2, again.stdout + again.stderr
    assert again.stderr.startswith("error: wave 2 of rollout 1 already passed at ")
    assert "an approval would change nothing; nothing was recorded." in again.stderr
    assert journal_bytes(fleet) == before
    status = json.loads(fleet.invoke("status", "--json").stdout)
    approvals = [w["approval"] for w in status["rollouts"][0]["waves"] if w.get("approval")]
    assert [a["reason"] for a in approvals] == ["CHG-3"]
