"""`invoke upgrade --wave 1` end to end: the sample fleet's canary wave, and shared repos.

Everything runs for real: the `invoke` command in a subprocess, git repos in tmp, the
simulator's `astro-sim` spawned for every deploy and inspect.
"""

from __future__ import annotations

import json
import re
import sys

import pytest
from simulators import SimHandle
from support import SampleFleet

from tests.rollout.helpers import TARGET, git, make_fleet, records, run_step
from upgrade.journal.records import actor
from upgrade.journal.store import Journal

BRANCH = f"runtime-upgrade/{TARGET}"  # the generated fleets'
AF2, AF3, AF3_HELD = "13.9.0", "3.1-17", "3.0-14"  # the sample fleet's pins
WAVE1 = {  # the sample fleet's wave 1 (every *-dev): repo, the version it starts from, target
    "sales-etl-dev": ("sales-etl", "12.1.0", AF2),
    "marketing-dbt-dev": ("marketing-dbt", "12.2.0", AF2),
    "finance-reports-dev": ("finance-reports", "12.3.0", AF2),
    "ml-platform-dev": ("ml-platform", "12.0.0", AF2),
    "data-quality-dev": ("data-quality", "12.1.0", AF2),
    "ingest-api-dev": ("ingest-api", "12.2.0", AF2),
    "events-stream-dev": ("events-stream", "3.1-12", AF3),
    "reverse-etl-dev": ("reverse-etl", "3.0-10", AF3_HELD),
}
OUTCOME_KEYS = {"deployment", "repo", "state", "result", "message", "deploys", "from_version",
                "to_version"}


def _ids(fleet: SampleFleet) -> dict[str, str]:
    """Deployment name -> id, from the sample inventory (`astro-fleet inventory --json`)."""
    out = fleet.invoke("inventory", "--json")
    assert out.returncode == 0, out.stderr
    return {d["name"]: d["id"] for d in json.loads(out.stdout)["deployments"]}


