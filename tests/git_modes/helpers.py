"""Fleets whose repos have a real bare ``origin`` (file://), a forge simulator serving them,
and a post-receive hook standing in for CI's deploy action.

Everything is real but the SaaS: git remotes are bare repositories in tmp, the forge is
``fleet_sim.forge`` on loopback (GitHub v3 / GitLab v4 shapes), Astro is the simulator.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from simulators import SimHandle, make_astro_project

from fleet_sim import ci, lifecycle
from fleet_sim.forge import ForgeServer
from tests.rollout.helpers import DOCKERFILE, FAST_PLAYBOOK, START, Dep, GenFleet, git

TOKEN = "ghp_forgesimulatortoken000000000000000"  # tests/conftest.py's forge fixture
OWNER = "acme"


@dataclass
class GitFleet(GenFleet):
    """A generated fleet whose repos push to bare remotes a forge simulator serves."""

    forge: ForgeServer | None = None
    remotes: dict[str, Path] = field(default_factory=dict)

    def env(self, extra: Any = None) -> dict[str, str]:
        return super().env({"GITHUB_TOKEN": TOKEN, "GITLAB_TOKEN": TOKEN, **(extra or {})})

    def remote_text(self, repo: str, ref: str = "main", path: str = "Dockerfile") -> str:
        """A file as the remote's branch holds it."""
        return git(self.remotes[repo], "show", f"{ref}:{path}")

    def remote_rev(self, repo: str, ref: str = "main") -> str:
        return git(self.remotes[repo], "rev-parse", ref).strip()

    def forge_state(self) -> dict[str, Any]:
        assert self.forge is not None
        with urllib.request.urlopen(self.forge.url + "/_forge/state") as resp:
            return json.loads(resp.read())

    def pulls(self, repo: str) -> list[dict[str, Any]]:
        return self.forge_state()["projects"][f"{OWNER}/{repo}"]["pulls"]

    def fault(self, repo: str, **faults: Any) -> None:
        assert self.forge is not None
        _post(self.forge.url + "/_forge/faults", {"project": f"{OWNER}/{repo}", **faults})

    def deploy_records(self, dep: Dep) -> list[dict[str, Any]]:
        """Astro's deploy records of one Deployment (the platform API's shape)."""
        return self.sim.deployment(dep.id).get("deploys") or []


def _post(url: str, body: Any) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def make_git_fleet(tmp_path: Path, sim: SimHandle, forge: ForgeServer | None,
                   modes: dict[str, dict[str, Any]], *, per_repo: int = 1,
                   ci_delay: float = 0.3, version: str = START, target: str = "12.4",
                   extra_steps: str = "", wave: dict[str, Any] | None = None,
                   ci_env: dict[str, str] | None = None,
                   control_plane: dict[str, Any] | None = None) -> GitFleet:
    """One repo per entry of ``modes`` (its ``git:`` setting; ``forge`` settings are filled
    in), each with a bare origin under ``remotes/acme/``; a ``deploy: ci`` repo gets the
    post-receive hook deploying its Deployments."""
    root = tmp_path / "fleet"
    (root / "repos").mkdir(parents=True)
    fleet = GitFleet(root, sim, forge=forge)
    specs: dict[str, Any] = {}
    for r, (repo, setting) in enumerate(modes.items()):
        path = root / "repos" / repo
        make_astro_project(path, DOCKERFILE.format(version=version))
        bare = root / "remotes" / OWNER / f"{repo}.git"
        bare.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
        git(path, "remote", "add", "origin", bare.as_uri())
        git(path, "push", "-q", "-u", "origin", "main")
        fleet.remotes[repo] = bare
        deps = []
        for k in range(per_repo):
            dep = Dep(f"cl{r:03d}g{k:02d}", f"{repo}-d{k}", repo)
            fleet.deps.append(dep)
            deps.append({"id": dep.id, "name": dep.name, "workspace_id": "ws-1", "wave": 1})
        setting = dict(setting)
        if setting.get("mode") == "pull-request":
            assert forge is not None
            kind = setting.setdefault("forge", "github")
            setting.setdefault("forge_url", forge.url + ("/api/v4" if kind == "gitlab" else ""))
            setting.setdefault("project", f"{OWNER}/{repo}")
            setting.setdefault("poll_interval", 0.05)
            forge.add_project(f"{OWNER}/{repo}", bare)
            if setting.get("deploy") == "ci":
                ci.install(bare, branch="main", sim_url=sim.url, astro_bin=sim.astro_bin,
                               delay=ci_delay, env=ci_env,
                               deployments=[{"id": d["id"], "workspace_id": "ws-1"} for d in deps])
        specs[repo] = {"path": f"repos/{repo}", "git": setting, "deployments": deps}
    doc = {"target": target, "control_plane": sim.control_plane_settings(**(control_plane or {})),
           "journal": ".upgrade",
           "waves": {1: dict(wave or {})}, "repos": specs}
    (root / "inventory.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    (root / "playbooks").mkdir()
    (root / "playbooks" / "upgrade.yaml").write_text(
        FAST_PLAYBOOK.format(extra=extra_steps, deploy_timeout=60, verify_timeout=10), "utf-8")
    lifecycle.seed(sim.url, [{"id": d.id, "name": d.name, "workspace_id": "ws-1",
                              "runtime_version": version} for d in fleet.deps])
    return fleet
