"""Git modes need deploys that carry their commit, and astro-cli attaches it only from some
releases on: github.com remotes from v1.40.0, any other remote (GENERIC) from v1.43.0;
v1.40-1.42 skip a non-GitHub remote (cloud/deploy/bundle.go at v1.42.0: "Unsupported Git
provider", debug only). The pre-flight asks the CLI that would deploy which release it is
and says which one is needed, and why; ``deploy: ci`` says it when CI's deploy came without
a commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from simulators import SimHandle

from fleet_sim.forge import ForgeServer
from tests.git_modes.helpers import make_git_fleet
from tests.rollout.helpers import records
from upgrade.config.inventory_loader import load_inventory
from upgrade.errors import AstroError
from upgrade.hosts.host import LocalHost
from upgrade.plan.facts import cli_problems

OLD = {"extra_env": {"ASTRO_SIM_VERSION": "1.42.0"}}


def test_a_git_mode_repo_on_a_non_github_remote_needs_astro_cli_1_43(
        tmp_path: Path, sim: SimHandle) -> None:
    fleet = make_git_fleet(tmp_path, sim, None, {"r00": {"mode": "direct"}}, control_plane=OLD)
    before = fleet.remote_rev("r00")
    plan = fleet.invoke("plan", "--wave", "1")
    assert "blocked" in plan.stdout + plan.stderr, plan.stdout + plan.stderr
    out = fleet.invoke("upgrade", "--wave", "1")
    said = out.stdout + out.stderr
    assert out.returncode == 2, said
    assert "the astro CLI on runner local is 1.42.0" in said
    assert "non-GitHub (" in said and "only from 1.43.0 on" in said
    assert fleet.remote_rev("r00") == before
    assert not fleet.journal_file.exists() or records(fleet.journal_file) == {}
    assert fleet.sim_dep("r00-d0")["deploy_count"] == 0


def _repo(tmp_path: Path, name: str, origin: str, git: dict) -> dict:
    path = tmp_path / name
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "remote", "add", "origin", origin], check=True)
    (path / "Dockerfile").write_text("FROM quay.io/astronomer/astro-runtime:12.1.0\n")
    return {"path": str(path), "git": git,
            "deployments": [{"id": f"d-{name}", "name": f"{name}-d",
                                     "workspace_id": "ws", "wave": 1}]}


def test_which_release_each_repo_needs(tmp_path: Path) -> None:
    repos = {
        "hub": _repo(tmp_path, "hub", "git@github.com:acme/hub.git", {"mode": "direct"}),
        "lab": _repo(tmp_path, "lab", "https://gitlab.example.com/acme/lab.git",
                     {"mode": "direct"}),
        "ghe": _repo(tmp_path, "ghe", "https://github.acme.internal/acme/ghe.git",
                     {"mode": "direct"}),
        "plain": _repo(tmp_path, "plain", "https://gitlab.example.com/acme/plain.git", {}),
    }
    inv_file = tmp_path / "inventory.yaml"

    inv_file.write_text(yaml.safe_dump({"target": "12.4", "repos": repos}))
    inv = load_inventory(inv_file, check_repos=False)
    host = LocalHost()
    asked: list[object] = []

    def release(found: tuple[int, int, int]):
        def ask(on: object) -> tuple[int, int, int]:
            asked.append(on)
            return found
        return ask

    names = list(repos)
    assert set(cli_problems(inv, names, lambda r: host, release((1, 42, 1)))) == {"lab", "ghe"}
    assert asked == [host]  # asked once per runner, through its Host (this machine too)
    assert set(cli_problems(inv, names, lambda r: host, release((1, 39, 0)))) == {
        "hub", "lab", "ghe"}
    assert cli_problems(inv, names, lambda r: host, release((1, 43, 0))) == {}

    def broken(on: object) -> tuple[int, int, int]:
        raise AstroError("cannot run the astro CLI 'astro': No such file or directory.")

    found = cli_problems(inv, ["lab"], lambda r: host, broken)
    assert found["lab"][1] == "input" and "cannot tell the astro CLI's version" in found["lab"][0]


@pytest.mark.slow
def test_deploy_ci_names_the_release_when_cis_deploy_carried_no_commit(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {"r00": {
        "mode": "pull-request", "forge": "gitlab", "auto_merge": True, "deploy": "ci",
        "ci_timeout": "15s"}}, ci_env={"ASTRO_SIM_VERSION": "1.42.0"})
    out = fleet.invoke("upgrade", "--wave", "1")
    assert out.returncode == 4, out.stdout + out.stderr
    (deploy,) = fleet.sim_dep("r00-d0")["deploys"]
    assert deploy["git"] is None  # CI deployed, without the commit
    error = records(fleet.journal_file)["r00-d0"].error
    assert "without git metadata" in error and "1.43.0" in error
