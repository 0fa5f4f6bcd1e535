"""``discover`` on a machine with no checkouts (a CI runner) writes each repo by ``url``, from
the git metadata of its Deployments' deploys, and the next job plans from that alone."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from simulators import SimHandle

from tests.checkouts.helpers import make_origin
from tests.cli.test_onboarding import as_user, fleet
from tests.rollout.helpers import START
from upgrade.config.inventory_loader import load_inventory


def test_discover_without_checkouts_writes_urls_and_plan_clones_them(
        tmp_path: Path, sim: SimHandle) -> None:
    origins = {name: make_origin(tmp_path / "origins", name, history=1)
               for name in ("dags-a", "dags-b")}
    # Each Deployment deployed once by someone, from a clone elsewhere: its deploy record
    # carries the origin (GENERIC remoteUrl: reference astro-deploy-git.md).
    for n, (name, bare) in enumerate(origins.items()):
        sim.add_deployment(f"cldisc{n}", f"{name}-dev", runtime_version=START)
        laptop = tmp_path / "laptop" / name
        subprocess.run(["git", "clone", "-q", bare.as_uri(), str(laptop)], check=True)
        out = sim.run("deploy", f"cldisc{n}", "--workspace-id", "ws-1", cwd=laptop)
        assert out.returncode == 0, out.stdout + out.stderr
    shutil.rmtree(tmp_path / "laptop")

    runner = tmp_path / "runner"
    runner.mkdir()
    assert fleet(runner, "init", "--simulator", sim.url, "--target", "12.4").returncode == 0
    found = fleet(runner, "discover", "--merge", env=as_user(sim))
    assert found.returncode == 0, found.stdout + found.stderr
    assert ("no checkout found here of dags-a, dags-b: written by url (the tool clones them "
            "when a command needs them;") in found.stderr
    inventory = load_inventory(runner / "inventory.yaml")
    for name, bare in origins.items():
        repo = inventory.repos[name]
        assert repo.managed is not None and repo.managed.url == bare.as_uri()
        assert repo.git.mode == "direct"
    text = (runner / "inventory.yaml").read_text("utf-8")
    assert f"  dags-a:\n    url: {origins['dags-a'].as_uri()}\n    git: {{mode: direct}}\n" \
        in text

    planned = fleet(runner, "plan", "--detailed-exitcode", env=as_user(sim))
    assert planned.returncode == 8, planned.stdout + planned.stderr
    assert "Plan: 2 to upgrade" in planned.stdout
    assert sorted(p.name for p in (runner / ".upgrade" / "checkouts").iterdir()
                  if p.is_dir()) == ["dags-a", "dags-b"]
