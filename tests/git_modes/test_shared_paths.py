"""What others read carries no path of the operator's machine: diffs, commit messages, pull
request bodies and the wave reports name the Dockerfile as the repo holds it
(``a/Dockerfile``), however the inventory reaches the checkout (here an absolute path outside
the inventory's directory, as ``/home/me/repos/...`` is)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from simulators import SimHandle

from fleet_sim.forge import ForgeServer
from tests.git_modes.helpers import make_git_fleet
from tests.rollout.helpers import START, TARGET, git


def test_diffs_commits_pull_requests_and_reports_name_paths_inside_the_repo(
        tmp_path: Path, sim: SimHandle, forge: ForgeServer) -> None:
    fleet = make_git_fleet(tmp_path, sim, forge, {
        "r00": {"mode": "direct"}, "r01": {"mode": "pull-request", "auto_merge": True}})
    # The checkouts live elsewhere on the operator's machine, named by absolute paths.
    home = tmp_path / "home" / "me" / "repos"
    home.parent.mkdir(parents=True)
    shutil.move(fleet.root / "repos", home)
    doc = yaml.safe_load(fleet.inventory.read_text())
    for name, spec in doc["repos"].items():
        spec["path"] = str(home / name)
    fleet.inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    mine = str(home)

    plan = fleet.invoke("plan", "--wave", "1")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert plan.stdout.count("--- a/Dockerfile\n+++ b/Dockerfile\n") == 2, plan.stdout
    assert f"r00: {home / 'r00' / 'Dockerfile'}" in plan.stdout  # the operator's own heading

    out = fleet.invoke("upgrade", "--wave", "1")
    assert out.returncode == 0, out.stdout + out.stderr

    for repo in ("r00", "r01"):
        log = git(fleet.remotes[repo], "log", "--format=%B", "main")
        assert f"Upgrade Astro Runtime {START} → {TARGET}\n\nRewrites Dockerfile to pin" in log
        assert mine not in log
    (pull,) = fleet.pulls("r01")
    assert "in `Dockerfile`" in pull["body"] and "--- a/Dockerfile" in pull["body"]
    assert mine not in pull["body"]
    reports = sorted((fleet.root / ".upgrade" / "reports").iterdir())
    assert {p.suffix for p in reports} == {".md", ".html"}, reports
    for report in reports:
        text = report.read_text("utf-8")
        assert mine not in text, (report.name, [ln for ln in text.splitlines() if mine in ln])
