"""Real git repos in tmp dirs, isolated from the user's own git config and identity."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from upgrade.hosts.host import LocalHost

TEST_NAME = "Test Author"
TEST_EMAIL = "test@example.com"

# Variables a parent git (a hook, a developer's shell) may have set that would point
# every git call at another repository or another identity.
_LEAKY = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_CEILING_DIRECTORIES", "GIT_NAMESPACE",
    "GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_ASKPASS",
    "SSH_ASKPASS", "DISPLAY", "EMAIL", "GIT_SSH_COMMAND",
)


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME, global and system git config point at empty tmp files; a test identity is set."""
    home = tmp_path / "home"
    home.mkdir()
    global_config = home / "gitconfig"
    global_config.write_text("")
    for name in _LEAKY:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(global_config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", TEST_NAME)
        monkeypatch.setenv(f"GIT_{role}_EMAIL", TEST_EMAIL)
    return global_config


@pytest.fixture
def host() -> LocalHost:
    return LocalHost()


def run_git(repo: Path, *args: str, check: bool = True) -> str:
    """Run git in ``repo`` for test setup and inspection; returns stdout."""
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout


@pytest.fixture
def git():
    """The test-side git runner: ``git(repo, "log", ...)`` returns stdout."""
    return run_git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repo on branch main with one commit: a Dockerfile and a README."""
    path = tmp_path / "project"
    path.mkdir()
    run_git(path, "init", "-q", "-b", "main")
    (path / "Dockerfile").write_text("FROM quay.io/astronomer/astro-runtime:12.4.0\n")
    (path / "README.md").write_text("readme\n")
    run_git(path, "add", "-A")
    run_git(path, "commit", "-q", "-m", "initial")
    return path