@pytest.mark.slow
def test_wave_1_of_the_sample_fleet_upgrades_commits_deploys_and_verifies(
    sample_fleet: SampleFleet, sim: SimHandle
) -> None:
    sample_fleet.use_simulator(sim.url)
    assert sample_fleet.seed() == 24
    ids = _ids(sample_fleet)
    mains = {repo: sample_fleet.git(repo, "rev-parse", "main").strip() for repo, _, _ in WAVE1.values()}
    partner_before = (sample_fleet.repo("partner-feeds") / "Dockerfile").read_bytes()

    out = sample_fleet.invoke("upgrade", "--wave", "1")

    assert out.returncode == 0, out.stdout + out.stderr
    # The recap: one line per Deployment at its own line's target, the verdict, the report.
    assert f"RECAP wave 1 → {AF3}, {AF3_HELD}, {AF2} (rollout 1)" in out.stdout
    for name, (_, start, target) in WAVE1.items():
        assert re.search(rf"^{name} +: ok +{start} → {target}  state=verified deploys=1$",
                         out.stdout, re.M), out.stdout
    assert "ok=8" in out.stdout and "wave 1: PASSED" in out.stdout
    assert (f"rollout 1 started: '13' → {AF2}, '3.1' → {AF3}, '12.4' → 12.4.0, '3.0' → "
            f"{AF3_HELD} pinned") in out.stdout

    # git (the sample fleet is in git.mode direct): exactly one commit per repo on main,
    # pushed to origin, touching only the Dockerfile, and the diff changes nothing but the
    # version characters (invariant 6).
    for repo, start, target in WAVE1.values():
        main = sample_fleet.git(repo, "rev-parse", "main").strip()
        assert sample_fleet.git(repo, "rev-parse", "origin/main").strip() == main
        assert sample_fleet.git(repo, "ls-remote", "origin", "main").split()[0] == main
        assert sample_fleet.git(repo, "rev-list", "--count", f"{mains[repo]}..main").strip() == "1"
        assert sample_fleet.git(repo, "diff", "--name-only", mains[repo], "main").split() == [
            "Dockerfile"]
        assert sample_fleet.git(repo, "status", "--porcelain") == ""
        assert sample_fleet.git(repo, "branch", "--show-current").strip() == "main"
        diff = sample_fleet.git(repo, "diff", "--no-color", "-U0", mains[repo], "main", "--",
                                "Dockerfile")
        removed = [ln[1:] for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
        added = [ln[1:] for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
        assert removed and [ln.replace(start, target) for ln in removed] == added, diff
        subject = sample_fleet.git(repo, "log", "-1", "--format=%s", "main").strip()
        assert subject == f"Upgrade Astro Runtime {start} → {target}"
    # partner-feeds has no Deployment in wave 1: untouched.
    assert (sample_fleet.repo("partner-feeds") / "Dockerfile").read_bytes() == partner_before
    assert "runtime-upgrade" not in sample_fleet.git("partner-feeds", "branch")

    # The simulator: each wave-1 Deployment deployed exactly once, from the upgrade commit.
    for name, (repo, _, target) in WAVE1.items():
        state = sim.deployment(ids[name])
        assert state["deploy_count"] == 1 and len(state["deploy_attempts"]) == 1
        assert state["runtime_version"] == target and state["status"] == "HEALTHY"
        deploy = state["deploys"][0]
        assert deploy["runtime_version"] == target
        assert deploy["git"]["commitSha"] == sample_fleet.git(repo, "rev-parse", "main").strip()
        assert deploy["git"]["branch"] == "main"
        assert deploy["description"] == f"Astro Runtime upgrade to {target} (rollout 1, wave 1)"
    for name, dep_id in ids.items():
        if name not in WAVE1:
            assert sim.deployment(dep_id)["deploy_count"] == 0, name

    # The journal: verified, one deploy each, high-water marks raised for wave 1 only.
    journal_file = sample_fleet.root / ".upgrade" / "journal.db"
    rows = records(journal_file)
    assert set(rows) == set(WAVE1)  # later waves are registered when they run
    for name, (_, start, target) in WAVE1.items():
        row = rows[name]
        assert (row.state, row.deploys, row.attempts, row.error) == ("verified", 1, 1, None)
        assert str(row.from_version) == start and str(row.to_version) == target
    with Journal.open(journal_file) as journal:
        marks = {k: str(v) for k, v in journal.high_water().items()}
        wave = journal.wave(1, 1)
    assert marks == {ids[name]: target for name, (_, _, target) in WAVE1.items()}
    assert wave is not None and wave.status == "passed"
    assert wave.proceed_after is not None and wave.passed_at is not None
    assert (wave.proceed_after - wave.passed_at).total_seconds() == 10  # soak: 10s

    # The Markdown report for the change ticket.
    report = sample_fleet.root / ".upgrade" / "reports" / "rollout-1-wave-1.md"
    assert f"report: {report}" in out.stdout
    text = report.read_text()
    assert text.startswith(f"# Rollout 1, wave 1: Astro Runtime {AF3}, {AF3_HELD}, {AF2}\n")
    assert "- status: **passed**" in text
    assert re.search(rf"^- run by {re.escape(actor())} at \d{{4}}-", text, re.M), text
    assert "- approval: not required or not given\n- gate: passed (not skipped)\n" in text
    for name, (repo, start, target) in WAVE1.items():
        assert f"| {name} | {repo} | {start} | {target} | ok | verified | 1 |" in text

    # Running the same wave again changes nothing (idempotent) and --json has the schema.
    again = sample_fleet.invoke("upgrade", "--wave", "1", "--json")
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert set(doc) == {"schema", "schema_version", "rollout", "wave", "target", "targets",
                        "status", "reason", "counts", "notes", "runs", "approval", "skip_gate",
                        "deployments"}
    assert (doc["schema"], doc["schema_version"]) == ("astro-fleet-upgrade/upgrade", 2)
    assert [r["actor"] for r in doc["runs"]] == [actor()]  # the idempotent rerun starts nothing
    assert doc["approval"] is None and doc["skip_gate"] is None
    assert (doc["rollout"], doc["wave"], doc["target"], doc["status"]) == (
        1, 1, f"{AF3}, {AF3_HELD}, {AF2}", "passed")
    assert doc["targets"] == {"13": AF2, "3.1": AF3, "3.0": AF3_HELD}
    assert doc["counts"] == {"ok": 8}
    assert [d["deployment"] for d in doc["deployments"]] == list(WAVE1)
    for d in doc["deployments"]:
        assert set(d) == OUTCOME_KEYS
        assert (d["state"], d["result"], d["deploys"], d["to_version"]) == (
            "verified", "ok", 1, WAVE1[d["deployment"]][2])
        assert d["from_version"] == WAVE1[d["deployment"]][1]
    assert all(sim.deployment(ids[n])["deploy_count"] == 1 for n in WAVE1)
    # Nothing to do: the passed wave (and its soak clock) is left exactly as it was.
    assert any(n.startswith("wave 1 already passed at ") for n in doc["notes"])

    status = sample_fleet.invoke("status", "--json")
    assert status.returncode == 0, status.stderr
    [rollout] = json.loads(status.stdout)["rollouts"]
    assert (rollout["pins"], rollout["target_source"], rollout["status"]) == (
        {"13": AF2, "3.1": AF3, "12.4": "12.4.0", "3.0": AF3_HELD}, "inventory", "active")
    assert [(w["wave"], w["status"], w["deployments"]) for w in rollout["waves"]] == [
        (1, "passed", {"verified": 8})
    ]


def test_a_repo_feeding_two_deployments_is_rendered_committed_and_tested_once(
    tmp_path, sim: SimHandle
) -> None:
    counter = tmp_path / "runs"
    counter.mkdir()
    # A repo-scope `run` step that leaves a mark outside the repo each time it runs.
    mark = [sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write('x\\n')",
            str(counter / "{{ repo.name }}")]
    fleet = make_fleet(tmp_path, sim, repos=3, per_repo=2, wave={"parallel": 6},
                       runner_parallel=6, extra_steps=run_step(mark, name="Test"))

    out = fleet.invoke("upgrade", "--wave", "1")

    assert out.returncode == 0, out.stdout + out.stderr
    for repo in ("r00", "r01", "r02"):
        path = fleet.repo_path(repo)
        assert (counter / repo).read_text() == "x\n", repo  # the run step ran once
        log = git(path, "log", "--format=%s", f"main..{BRANCH}")
        assert log.splitlines() == [f"Upgrade Astro Runtime 12.1.0 → {TARGET}"]
        head = git(path, "rev-parse", BRANCH).strip()
        for dep in (d for d in fleet.deps if d.repo == repo):
            state = fleet.sim_dep(dep)
            assert state["deploy_count"] == 1 and state["runtime_version"] == TARGET
            assert state["deploys"][0]["git"]["commitSha"] == head
    assert {r.state for r in fleet.records().values()} == {"verified"}
    assert len(fleet.records()) == 6
