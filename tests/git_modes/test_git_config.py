"""The `git:` setting: layered defaults → groups → repo, validated when loaded (every
problem at once, file:line, exit 2, nothing written)."""

from __future__ import annotations

from pathlib import Path

import pytest
from simulators import SimHandle

from tests.git_modes.helpers import make_git_fleet
from upgrade.config.git import project_from_remote
from upgrade.config.inventory_loader import load_inventory
from upgrade.errors import InventoryError

INVENTORY = """\
target: "12.4"
defaults:
  git: {mode: direct, poll_interval: 2}
groups:
  theirs:
    git: {mode: pull-request, forge: gitlab, deploy: ci, ci_timeout: 10m}
repos:
  ours:
    path: ours
    deployments: [{id: d1, name: ours-dev, workspace_id: ws, wave: 1}]
  shared:
    path: shared
    groups: [theirs]
    git: {auto_merge: true, project: team/shared}
    deployments: [{id: d2, name: shared-dev, workspace_id: ws, wave: 1}]
  plain:
    path: plain
    git: {mode: local}
    deployments: [{id: d3, name: plain-dev, workspace_id: ws, wave: 1}]
"""


def _write(tmp_path: Path, text: str) -> Path:
    for repo in ("ours", "shared", "plain"):
        (tmp_path / repo).mkdir(exist_ok=True)
        (tmp_path / repo / "Dockerfile").write_text("FROM quay.io/astronomer/astro-runtime:12.1.0\n")
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    return path


def test_layers_replace_the_keys_they_set(tmp_path: Path) -> None:
    inv = load_inventory(_write(tmp_path, INVENTORY))
    ours, shared, plain = (inv.repos[n].git for n in ("ours", "shared", "plain"))
    assert (ours.mode, ours.poll_interval, ours.forge) == ("direct", 2.0, None)
    assert (shared.mode, shared.forge, shared.deploy, shared.ci_timeout, shared.auto_merge,
            shared.project, shared.poll_interval) == (
        "pull-request", "gitlab", "ci", 600, True, "team/shared", 2.0)
    assert shared.api_url == "https://gitlab.com/api/v4" and shared.token_variable == "GITLAB_TOKEN"
    assert plain.mode == "local" and not plain.shared


def test_every_problem_at_once_with_its_line(tmp_path: Path) -> None:
    bad = INVENTORY.replace("mode: direct, poll_interval: 2",
                            "mode: sideways, poll_interval: 0, auto_merj: true")
    bad = bad.replace("forge: gitlab, deploy: ci", "forge: bitbucket, deploy: cd")
    path = _write(tmp_path, bad)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    text = str(caught.value)
    for expected in (
        "inventory.yaml:3: defaults.git.mode: must be one of local, direct, pull-request, got "
        "'sideways'.",
        "inventory.yaml:3: defaults.git.auto_merj: unknown key. Did you mean 'auto_merge'?",
        "inventory.yaml:3: defaults.git.poll_interval: must be a number from 0.01 to 3600",
        "inventory.yaml:6: groups.theirs.git.forge: must be one of github, gitlab, got "
        "'bitbucket'.",
        "inventory.yaml:6: groups.theirs.git.deploy: must be one of cli, ci, got 'cd'.",
        "repos.shared.git.forge: mode 'pull-request' needs a forge.",
    ):
        assert expected in text, text


@pytest.mark.parametrize(("url", "project"), [
    ("git@github.com:acme/dags.git", "acme/dags"),
    ("https://github.com/acme/dags.git", "acme/dags"),
    ("ssh://git@gitlab.example.com:2222/group/sub/project.git", "group/sub/project"),
    ("file:///srv/git/acme/dags.git", "srv/git/acme/dags"),
    ("/srv/git/dags.git", None),
])
def test_the_forge_project_from_a_remote(url: str, project: str | None) -> None:
    assert project_from_remote(url) == project


def test_plan_warns_that_local_mode_deploys_code_on_no_shared_branch(
        tmp_path: Path, sim: SimHandle) -> None:
    fleet = make_git_fleet(tmp_path, sim, None, {"r00": {"mode": "local"},
                                                 "r01": {"mode": "direct"}})
    out = fleet.invoke("plan", "--offline")
    assert out.returncode == 0, out.stdout + out.stderr
    assert ("warning: 1 repo(s) use git.mode: local (r00): the code deployed from them will be "
            "committed on a local branch and exist on no shared branch.") in out.stderr
