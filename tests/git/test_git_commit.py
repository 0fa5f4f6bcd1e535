"""prepare_branch() and commit_file() on real repos."""

from __future__ import annotations

import subprocess

import pytest

from upgrade.errors import CommandFailed, RepoError
from upgrade.hosts.git import (
    FALLBACK_EMAIL,
    FALLBACK_NAME,
    commit_file,
    prepare_branch,
    status,
)

NEW_FROM = "FROM quay.io/astronomer/astro-runtime:12.5.0\n"


class TestPrepareBranch:
    def test_creates_from_head_then_is_idempotent(self, host, repo, git):
        head = git(repo, "rev-parse", "HEAD").strip()
        assert prepare_branch(host, str(repo), "upgrade/runtime-12.5.0") == "created"
        assert status(host, str(repo)).branch == "upgrade/runtime-12.5.0"
        assert git(repo, "rev-parse", "upgrade/runtime-12.5.0").strip() == head
        assert prepare_branch(host, str(repo), "upgrade/runtime-12.5.0") == "current"

    def test_switches_to_an_existing_branch_without_moving_it(self, host, repo, git):
        prepare_branch(host, str(repo), "upgrade/x")
        (repo / "Dockerfile").write_text(NEW_FROM)
        sha = commit_file(host, str(repo), "Dockerfile", "bump")
        git(repo, "switch", "-q", "main")
        assert prepare_branch(host, str(repo), "upgrade/x") == "switched"
        assert status(host, str(repo)).head == sha
        assert (repo / "Dockerfile").read_text() == NEW_FROM

    def test_from_detached_head(self, host, repo, git):
        git(repo, "switch", "-q", "--detach", "HEAD")
        assert prepare_branch(host, str(repo), "upgrade/y") == "created"
        assert status(host, str(repo)).branch == "upgrade/y"

    @pytest.mark.parametrize(
        "name", ["-rf", "has space", "a..b", "HEAD", "@{-1}", "ends.lock", "trailing/", "x~1"]
    )
    def test_refuses_names_git_rejects(self, host, repo, name):
        with pytest.raises(RepoError, match="is not a valid git branch name"):
            prepare_branch(host, str(repo), name)
        assert status(host, str(repo)).branch == "main"

    def test_previous_branch_shorthand_is_not_expanded(self, host, repo, git):
        git(repo, "switch", "-q", "-c", "other")
        git(repo, "switch", "-q", "main")
        with pytest.raises(RepoError):
            prepare_branch(host, str(repo), "@{-1}")
        assert status(host, str(repo)).branch == "main"

    def test_switch_refused_by_git_is_a_command_failure_naming_the_branch(
        self, host, repo, git
    ):
        prepare_branch(host, str(repo), "upgrade/z")
        (repo / "README.md").write_text("on the branch\n")
        git(repo, "commit", "-q", "-am", "branch readme")
        git(repo, "switch", "-q", "main")
        (repo / "README.md").write_text("uncommitted local edit\n")
        with pytest.raises(CommandFailed, match="switch .* to its existing branch 'upgrade/z'"):
            prepare_branch(host, str(repo), "upgrade/z")
        assert (repo / "README.md").read_text() == "uncommitted local edit\n"


