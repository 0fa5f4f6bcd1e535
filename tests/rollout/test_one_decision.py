"""One decision, three commands: `plan --wave N`, `upgrade --wave N --dry-run` and
`upgrade --wave N` decide a wave the same way and exit the same way.

Every case of the decision corpus (tests/core/decisions.py) becomes a fleet of exactly its
facts, and goes through the three real commands: the same exit code, the same action per
Deployment, and a real run that does what the plan said (each Deployment the plan runs
verified at its target) or, when the plan refuses or blocks one, starts nothing at all:
no journal row, no commit, no deploy, each refused Deployment named with the
`--limit '!name'` that leaves it out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from simulators import SimHandle, make_astro_project

from fleet_sim import lifecycle
from tests.core.decisions import CASE_IDS, CASES, Case, feed
from tests.journal.helpers import deployed_at
from tests.rollout.helpers import FAST_PLAYBOOK, Dep, GenFleet, git
from tests.rollout.test_rollout_mixed import CLEAN_DAG
from upgrade.journal.store import Journal
from upgrade.model.versions import parse_version

RUNS = ("upgrade", "migrate", "noop")


def image(version: str) -> str:
    if "-" in version:
        return f"astrocrpublic.azurecr.io/runtime:{version}"
    return f"quay.io/astronomer/astro-runtime:{version}"


def case_fleet(tmp_path: Path, sim: SimHandle, case: Case) -> GenFleet:
    """The case's Deployment ``d`` (and one per Airflow 3 version the org already runs),
    each from its own repo (``d-repo``: a name of its own, or --limit would be ambiguous
    and the inventory refused), in wave 1; this corpus's catalog as the feed."""
    root = tmp_path / "fleet"
    fleet = GenFleet(root, sim)
    members = [("d", case.dockerfile, case.deployed)] + [
        (f"org{i}", v, v) for i, v in enumerate(case.org)]
    repos: dict[str, Any] = {}
    seed = []
    for name, dockerfile, deployed in members:
        repo = f"{name}-repo"
        make_astro_project(root / "repos" / repo, f"FROM {image(str(dockerfile))}\n")
        if case.action == "migrate":  # no Airflow 2 imports for the AIR3 lint to find
            (root / "repos" / repo / "dags" / "example_dag.py").write_text(CLEAN_DAG)
            git(root / "repos" / repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                "commit", "-qam", "Airflow 3 imports")
        dep = Dep(f"cl{name}", name, repo)
        fleet.deps.append(dep)
        entry: dict[str, Any] = {"id": dep.id, "name": name, "workspace_id": "ws-1", "wave": 1}
        flags = {"allow_airflow3": case.allow_airflow3,
                 "allow_end_of_maintenance": case.allow_end_of_maintenance}
        if any(flags.values()):
            entry["vars"] = {k: True for k, on in flags.items() if on}
        repos[repo] = {"path": f"repos/{repo}", "deployments": [entry]}
        seed.append({"id": dep.id, "name": name, "workspace_id": "ws-1",
                     "runtime_version": deployed})
    (root / "feed.json").write_text(json.dumps(feed()))
    doc = {"target": case.target, "control_plane": sim.control_plane_settings(),
           "journal": ".upgrade", "catalog": {"feed": "feed.json", "mode": "replace"},
           "waves": {1: {}}, "repos": repos}
    (root / "inventory.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    (root / "playbooks").mkdir()
    (root / "playbooks" / "upgrade.yaml").write_text(
        FAST_PLAYBOOK.format(extra="", deploy_timeout=60, verify_timeout=10), "utf-8")
    lifecycle.seed(sim.url, seed)
    if case.high_water:
        (root / ".upgrade").mkdir()
        with Journal.open(fleet.journal_file) as journal:
            deployed_at(journal, "cld", parse_version(case.high_water))
    return fleet


def actions(out: Any) -> dict[str, str] | None:
    """Deployment -> action of a --json plan document (None: no document was printed)."""
    try:
        doc = json.loads(out.stdout)
    except json.JSONDecodeError:
        return None
    return {row["deployment"]: row["action"] for row in doc["deployments"]}


def snapshot(fleet: GenFleet) -> tuple:
    """Everything a refused run must leave as it was: the journal, each repo's HEAD and
    Dockerfile, the simulator's deploys."""
    journal = fleet.journal_file.read_bytes() if fleet.journal_file.exists() else None
    repos = {d.repo: (git(fleet.repo_path(d.repo), "rev-parse", "HEAD"),
                      (fleet.repo_path(d.repo) / "Dockerfile").read_bytes()) for d in fleet.deps}
    return journal, repos, fleet.attempts()


@pytest.mark.parametrize("case", [c for c in CASES if c.e2e is None],
                         ids=[i for i, c in zip(CASE_IDS, CASES, strict=True) if c.e2e is None])
def test_plan_dry_run_and_upgrade_decide_each_case_alike(tmp_path, sim: SimHandle,
                                                         case: Case) -> None:
    fleet = case_fleet(tmp_path, sim, case)
    before = snapshot(fleet)

    planned = fleet.invoke("plan", "--wave", "1", "--json")
    dry = fleet.invoke("upgrade", "--wave", "1", "--dry-run", "--json")
    real = fleet.invoke("upgrade", "--wave", "1")

    codes = (planned.returncode, dry.returncode, real.returncode)
    # Runs (or leaves alone) exit 0; a refusal of the policy, exit 3, by all three alike.
    expected = 0 if case.plan_action in (*RUNS, "not_targeted") else 3
    assert codes == (expected,) * 3, (codes, planned.stderr, dry.stderr,
                                      real.stdout + real.stderr)
    assert "Traceback" not in planned.stderr + dry.stderr + real.stderr
    decided = actions(planned)
    assert actions(dry) == decided
    if decided is not None:  # a target the catalog cannot resolve stops before any plan
        assert decided["d"] == case.plan_action, planned.stdout
        assert all(a == "noop" for n, a in decided.items() if n != "d")
        row = next(r for r in json.loads(planned.stdout)["deployments"] if r["deployment"] == "d")
        if case.planned is None:
            assert case.reason in row["reason"], row
    stopped = [n for n, a in (decided or {}).items() if a in ("refuse", "blocked")]
    if real.returncode != 0:
        # Refused before anything was written, naming each refused Deployment.
        assert snapshot(fleet) == before
        for name in stopped:
            assert f"  - {name}: " in real.stderr and f"--limit '!{name}'" in real.stderr
        assert "PASSED" not in real.stdout and "completed" not in real.stdout
        return
    assert not stopped and "wave 1: PASSED" in real.stdout, real.stdout + real.stderr
    rows = fleet.records()
    for dep in fleet.deps:
        if decided[dep.name] in RUNS:
            assert rows[dep.name].state == "verified", (dep.name, rows[dep.name])
            assert fleet.sim_dep(dep)["runtime_version"] == case.target
        else:  # not targeted: left as it is, not part of the rollout
            assert dep.name not in rows
            assert fleet.sim_dep(dep)["runtime_version"] == case.deployed
    rollout = 2 if case.high_water else 1  # a high-water mark is seeded by a rollout of its own
    assert f"rollout {rollout} completed: every wave passed" in real.stdout


def three_commands(fleet: GenFleet, wave: str) -> list[Any]:
    """`plan --wave N`, `upgrade --wave N --dry-run` and `upgrade --wave N`, in that order."""
    return [fleet.invoke("plan", "--wave", wave),
            fleet.invoke("upgrade", "--wave", wave, "--dry-run"),
            fleet.invoke("upgrade", "--wave", wave)]


def two_waves(tmp_path: Path, sim: SimHandle, repos: int = 2) -> GenFleet:
    """make_fleet's fleet with r00 in wave 1 and every other repo in wave 2."""
    from tests.rollout.helpers import make_fleet

    fleet = make_fleet(tmp_path, sim, repos=repos)
    doc = yaml.safe_load(fleet.inventory.read_text())
    doc["waves"] = {1: {}, 2: {}}
    for name, repo in doc["repos"].items():
        for dep in repo["deployments"]:
            dep["wave"] = 1 if name == "r00" else 2
    fleet.inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    return fleet


def test_a_refused_deployment_stops_the_wave_and_the_rest_runs_without_it(
        tmp_path, sim: SimHandle) -> None:
    from tests.rollout.helpers import make_fleet

    # r02-d0 already runs 13.9.0, above the target 12.4: refused. The others are below it.
    fleet = make_fleet(tmp_path, sim, repos=3)
    sim.update_deployment(fleet.dep("r02-d0").id, runtime_version="13.9.0")
    before = snapshot(fleet)

    outs = three_commands(fleet, "1")

    assert [o.returncode for o in outs] == [3, 3, 3], [o.stdout + o.stderr for o in outs]
    refused = outs[2].stderr
    assert "wave 1 cannot start: 1 Deployment(s) refused (nothing was changed):" in refused
    assert "  - r02-d0: Cannot deploy a downgraded Astro Runtime version." in refused
    assert "leave them out (--limit '!r02-d0')" in refused
    assert snapshot(fleet) == before  # no journal, no commit, no deploy: not even r00's

    # Left out by name, the rest is the wave: it passes, and says who was left out.
    part = fleet.invoke("upgrade", "--wave", "1", "--limit", "r00-d0")
    assert part.returncode == 4, part.stdout + part.stderr
    # The command that finishes the wave, not the same --limit again (which would loop).
    hint = [ln for ln in part.stderr.splitlines() if ln.startswith("resume with: ")]
    assert hint == ["resume with: astro-fleet upgrade --wave 1 --limit '!r02-d0'"], part.stderr
    rest = fleet.invoke("upgrade", "--wave", "1", "--limit", "!r02-d0")
    assert rest.returncode == 0, rest.stdout + rest.stderr
    assert "wave 1: PASSED" in rest.stdout
    assert "1 Deployment(s) of wave 1 left out, refused by the plan" in rest.stdout
    rows = fleet.records()
    assert {n: r.state for n, r in rows.items()} == {"r00-d0": "verified", "r01-d0": "verified"}
    assert fleet.sim_dep("r02-d0")["runtime_version"] == "13.9.0"
    assert not fleet.sim_dep("r02-d0")["deploy_attempts"]


def test_a_resume_hint_names_the_command_that_finishes_the_wave(tmp_path, sim: SimHandle) -> None:
    from tests.rollout.helpers import make_fleet

    fleet = make_fleet(tmp_path, sim, repos=2)
    part = fleet.invoke("upgrade", "--wave", "1", "--limit", "r00-d0")
    assert part.returncode == 4, part.stdout + part.stderr
    assert "wave 1: INCOMPLETE: 1 Deployment(s) of the wave not done yet: r01-d0" in part.stdout
    hint = [ln for ln in part.stderr.splitlines() if ln.startswith("resume with: ")]
    assert hint == ["resume with: astro-fleet upgrade --wave 1"], part.stderr
    done = fleet.invoke(*hint[0].removeprefix("resume with: astro-fleet ").split())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "wave 1: PASSED" in done.stdout


def test_a_deployment_refused_after_it_was_registered_can_be_left_out(
        tmp_path, sim: SimHandle) -> None:
    from tests.rollout.helpers import make_fleet

    fleet = make_fleet(tmp_path, sim, repos=2)
    part = fleet.invoke("upgrade", "--wave", "1", "--limit", "r00-d0")
    assert part.returncode == 4, part.stdout + part.stderr  # r01-d0 registered, pending
    # Someone deploys 13.9.0 to r01-d0 by hand: the plan now refuses it (a downgrade).
    sim.update_deployment(fleet.dep("r01-d0").id, runtime_version="13.9.0")
    refused = fleet.invoke("upgrade", "--wave", "1")
    assert refused.returncode == 3 and "--limit '!r01-d0'" in refused.stderr, refused.stderr

    # Its pending row does not hold the wave open for ever: the hint would loop.
    rest = fleet.invoke("upgrade", "--wave", "1", "--limit", "!r01-d0", "--json")
    assert rest.returncode == 0, rest.stdout + rest.stderr
    doc = json.loads(rest.stdout)
    assert doc["status"] == "passed"
    assert {r["deployment"]: r["result"] for r in doc["deployments"]} == {
        "r00-d0": "ok", "r01-d0": "left out"}


@pytest.mark.slow
def test_running_a_wave_of_a_completed_rollout_again_is_a_no_op(tmp_path, sim: SimHandle) -> None:
    fleet = two_waves(tmp_path, sim)
    for wave in ("1", "2"):
        out = fleet.invoke("upgrade", "--wave", wave)
        assert out.returncode == 0, out.stdout + out.stderr
    assert "rollout 1 completed: every wave passed" in out.stdout
    journal = fleet.journal_file.read_bytes()
    deploys = fleet.attempts()

    for wave in ("2", "1"):
        planned = fleet.invoke("plan", "--wave", wave)
        dry = fleet.invoke("upgrade", "--wave", wave, "--dry-run")
        again = fleet.invoke("upgrade", "--wave", wave)
        assert (planned.returncode, dry.returncode, again.returncode) == (0, 0, 0), (
            planned.stderr, dry.stderr, again.stdout + again.stderr)
        assert f"wave {wave}: PASSED" in again.stdout
        assert "rollout 1 completed at " in again.stdout
        assert f"wave {wave} passed at " in again.stdout and "nothing to do" in again.stdout
    assert fleet.journal_file.read_bytes() == journal  # nothing written, no new rollout
    assert fleet.attempts() == deploys


def test_a_pin_yanked_mid_rollout_stops_the_next_wave(tmp_path, sim: SimHandle) -> None:
    fleet = two_waves(tmp_path, sim)
    one = fleet.invoke("upgrade", "--wave", "1")
    assert one.returncode == 0, one.stdout + one.stderr
    # Astronomer yanks the pinned 12.4.0 while wave 1 soaks.
    (fleet.root / "feed.json").write_text(json.dumps({"runtimeVersions": {"12.4.0": {
        "metadata": {"airflowVersion": "2.10.5", "channel": "stable", "yanked": True,
                     "yankedReason": "Scheduler loses tasks."}}}}))
    doc = yaml.safe_load(fleet.inventory.read_text())
    doc["catalog"] = {"feed": "feed.json"}
    fleet.inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    before = snapshot(fleet)

    outs = three_commands(fleet, "2")

    assert [o.returncode for o in outs] == [3, 3, 3], [o.stdout + o.stderr for o in outs]
    refused = outs[2].stderr
    assert "wave 2 cannot start: 1 Deployment(s) refused (nothing was changed):" in refused
    assert "  - r01-d0: Target 12.4.0 is yanked by Astronomer (Scheduler loses tasks)" in refused
    # One decision, one explanation: the plan and the dry run give the same advice.
    for out in outs:
        assert ("rollout 1 pinned '12.4' → 12.4.0 (Scheduler loses tasks), which Astronomer "
                "has yanked since.") in out.stderr, out.stderr
        assert '`astro-fleet abandon --reason "..."`' in out.stderr, out.stderr
        assert "another target" in out.stderr and "--limit '!r01-d0'" in out.stderr
    assert snapshot(fleet) == before
    with fleet.journal() as journal:
        rollout = journal.active_rollout()
    assert rollout is not None and rollout.status == "active"  # never "completed"
