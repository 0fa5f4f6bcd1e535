"""A rollout run the way CI runs it: each job on a fresh runner that holds only the fleet repo.

The fleet repo is an inventory (repos given by ``url:``: bare repositories with history,
as a forge holds them, served over git's smart HTTP behind a token, the inventory's
``token_env``; the journal on the test PostgreSQL) and its playbook. Each "runner" is a directory that starts with a copy of the fleet repo and
nothing else: it clones what it needs. Wave 2's runner never saw wave 1's: its gate can
only see wave 1 through the journal. The Astro control plane is the simulator.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import yaml
from simulators import SimHandle
from support import ASTRO_FLEET

from fleet_sim import lifecycle
from tests.checkouts.git_http import serving
from tests.checkouts.helpers import make_origin, origin_text
from tests.rollout.helpers import FAST_PLAYBOOK, GIT_IDENTITY, START, TARGET
from tests.team.helpers import records

REPOS = {"dags-a": 1, "dags-b": 2, "dags-c": 2}  # repo -> its Deployments' wave


TOKEN = "ghp_fleetgittoken0000000000000000000000"


def fleet_repo(tmp_path: Path, sim: SimHandle, pg_url: str,
               server: str) -> tuple[Path, dict[str, Path]]:
    """The fleet repo (inventory and playbook) and the origins it names (at ``server``)."""
    origins = {name: tmp_path / "origins" / f"{name}.git" for name in REPOS}
    repo = tmp_path / "fleet-repo"
    (repo / "playbooks").mkdir(parents=True)
    (repo / "playbooks" / "upgrade.yaml").write_text(
        FAST_PLAYBOOK.format(extra="", deploy_timeout=60, verify_timeout=10), "utf-8")
    deployments = []
    specs = {}
    for r, (name, wave) in enumerate(REPOS.items()):
        dep = {"id": f"clci{r:02d}", "name": f"{name}-prod", "workspace_id": "ws-1",
               "wave": wave}
        deployments.append(dep)
        specs[name] = {"url": f"{server}/{name}.git", "token_env": "FLEET_GIT_TOKEN",
                       "git": {"mode": "direct"}, "deployments": [dep]}
    doc = {"target": "12.4", "control_plane": sim.control_plane_settings(), "journal": pg_url,
           "waves": {1: {}, 2: {}}, "repos": specs}
    (repo / "inventory.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    lifecycle.seed(sim.url, [{"id": d["id"], "name": d["name"], "workspace_id": "ws-1",
                              "runtime_version": START} for d in deployments])
    return repo, origins


def runner(tmp_path: Path, fleet: Path, name: str) -> Path:
    """A fresh runner: a copy of the fleet repo and nothing else."""
    work = tmp_path / name / "fleet"
    shutil.copytree(fleet, work)
    return work


def run(work: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ASTRO_FLEET, "-v", "--log-file", "astro-fleet.jsonl", *args],
                          cwd=work, env=env, capture_output=True, text=True, timeout=180,
                          check=False)


def test_waves_from_two_fresh_runners_share_state_through_the_journal(
        tmp_path: Path, sim: SimHandle, pg_url: str, pg_env: dict[str, str]) -> None:
    for name in REPOS:
        make_origin(tmp_path / "origins", name)
    with serving(tmp_path / "origins", TOKEN) as server:
        fleet, origins = fleet_repo(tmp_path, sim, pg_url, server.url)
        _rollout(tmp_path, fleet, origins, pg_url, pg_env, sim)
    # Every request git made carried the token, as HTTP Basic credentials.
    assert set(server.seen) == {"Basic " + base64.b64encode(
        f"x-access-token:{TOKEN}".encode()).decode()}


def _rollout(tmp_path: Path, fleet: Path, origins: dict[str, Path], pg_url: str,
             pg_env: dict[str, str], sim: SimHandle) -> None:
    env = {**pg_env, **GIT_IDENTITY, "COLUMNS": "200", "FLEET_GIT_TOKEN": TOKEN}
    secrets = [pg_env["PGPASSWORD"], TOKEN, base64.b64encode(f"x-access-token:{TOKEN}".encode())
               .decode(), *(v for k, v in sim.control_plane_settings()["extra_env"].items()
                            if "TOKEN" in k)]
    outputs: list[str] = []

    def job(name: str, *args: str) -> subprocess.CompletedProcess[str]:
        out = run(runner(tmp_path, fleet, name), *args, env=env)
        outputs.extend((out.stdout, out.stderr))
        return out

    # A pull request's job: plan on a fresh runner, clones included; changes are pending.
    planned = job("pr", "plan", "--detailed-exitcode")
    assert planned.returncode == 8, planned.stdout + planned.stderr
    assert all(f"{name}-prod" in planned.stdout for name in REPOS), planned.stdout

    # Wave 2 before wave 1: its gate, reading the shared journal, refuses it.
    early = job("early", "upgrade", "--wave", "2")
    assert early.returncode == 3, early.stdout + early.stderr

    first = job("wave-1", "upgrade", "--wave", "1")
    assert first.returncode == 0, first.stdout + first.stderr
    second = job("wave-2", "upgrade", "--wave", "2")
    assert second.returncode == 0, second.stdout + second.stderr
    verified = job("verify", "verify-all")
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # Every origin's default branch holds the target, and every Deployment runs it.
    for name, bare in origins.items():
        assert f"astro-runtime:{TARGET}" in origin_text(bare), name
    rows = records(_journal(fleet, pg_url))
    assert {r.name: r.state for r in rows.values()} == {f"{n}-prod": "verified" for n in REPOS}
    assert {r.name: r.wave for r in rows.values()} == {f"{n}-prod": w for n, w in REPOS.items()}
    # Wave 1's runner cloned only what wave 1 deploys (wave 2's gate looks at wave 1's
    # Deployments again, so its runner clones all three).
    assert [p.name for p in _checkouts(tmp_path / "wave-1")] == ["dags-a"]
    # Nothing secret in what any job printed, logged or reported, nor in the journal.
    stored = [*outputs, *(p.read_text("utf-8", "replace") for p in tmp_path.rglob("*")
                          if p.is_file() and p.suffix in (".jsonl", ".md", ".html", ".json"))]
    stored += [str(vars(row)) for row in rows.values()]
    stored += [str(vars(event)) for event in _events(fleet, pg_url)]
    assert len(stored) > 10
    for secret in secrets:
        assert all(secret not in text for text in stored)


def _checkouts(runner_dir: Path) -> list[Path]:
    workdir = runner_dir / "fleet" / ".upgrade" / "checkouts"
    return [p for p in workdir.iterdir() if p.is_dir()]


def _journal(fleet: Path, url: str):  # type: ignore[no-untyped-def]
    from upgrade.config.settings import JournalSettings

    return JournalSettings(fleet / ".upgrade", url)


def _events(fleet: Path, url: str) -> list[object]:
    from tests.team.helpers import journal

    with journal(_journal(fleet, url)) as j:
        return list(j.events(None))


def test_plan_on_a_fresh_runner_names_the_repo_it_cannot_clone(tmp_path: Path) -> None:
    reachable = make_origin(tmp_path / "origins", "dags-a", history=1)
    gone = (tmp_path / "origins" / "dags-b.git").as_uri()
    specs = {name: {"url": url, "git": {"mode": "direct"},
                    "deployments": [{"id": f"cl{n}", "name": f"{name}-prod",
                                     "workspace_id": "ws1", "wave": 1}]}
             for n, (name, url) in enumerate({"dags-a": reachable.as_uri(),
                                              "dags-b": gone}.items())}
    work = tmp_path / "runner"
    work.mkdir()
    (work / "inventory.yaml").write_text(yaml.safe_dump({"target": "12.4", "repos": specs}),
                                         "utf-8")
    out = subprocess.run([ASTRO_FLEET, "plan", "--offline"], cwd=work, capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 7, out.stdout + out.stderr
    assert f"repos.dags-b: could not clone {gone} (" in out.stderr
    assert not (work / ".upgrade" / "journal.db").exists()