class TestCommitFile:
    def test_commits_exactly_one_file_while_others_stay_dirty(self, host, repo, git):
        (repo / "extra.txt").write_text("staged by the user\n")
        git(repo, "add", "extra.txt")
        (repo / "README.md").write_text("modified, unstaged\n")
        (repo / "untracked.txt").write_text("untracked\n")
        (repo / "Dockerfile").write_text(NEW_FROM)

        sha = commit_file(host, str(repo), "Dockerfile", "Upgrade Astro Runtime to 12.5.0")

        assert sha == git(repo, "rev-parse", "HEAD").strip()
        assert git(repo, "show", "--name-only", "--format=", sha).split() == ["Dockerfile"]
        assert git(repo, "show", f"{sha}:Dockerfile") == NEW_FROM
        assert git(repo, "log", "-1", "--format=%B", sha).strip() == (
            "Upgrade Astro Runtime to 12.5.0"
        )
        # Everything else is exactly as the user left it: staged stays staged, the rest
        # unstaged or untracked.
        after = {c.path: c.code for c in status(host, str(repo)).changes}
        assert after == {"extra.txt": "A ", "README.md": " M", "untracked.txt": "??"}

    def test_recommit_without_change_returns_none(self, host, repo, git):
        (repo / "Dockerfile").write_text(NEW_FROM)
        first = commit_file(host, str(repo), "Dockerfile", "bump")
        assert first is not None
        assert commit_file(host, str(repo), "Dockerfile", "bump") is None
        assert git(repo, "rev-parse", "HEAD").strip() == first
        assert git(repo, "rev-list", "--count", "HEAD").strip() == "2"

    def test_unchanged_file_commits_nothing(self, host, repo, git):
        before = git(repo, "rev-parse", "HEAD").strip()
        assert commit_file(host, str(repo), "Dockerfile", "bump") is None
        assert git(repo, "rev-parse", "HEAD").strip() == before

    def test_preserves_crlf_bytes(self, host, repo, git):
        (repo / "Dockerfile").write_bytes(b"FROM a:12.5.0\r\nRUN x\r\n")
        sha = commit_file(host, str(repo), "Dockerfile", "crlf")
        blob = subprocess.run(
            ["git", "cat-file", "blob", f"{sha}:Dockerfile"], cwd=repo, capture_output=True
        ).stdout
        assert blob == b"FROM a:12.5.0\r\nRUN x\r\n"

    def test_new_untracked_file_in_a_subdirectory_project(self, host, repo, git):
        project = repo / "projects" / "etl"
        project.mkdir(parents=True)
        (project / "Dockerfile").write_text(NEW_FROM)
        (project / "other.py").write_text("x = 1\n")
        sha = commit_file(host, str(project), "Dockerfile", "add etl")
        assert git(repo, "show", "--name-only", "--format=", sha).split() == [
            "projects/etl/Dockerfile"
        ]
        assert "projects/etl/other.py" in {c.path for c in status(host, str(repo)).changes}

    def test_glob_characters_are_a_file_name_not_a_pattern(self, host, repo, git):
        (repo / "D*").write_text("literal\n")
        (repo / "Dockerfile").write_text(NEW_FROM)
        sha = commit_file(host, str(repo), "D*", "odd name")
        assert git(repo, "show", "--name-only", "--format=", sha).split() == ["D*"]
        assert {c.path: c.code for c in status(host, str(repo)).changes}["Dockerfile"] == " M"

    def test_refuses_a_directory_a_missing_file_and_paths_outside(self, host, repo):
        (repo / "dags").mkdir()
        (repo / "dags" / "a.py").write_text("a\n")
        (repo / "dags" / "b.py").write_text("b\n")
        with pytest.raises(RepoError, match="not a single file"):
            commit_file(host, str(repo), "dags", "msg")
        with pytest.raises(RepoError, match="does not exist"):
            commit_file(host, str(repo), "Nope", "msg")
        with pytest.raises(RepoError, match="must be a path inside"):
            commit_file(host, str(repo), "../elsewhere/Dockerfile", "msg")
        assert tuple(c.path for c in status(host, str(repo)).changes) == ("dags/a.py", "dags/b.py")

    def test_identity_from_environment(self, host, repo, git):
        (repo / "Dockerfile").write_text(NEW_FROM)
        sha = commit_file(host, str(repo), "Dockerfile", "bump")
        assert git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>", sha).strip() == (
            "Test Author <test@example.com>|Test Author <test@example.com>"
        )

    def test_identity_from_git_config(self, host, repo, git, monkeypatch):
        for role in ("AUTHOR", "COMMITTER"):
            monkeypatch.delenv(f"GIT_{role}_NAME")
            monkeypatch.delenv(f"GIT_{role}_EMAIL")
        git(repo, "config", "user.name", "Repo Owner")
        git(repo, "config", "user.email", "owner@example.com")
        (repo / "Dockerfile").write_text(NEW_FROM)
        sha = commit_file(host, str(repo), "Dockerfile", "bump")
        assert git(repo, "log", "-1", "--format=%an <%ae>", sha).strip() == (
            "Repo Owner <owner@example.com>"
        )

    def test_fallback_identity_on_a_fresh_machine(
        self, host, repo, git, monkeypatch, isolated_git
    ):
        for role in ("AUTHOR", "COMMITTER"):
            monkeypatch.delenv(f"GIT_{role}_NAME")
            monkeypatch.delenv(f"GIT_{role}_EMAIL")
        (repo / "Dockerfile").write_text(NEW_FROM)
        sha = commit_file(host, str(repo), "Dockerfile", "bump")
        assert git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>", sha).strip() == (
            f"{FALLBACK_NAME} <{FALLBACK_EMAIL}>|{FALLBACK_NAME} <{FALLBACK_EMAIL}>"
        )
        # The fallback is passed per command; no config file is ever written.
        assert isolated_git.read_text() == ""
        assert "user." not in (repo / ".git" / "config").read_text()

    def test_fallback_fills_only_the_missing_half(self, host, repo, git, monkeypatch):
        for role in ("AUTHOR", "COMMITTER"):
            monkeypatch.delenv(f"GIT_{role}_NAME")
            monkeypatch.delenv(f"GIT_{role}_EMAIL")
        git(repo, "config", "user.email", "owner@example.com")
        (repo / "Dockerfile").write_text(NEW_FROM)
        sha = commit_file(host, str(repo), "Dockerfile", "bump")
        assert git(repo, "log", "-1", "--format=%an <%ae>", sha).strip() == (
            f"{FALLBACK_NAME} <owner@example.com>"
        )

    def test_failing_pre_commit_hook_is_a_clear_error(self, host, repo):
        hook = repo / ".git" / "hooks" / "pre-commit"
        hook.write_text("#!/bin/sh\necho 'lint says no' >&2\nexit 1\n")
        hook.chmod(0o755)
        (repo / "Dockerfile").write_text(NEW_FROM)
        with pytest.raises(CommandFailed) as caught:
            commit_file(host, str(repo), "Dockerfile", "bump")
        message = str(caught.value)
        assert message.startswith(f"Could not commit Dockerfile in {repo}.")
        assert "lint says no" in message
