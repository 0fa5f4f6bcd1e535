"""status() and ensure_clean() on real repos: clean, dirty, and mid-operation."""

from __future__ import annotations

from pathlib import Path

import pytest

from upgrade.errors import InputError, RepoError, RepoNotClean
from upgrade.hosts import git as repo_git
from upgrade.hosts.git import ensure_clean, status


def _conflict(repo: Path, git, *, theirs: str = "feature") -> None:
    """Branches main and ``theirs`` both change README.md differently."""
    git(repo, "switch", "-q", "-c", theirs)
    (repo / "README.md").write_text("theirs\n")
    git(repo, "commit", "-q", "-am", "theirs")
    git(repo, "switch", "-q", "main")
    (repo / "README.md").write_text("ours\n")
    git(repo, "commit", "-q", "-am", "ours")


class TestStatus:
    def test_clean_repo_reports_branch_head_and_remotes(self, host, repo, git, tmp_path):
        git(repo, "remote", "add", "origin", str(tmp_path / "nowhere.git"))
        found = status(host, str(repo))
        assert found.is_repo and found.clean
        assert found.branch == "main" and not found.detached
        assert found.head == git(repo, "rev-parse", "HEAD").strip()
        assert found.remotes == ("origin",)
        assert found.changes == () and found.in_progress == ()
        assert ensure_clean(host, str(repo)).head == found.head

    def test_not_a_repo(self, host, tmp_path):
        plain = tmp_path / "plain"
        plain.mkdir()
        found = status(host, str(plain))
        assert not found.is_repo
        assert "not a git repository" in found.problem
        with pytest.raises(RepoError, match="is not a usable git repository") as caught:
            ensure_clean(host, str(plain))
        assert isinstance(caught.value, InputError)  # exit code 2: bad input

    def test_bare_repository_has_no_work_tree(self, host, tmp_path, git):
        git(tmp_path, "init", "-q", "--bare", "bare.git")
        with pytest.raises(RepoError, match="work tree"):
            ensure_clean(host, str(tmp_path / "bare.git"))

    def test_missing_directory(self, host, tmp_path):
        missing = tmp_path / "gone"
        assert status(host, str(missing)).problem == "the directory does not exist"
        with pytest.raises(RepoError, match="does not exist"):
            ensure_clean(host, str(missing))

    def test_detached_head_and_repo_without_commits(self, host, repo, git, tmp_path):
        git(repo, "switch", "-q", "--detach", "HEAD")
        found = status(host, str(repo))
        assert found.detached and found.branch is None and found.head
        empty = tmp_path / "empty"
        empty.mkdir()
        git(empty, "init", "-q", "-b", "trunk")
        fresh = status(host, str(empty))
        assert fresh.is_repo and fresh.branch == "trunk" and fresh.head is None

    def test_modified_staged_untracked_deleted_and_renamed_files_are_named(
        self, host, repo, git
    ):
        (repo / "Dockerfile").write_text("FROM changed\n")  # modified, unstaged
        (repo / "staged.txt").write_text("new\n")
        git(repo, "add", "staged.txt")  # staged
        (repo / "sub" / "deep").mkdir(parents=True)
        (repo / "sub" / "deep" / "untracked file.txt").write_text("x\n")  # untracked, nested
        git(repo, "mv", "README.md", "README.rst")  # renamed, staged
        found = status(host, str(repo))
        by_path = {change.path: change for change in found.changes}
        assert by_path["Dockerfile"].code == " M"
        assert by_path["staged.txt"].code == "A "
        assert by_path["sub/deep/untracked file.txt"].code == "??"
        assert by_path["README.rst"].code == "R " and by_path["README.rst"].orig_path == "README.md"
        assert not found.clean
        with pytest.raises(RepoNotClean) as caught:
            ensure_clean(host, str(repo))
        message = str(caught.value)
        assert str(repo) in message
        for described in (
            "Dockerfile (modified, not staged)",
            "staged.txt (added, staged)",
            "sub/deep/untracked file.txt (untracked)",
            "README.rst (renamed, staged from README.md)",
        ):
            assert described in message
        assert "Commit, stash or discard them" in message

    def test_ignored_files_do_not_count(self, host, repo, git):
        (repo / ".gitignore").write_text("*.log\n")
        git(repo, "add", ".gitignore")
        git(repo, "commit", "-q", "-m", "ignore logs")
        (repo / "build.log").write_text("noise\n")
        assert status(host, str(repo)).clean

    def test_allow_lets_named_files_be_dirty(self, host, repo):
        (repo / "Dockerfile").write_text("FROM rewritten-by-a-killed-run\n")
        ensure_clean(host, str(repo), allow={"Dockerfile"})
        (repo / "notes.txt").write_text("user's work\n")
        with pytest.raises(RepoNotClean, match="notes.txt") as caught:
            ensure_clean(host, str(repo), allow={"Dockerfile"})
        assert "Dockerfile" not in str(caught.value)

    def test_project_in_a_subdirectory_of_a_monorepo(self, host, repo, git):
        project = repo / "projects" / "etl"
        project.mkdir(parents=True)
        (project / "Dockerfile").write_text("FROM x\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "etl")
        (project / "Dockerfile").write_text("FROM y\n")
        found = status(host, str(project))
        assert found.prefix == "projects/etl/"
        assert tuple(c.path for c in found.changes) == ("projects/etl/Dockerfile",)
        ensure_clean(host, str(project), allow={"Dockerfile"})  # allow is relative to repo_dir

    def test_long_lists_are_cut_short(self, host, repo):
        for number in range(30):
            (repo / f"f{number:02}.txt").write_text("x\n")
        with pytest.raises(RepoNotClean, match=r"\(30 files\).* and 10 more\."):
            ensure_clean(host, str(repo))


class TestInProgress:
    def test_mid_merge(self, host, repo, git):
        _conflict(repo, git)
        git(repo, "merge", "feature", check=False)
        found = status(host, str(repo))
        assert found.in_progress == ("merge",)
        assert [str(c) for c in found.changes] == ["README.md (conflicted)"]
        with pytest.raises(RepoNotClean) as caught:
            ensure_clean(host, str(repo))
        assert "in the middle of a merge" in str(caught.value)
        assert "README.md" not in str(caught.value)  # the operation is the problem to fix
        assert "git merge --abort" in str(caught.value)
        git(repo, "merge", "--abort")
        assert status(host, str(repo)).clean

    def test_mid_rebase_merge_backend(self, host, repo, git):
        _conflict(repo, git)
        git(repo, "rebase", "feature", check=False)
        found = status(host, str(repo))
        assert found.in_progress == ("rebase",)
        with pytest.raises(RepoNotClean, match=r"middle of a rebase.*git rebase --abort"):
            ensure_clean(host, str(repo))

    def test_mid_rebase_apply_backend(self, host, repo, git):
        _conflict(repo, git)
        git(repo, "rebase", "--apply", "feature", check=False)
        assert status(host, str(repo)).in_progress == ("rebase",)

    def test_mid_am_is_not_called_a_rebase(self, host, repo, git):
        _conflict(repo, git)
        patch = git(repo, "format-patch", "--stdout", "main..feature")
        (repo.parent / "p.patch").write_text(patch)
        git(repo, "am", str(repo.parent / "p.patch"), check=False)
        found = status(host, str(repo))
        assert found.in_progress == ("am",)
        with pytest.raises(RepoNotClean, match="git am --abort"):
            ensure_clean(host, str(repo))

    def test_cherry_pick_in_progress(self, host, repo, git):
        _conflict(repo, git)
        git(repo, "cherry-pick", "feature", check=False)
        assert status(host, str(repo)).in_progress == ("cherry-pick",)
        with pytest.raises(RepoNotClean, match="git cherry-pick --abort"):
            ensure_clean(host, str(repo))

    def test_revert_in_progress(self, host, repo, git):
        (repo / "README.md").write_text("two\n")
        git(repo, "commit", "-q", "-am", "two")
        (repo / "README.md").write_text("three\n")
        git(repo, "commit", "-q", "-am", "three")
        git(repo, "revert", "--no-edit", "HEAD~1", check=False)
        assert status(host, str(repo)).in_progress == ("revert",)

    def test_bisect_in_progress_even_when_the_tree_is_clean(self, host, repo, git):
        (repo / "README.md").write_text("two\n")
        git(repo, "commit", "-q", "-am", "two")
        git(repo, "bisect", "start", "HEAD", "HEAD~1")
        found = status(host, str(repo))
        assert found.in_progress == ("bisect",) and not found.changes
        with pytest.raises(RepoNotClean, match="git bisect reset"):
            ensure_clean(host, str(repo))

    def test_merge_in_a_linked_worktree_is_found_there_only(self, host, repo, git, tmp_path):
        _conflict(repo, git)
        tree = tmp_path / "tree"
        git(repo, "worktree", "add", "-q", "-b", "wt", str(tree), "main")
        git(tree, "merge", "feature", check=False)
        assert status(host, str(tree)).in_progress == ("merge",)
        assert status(host, str(repo)).in_progress == ()


def test_porcelain_parser_handles_renames_and_odd_names():
    output = "R  new name.txt\0old name.txt\0?? a\nb\0 M plain\0"
    changes = repo_git.parse_porcelain(output)
    assert [(c.code, c.path, c.orig_path) for c in changes] == [
        ("R ", "new name.txt", "old name.txt"),
        ("??", "a\nb", None),
        (" M", "plain", None),
    ]


def test_cherry_pick_sequence_stopped_between_commits(host, repo, git):
    """After resolving one pick of several by hand, only sequencer/ says a pick is running."""
    _conflict(repo, git)
    git(repo, "switch", "-q", "feature")
    (repo / "other.txt").write_text("more\n")
    git(repo, "add", "other.txt")
    git(repo, "commit", "-q", "-m", "more")
    git(repo, "switch", "-q", "main")
    git(repo, "cherry-pick", "main..feature", check=False)  # the first pick conflicts
    (repo / "README.md").write_text("resolved\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "--no-edit")
    assert not (repo / ".git" / "CHERRY_PICK_HEAD").exists()
    assert status(host, str(repo)).in_progress == ("cherry-pick",)
