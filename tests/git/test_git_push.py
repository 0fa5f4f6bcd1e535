"""push() to real remotes: a local bare repo, a missing one, and one that wants a password."""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from upgrade.errors import CommandFailed, PushFailed, RepoError
from upgrade.hosts.git import commit_file, prepare_branch, push

BRANCH = "upgrade/runtime-12.5.0"


@pytest.fixture
def remote(tmp_path, git):
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    return bare


def _branch_with_commit(host, repo) -> str:
    prepare_branch(host, str(repo), BRANCH)
    (repo / "Dockerfile").write_text("FROM quay.io/astronomer/astro-runtime:12.5.0\n")
    sha = commit_file(host, str(repo), "Dockerfile", "Upgrade Astro Runtime to 12.5.0")
    assert sha
    return sha


def test_push_to_a_bare_remote_sets_upstream(host, repo, git, remote):
    git(repo, "remote", "add", "origin", str(remote))
    sha = _branch_with_commit(host, repo)
    push(host, str(repo), "origin", BRANCH)
    assert git(repo, "ls-remote", str(remote), f"refs/heads/{BRANCH}").split() == [
        sha,
        f"refs/heads/{BRANCH}",
    ]
    assert git(repo, "rev-parse", "--abbrev-ref", f"{BRANCH}@{{upstream}}").strip() == (
        f"origin/{BRANCH}"
    )
    push(host, str(repo), "origin", BRANCH)  # a re-run pushes nothing new and succeeds


def test_unknown_remote_is_refused_before_running_push(host, repo, git, remote):
    git(repo, "remote", "add", "origin", str(remote))
    _branch_with_commit(host, repo)
    with pytest.raises(RepoError) as caught:
        push(host, str(repo), "upstream", BRANCH)
    message = str(caught.value)
    assert str(repo) in message and "'upstream'" in message and "origin" in message


def test_remote_that_is_gone_is_a_clear_push_failure(host, repo, git, remote):
    git(repo, "remote", "add", "origin", str(remote))
    _branch_with_commit(host, repo)
    shutil.rmtree(remote)
    with pytest.raises(PushFailed) as caught:
        push(host, str(repo), "origin", BRANCH)
    error = caught.value
    assert isinstance(error, CommandFailed)
    message = str(error)
    assert message.startswith(
        f"Could not push branch '{BRANCH}' of {repo} to remote 'origin' ({remote})."
    )
    assert "does not appear to be a git repository" in message  # git's own words
    assert error.exit_code != 0


def test_rejected_non_fast_forward_push(host, repo, git, remote, tmp_path):
    git(repo, "remote", "add", "origin", str(remote))
    _branch_with_commit(host, repo)
    push(host, str(repo), "origin", BRANCH)
    git(repo, "commit", "-q", "--amend", "-m", "rewritten")
    with pytest.raises(PushFailed, match="rejected"):
        push(host, str(repo), "origin", BRANCH)


class _AuthRequired(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_push_that_needs_a_password_fails_fast_instead_of_prompting(host, repo, git):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AuthRequired)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/team/project.git"
        git(repo, "remote", "add", "origin", url)
        _branch_with_commit(host, repo)
        with pytest.raises(PushFailed) as caught:
            push(host, str(repo), "origin", BRANCH, timeout=30)
        assert not caught.value.timed_out  # a prompt would have waited for the 30 s
        assert "terminal prompts disabled" in str(caught.value)
    finally:
        server.shutdown()
        server.server_close()


def test_password_in_the_remote_url_is_never_shown(host, repo, git, remote):
    git(repo, "remote", "add", "origin", "http://deploybot:hunter2-secret@127.0.0.1:9/x.git")
    _branch_with_commit(host, repo)
    with pytest.raises(PushFailed) as caught:
        push(host, str(repo), "origin", BRANCH, timeout=30)
    message = str(caught.value)
    assert "hunter2-secret" not in message
    assert "deploybot:***@127.0.0.1" in message
