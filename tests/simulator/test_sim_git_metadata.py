"""The git metadata ``astro-sim deploy`` sends and the platform API returns on deploy records,
as astro-cli collects it (cloud/deploy/bundle.go retrieveLocalGitMetadata, pkg/git/git.go at
astro-cli ed93cc59 = v1.45.0): clean tree, ``origin`` parsed, GITHUB or GENERIC, path
prefix, branch, sha, author name, the message's first 72 bytes as the default description."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from simulators import SimHandle

from fleet_sim.astro_cli import gitmeta
from tests.simulator.helpers import AF2, deploy, platform_get, project

GIT = ["git", "-c", "user.name=Ada Lovelace", "-c", "user.email=ada@example.invalid",
       "-c", "commit.gpgsign=false"]


def _git(proj: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=proj, capture_output=True, text=True,
                          check=True).stdout.strip()


def _record(sim: SimHandle, dep_id: str = "dep-1") -> dict:
    status, body = platform_get(sim, f"/organizations/org-sim/deployments/{dep_id}/deploys")
    assert status == 200, body
    assert isinstance(body, dict) and body["totalCount"] >= 1
    return body["deploys"][0]  # newest first


def _deployed(sim: SimHandle, proj: Path, *extra: str) -> dict:
    sim.add_deployment("dep-1", "prod", runtime_version="12.4.0")
    result = deploy(sim, proj, "dep-1", *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return _record(sim)


@pytest.mark.parametrize("remote", ["git@github.com:acme/dags.git", "https://github.com/acme/dags.git"])
def test_a_github_remote_gives_account_repo_and_commit_url(sim: SimHandle, tmp_path: Path, remote):
    proj = project(tmp_path, AF2.format(v="12.5.0"))
    _git(proj, "remote", "add", "origin", remote)
    sha = _git(proj, "rev-parse", "HEAD")
    record = _deployed(sim, proj)
    assert record["git"] == {
        "provider": "GITHUB", "commitSha": sha, "account": "acme", "repo": "dags",
        "commitUrl": f"https://github.com/acme/dags/commit/{sha}", "branch": "main",
        "authorName": "Astro Sim",
    }
    assert record["description"] == "Initial Astro project"  # the commit message, no --description
    assert record["astroRuntimeVersion"] == "12.5.0"


@pytest.mark.parametrize("remote", ["git@gitlab.com:team/project.git", "ssh://git@github.com:22/acme/dags.git",
                                    "https://github.example.com/acme/dags.git"])
def test_any_other_remote_is_generic_with_the_raw_url(sim: SimHandle, tmp_path: Path, remote):
    proj = project(tmp_path, AF2.format(v="12.5.0"))
    _git(proj, "remote", "add", "origin", remote)
    git = _deployed(sim, proj)["git"]
    assert git["provider"] == "GENERIC" and git["remoteUrl"] == remote
    assert not {"account", "repo", "commitUrl", "authorEmail"} & set(git)


def test_a_project_in_a_subdirectory_sends_its_path_and_a_detached_head_sends_HEAD(
        sim: SimHandle, tmp_path: Path):
    repo = tmp_path / "mono"
    proj = project(repo / "astro", AF2.format(v="12.5.0"), name="project")
    subprocess.run(["rm", "-rf", str(proj / ".git")], check=True)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "Mono repo with an Astro project")
    _git(repo, "remote", "add", "origin", "git@github.com:acme/mono.git")
    _git(repo, "checkout", "-q", "--detach")
    git = _deployed(sim, proj)["git"]
    assert (git["path"], git["branch"], git["authorName"]) == ("astro/project", "HEAD", "Ada Lovelace")


def test_no_origin_or_an_unparsable_one_sends_no_metadata(sim: SimHandle, tmp_path: Path):
    proj = project(tmp_path, AF2.format(v="12.5.0"))
    record = _deployed(sim, proj, "--description", "by hand")
    assert "git" not in record and record["description"] == "by hand"
    _git(proj, "remote", "add", "origin", str(tmp_path / "bare.git"))  # a path: no ':'
    assert gitmeta.collect(proj, say=lambda _: None) == (None, "")


def test_untracked_files_do_not_count_but_tracked_changes_drop_everything(tmp_path: Path):
    proj = project(tmp_path, AF2.format(v="12.5.0"))
    _git(proj, "remote", "add", "origin", "git@gitlab.com:team/project.git")
    (proj / "notes.txt").write_text("untracked\n")
    assert not gitmeta.has_uncommitted_changes(proj)
    assert gitmeta.collect(proj, say=lambda _: None)[0] is not None
    (proj / "Dockerfile").write_text(AF2.format(v="12.6.0"))
    said: list[str] = []
    assert gitmeta.collect(proj, say=said.append) == (None, "")
    assert said == [gitmeta.DIRTY_NOTE]


def test_the_message_is_cut_at_72_bytes_and_a_quote_in_the_author_drops_everything(tmp_path: Path):
    proj = project(tmp_path, AF2.format(v="12.5.0"))
    _git(proj, "remote", "add", "origin", "git@github.com:acme/dags.git")
    _git(proj, "commit", "-q", "--allow-empty", "-m", "x" * 100 + "\n\nbody")
    assert gitmeta.collect(proj)[1] == "x" * 72
    subprocess.run(["git", "-c", 'user.name=Bob "The Builder"', "-c", "user.email=b@x.invalid",
                    "commit", "-q", "--allow-empty", "-m", "quoted"], cwd=proj, check=True)
    assert gitmeta.collect(proj) == (None, "")


def test_deploy_git_metadata_false_in_a_config_turns_it_off(tmp_path: Path):
    proj = project(tmp_path, AF2.format(v="12.5.0"))
    home = tmp_path / "home"
    (home / ".astro").mkdir(parents=True)
    (home / ".astro" / "config.yaml").write_text("deploy:\n  git_metadata: false\n")
    assert gitmeta.enabled(proj, {"ASTRO_HOME": str(home)}) is False
    (proj / ".astro" / "config.yaml").write_text(
        "project:\n  name: proj\ndeploy:\n  git_metadata: \"true\"\n")
    assert gitmeta.enabled(proj, {"ASTRO_HOME": str(home)}) is True  # the project's wins
    assert gitmeta.enabled(tmp_path / "other", {"ASTRO_HOME": str(tmp_path / "none")}) is True
