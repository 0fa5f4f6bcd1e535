"""The forge adapters read the documented shapes (tests/git_modes/recorded/, with their
sources): a loopback server replays the documented answers, the adapters talk to it over
real HTTP. (The forge simulator, in the other tests, answers in the same shapes.)"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from upgrade.config.git import GitSettings
from upgrade.controlplane.forge_github import GitHub
from upgrade.controlplane.forge_gitlab import GitLab
from upgrade.controlplane.http import RetryPolicy
from upgrade.errors import ForgeAuthError, ForgeError

RECORDED = Path(__file__).parent / "recorded"
GITHUB = json.loads((RECORDED / "github.json").read_text())
GITLAB = json.loads((RECORDED / "gitlab.json").read_text())
FAST = RetryPolicy(attempts=3, backoff=0.01, backoff_max=0.02, total=5, jitter=False)
ENV = {"GITHUB_TOKEN": "ghp_secret_token_value", "GITLAB_TOKEN": "glpat-secret-token"}


@dataclass
class Seen:
    """A request the replaying server received."""

    method: str
    path: str  # as sent, percent-encoding kept
    headers: dict[str, str] = field(default_factory=dict)


Answer = tuple[int, dict[str, str], Any]  # status, headers, JSON body


@contextmanager
def replay(answer: Callable[[Seen], Answer]) -> Iterator[tuple[str, list[Seen]]]:
    """A loopback HTTP server answering each request with ``answer(request)``."""
    seen: list[Seen] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def _any(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
            seen.append(request)
            status, headers, body = answer(request)
            raw = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PUT = _any

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def _github(url: str) -> GitHub:
    return GitHub(GitSettings(mode="pull-request", forge="github", forge_url=url),
                  "octocat/Hello-World", env=ENV, policy=FAST)


def _gitlab(url: str) -> GitLab:
    return GitLab(GitSettings(mode="pull-request", forge="gitlab", forge_url=url + "/api/v4"),
                  "group/project", env=ENV, policy=FAST)


def _always(status: int, body: Any, headers: dict[str, str] | None = None
            ) -> Callable[[Seen], Answer]:
    return lambda request: (status, headers or {}, body)


def test_github_documented_pull_request_is_read() -> None:
    example = GITHUB["operations"]["pulls/get"]["response_200_example"]
    with replay(_always(200, example)) as (url, seen):
        pr = _github(url).get(1347)
    assert (pr.number, pr.state, pr.head_branch, pr.merge_commit) == (
        1347, "open", "new-topic", None)  # a test merge commit is not a merge
    assert seen[0].path == "/repos/octocat/Hello-World/pulls/1347"
    assert seen[0].headers["authorization"] == "Bearer ghp_secret_token_value"
    assert seen[0].headers["x-github-api-version"] == "2022-11-28"
    with replay(_always(200, {**example, "state": "closed", "merged": True})) as (url, _):
        merged = _github(url).get(1347)
    assert merged.state == "merged" and merged.merge_commit == example["merge_commit_sha"]


def test_github_merge_answers() -> None:
    op = GITHUB["operations"]["pulls/merge"]["responses"]
    with replay(_always(200, GITHUB["operations"]["pulls/get"]["response_200_example"])) as (
            url, _):
        pr = _github(url).get(1)
    for code, outcome in (("200", "merged"), ("405", "not_mergeable"), ("409", "head_moved")):
        with replay(_always(int(code), op[code])) as (url, seen):
            done = _github(url).merge(pr, "m")
        assert done.outcome == outcome
        assert (seen[0].method, seen[0].path) == ("PUT", "/repos/octocat/Hello-World/pulls/1347"
                                                  "/merge")
    assert done.said == op["409"]["message"]


def test_gitlab_documented_merge_request_and_pipeline_are_read() -> None:
    example = GITLAB["operations"]["get"]["response_200_example"]
    with replay(_always(200, example)) as (url, seen):
        forge = _gitlab(url)
        mr = forge.get(133)
        checks = forge.checks(mr)
    assert (mr.number, mr.state, mr.head_sha, checks) == (133, "open", example["sha"], "success")
    assert seen[0].path == "/api/v4/projects/group%2Fproject/merge_requests/133"
    assert seen[0].headers["private-token"] == "glpat-secret-token"


def test_401_is_one_line_naming_the_repo_without_the_token() -> None:
    with replay(_always(401, GITHUB["errors"]["401"])) as (url, _), \
            pytest.raises(ForgeAuthError) as caught:
        _github(url).get(1)
    message = str(caught.value)
    assert "\n" not in message and "octocat/Hello-World" in message and "$GITHUB_TOKEN" in message
    assert ENV["GITHUB_TOKEN"] not in message


def test_a_spent_rate_limit_waits_until_the_reset() -> None:
    answers: list[Answer] = [
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()))},
         {"message": "API rate limit exceeded"}),
        (200, {}, [])]
    with replay(lambda request: answers.pop(0)) as (url, seen):
        assert _github(url).find_open("b", "main") is None
    assert len(seen) == 2 and seen[1].path.startswith("/repos/octocat/Hello-World/pulls?")


def test_a_missing_token_is_refused_before_any_request() -> None:
    with pytest.raises(ForgeAuthError, match=r"\$GITLAB_TOKEN is not set"):
        GitLab(GitSettings(mode="pull-request", forge="gitlab"), "g/p", env={})


def test_5xx_on_a_write_is_not_repeated() -> None:
    with replay(_always(502, {"message": "Bad Gateway"})) as (url, seen), \
            pytest.raises(ForgeError, match="502"):
        _github(url).create("b", "main", "t", "body")
    assert [r.method for r in seen] == ["POST"]


def test_the_preflight_reads_the_documented_repository_and_project() -> None:
    github = GITHUB["operations"]["repos/get"]
    with replay(_always(200, github["response_200_example"])) as (url, seen):
        _github(url).check_access()
    assert [(r.method, r.path) for r in seen] == [("GET", "/repos/octocat/Hello-World")]
    gitlab = GITLAB["operations"]["project"]
    with replay(_always(200, gitlab["response_200_example"])) as (url, seen):
        _gitlab(url).check_access()
    assert [(r.method, r.path) for r in seen] == [("GET", "/api/v4/projects/group%2Fproject")]
    assert seen[0].headers["private-token"] == "glpat-secret-token"


def test_a_repository_the_token_cannot_see_is_one_line_naming_repo_and_variable() -> None:
    # GitHub answers 404 (not 403) for a private repository a token has no access to.
    with replay(_always(404, GITHUB["operations"]["repos/get"]["responses"]["404"])) as (
            url, seen), pytest.raises(ForgeAuthError) as caught:
        _github(url).check_access()
    message = str(caught.value)
    assert message.startswith("GitHub does not show octocat/Hello-World to the token in "
                              "$GITHUB_TOKEN (404: Not Found)"), message
    assert "\n" not in message and ENV["GITHUB_TOKEN"] not in message
    assert len(seen) == 1  # a read, not retried: the answer is final
    with replay(_always(401, GITLAB["operations"]["project"]["responses"]["401"])) as (
            url, _), pytest.raises(ForgeAuthError, match=r"refused the token in \$GITLAB_TOKEN "
                                                          r"for group/project \(401"):
        _gitlab(url).check_access()
