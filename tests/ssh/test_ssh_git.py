"""upgrade.git driven through an SSHHost on a real repository: the code path of a runner."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from upgrade.errors import RepoError, RepoNotClean
from upgrade.hosts import git
from upgrade.hosts.host import LocalHost
from upgrade.hosts.ssh import SSHHost

pytestmark = pytest.mark.sshd

DOCKERFILE = "FROM quay.io/astronomer/astro-runtime:12.1.0\r\n# keep me\r\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repo with a space and a quote in its path, one commit, an unrelated dirty file."""
    path = tmp_path / "astro project's repo"
    path.mkdir()
    run = ["git", "-c", "init.defaultBranch=main", "-c", "user.name=T", "-c", "user.email=t@x",
           "-c", "commit.gpgsign=false"]
    subprocess.run([*run, "init", "-q"], cwd=path, check=True)
    (path / "Dockerfile").write_bytes(DOCKERFILE.encode())
    (path / "notes.txt").write_text("n\n")
    subprocess.run([*run, "add", "-A"], cwd=path, check=True)
    subprocess.run([*run, "commit", "-q", "-m", "init"], cwd=path, check=True)
    return path


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          check=True).stdout


def test_status_over_ssh_matches_status_on_this_machine(ssh_host: SSHHost, repo: Path) -> None:
    (repo / "notes.txt").write_text("changed\n")
    (repo / "new file.txt").write_text("u\n")
    remote = git.status(ssh_host, str(repo))
    local = git.status(LocalHost(), str(repo))
    assert remote == local
    assert remote.branch == "main" and not remote.clean
    assert {c.path for c in remote.changes} == {"notes.txt", "new file.txt"}


def test_a_whole_upgrade_commit_over_ssh(ssh_host: SSHHost, repo: Path) -> None:
    git.ensure_clean(ssh_host, str(repo))
    assert git.prepare_branch(ssh_host, str(repo), "upgrade/runtime-12.4.0") == "created"
    new = ssh_host.read_text(str(repo / "Dockerfile")).replace("12.1.0", "12.4.0")
    ssh_host.write_text(str(repo / "Dockerfile"), new)
    (repo / "notes.txt").write_text("someone else's change\n")
    message = "Upgrade Astro Runtime to 12.4.0 ($(not run); 'quoted')"
    sha = git.commit_file(ssh_host, str(repo), "Dockerfile", message)
    assert sha == _git(repo, "rev-parse", "HEAD").strip()
    assert _git(repo, "log", "-1", "--format=%B").strip() == message
    assert _git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["Dockerfile"]
    assert (repo / "Dockerfile").read_bytes() == DOCKERFILE.replace("12.1.0", "12.4.0").encode()
    # The runner's session has no git identity (an empty HOME): the fallback is used.
    assert _git(repo, "log", "-1", "--format=%an <%ae>").strip() == (
        f"{git.FALLBACK_NAME} <{git.FALLBACK_EMAIL}>")
    # Re-running commits nothing twice; the unrelated change is untouched.
    assert git.commit_file(ssh_host, str(repo), "Dockerfile", message) is None
    head = ssh_host.run(["git", "log", "-1", "--format=%H%n%B"], cwd=str(repo), timeout=30)
    assert head.stdout.splitlines()[0] == sha and message.splitlines()[0] in head.stdout
    assert (repo / "notes.txt").read_text() == "someone else's change\n"


def test_an_unclean_repo_is_refused_over_ssh_as_locally(ssh_host: SSHHost, repo: Path) -> None:
    (repo / "notes.txt").write_text("dirty\n")
    with pytest.raises(RepoNotClean, match="notes.txt"):
        git.ensure_clean(ssh_host, str(repo))
    with pytest.raises(RepoError, match="not a usable git repository"):
        git.ensure_clean(ssh_host, str(repo.parent / "missing"))
