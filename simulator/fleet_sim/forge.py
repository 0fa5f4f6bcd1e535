"""A loopback forge: GitHub REST v3 and GitLab REST v4 pull/merge requests over real bare
repositories, with faults. ``astro-fleet`` talks to it exactly as to github.com or
gitlab.com (only the base URL differs): it serves the documented shapes of exactly the
endpoints the product's GitHub and GitLab clients use (the repository itself, its
pull/merge requests, the checks of a commit: ``forge_github``, ``forge_gitlab``;
tests/forge_schemas validates every answer against GitHub's OpenAPI description and
GitLab's documented fields).

A project (``owner/name``) is a bare repository on this machine. A pull request's head is
whatever its branch holds in that repository; merging one writes real commits onto the
base branch (a merge commit through ``git merge-tree --write-tree`` + ``commit-tree``, a
squash commit, or a fast-forward, as the project's merge method says) and then runs the
repository's ``post-receive`` hook with that ref update, as a push would (a merge on
GitHub starts the deploy action like any push). Checks are a per-project setting: a state
(``success``, ``failure``) reached ``checks_after`` seconds after the head commit was
first seen (``pending`` until then); which kinds of checks (GitHub's statuses and check
runs, GitLab's pipeline) are settings of the forge's module.

Admin API (loopback, no token): ``POST /_forge/projects`` ``{project: bare path}``;
``POST /_forge/faults`` ``{project, ...}`` with ``checks``, ``checks_after``,
``merge_conflict`` (merge answers 405/406), ``head_moved`` (409), ``unauthorized`` (401 to
everything), ``hidden`` (404 to everything, as to a token without access to a private
repository), ``rate_limit`` (the next N requests answer 429 with ``Retry-After``; GitHub's
403 with ``X-RateLimit-Reset`` instead when ``rate_limit_reset`` gives that epoch time),
``secondary_limit`` (GitHub: the next N requests hit a secondary rate limit), ``slow``
(seconds before each answer), ``close_unmerged`` (a new request is closed at once, as by a
reviewer), and the settings ``forge_github`` and ``forge_gitlab`` describe;
``POST /_forge/merge`` / ``/_forge/close`` ``{project, number}`` (a person's button);
``GET /_forge/state`` (every request and the calls seen).

``fleet-sim forge`` serves one in the foreground; tests start a ``ForgeServer`` in-process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fleet_sim import forge_github, forge_gitlab

Reply = tuple[int, Any, dict[str, str]]  # status, JSON body, extra headers


@dataclass
class Pull:
    """One pull/merge request."""

    number: int
    project: str
    branch: str
    base: str
    title: str
    body: str
    state: str = "open"  # open | closed | merged
    merge_commit: str | None = None
    squash_commit: str | None = None
    created_at: str = ""
    merged_at: str | None = None
    closed_at: str | None = None
    last_head: str | None = None  # the head when it was merged or closed


@dataclass
class Project:
    """A repository the forge serves, its requests and its faults."""

    name: str
    bare: str
    pulls: list[Pull] = field(default_factory=list)
    faults: dict[str, Any] = field(default_factory=dict)
    first_seen: dict[str, float] = field(default_factory=dict)  # head sha -> time


@dataclass(frozen=True)
class Served:
    """One answer the forge gave (what tests/forge_schemas validates)."""

    method: str
    path: str
    status: int
    body: Any


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git(bare: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME="Forge Simulator", GIT_AUTHOR_EMAIL="forge@example.invalid",
               GIT_COMMITTER_NAME="Forge Simulator", GIT_COMMITTER_EMAIL="forge@example.invalid")
    return subprocess.run(["git", "--git-dir", bare, *args], capture_output=True, text=True,
                          input=stdin, env=env, check=False)


class ForgeState:
    """Every project, guarded by one lock (requests arrive on many threads)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.projects: dict[str, Project] = {}
        self.calls: list[str] = []
        self.served: list[Served] = []
        self.lock = threading.RLock()

    # -- git ---------------------------------------------------------------------------

    def head(self, project: Project, branch: str) -> str:
        done = _git(project.bare, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
        return done.stdout.strip()

    def contains(self, project: Project, branch: str, base: str) -> bool:
        """Whether ``branch`` contains ``base``'s head (a fast-forward is possible)."""
        done = _git(project.bare, "merge-base", "--is-ancestor", self.head(project, base),
                    self.head(project, branch))
        return done.returncode == 0

    def checks(self, project: Project, sha: str) -> str:
        """``success``/``failure``/``pending`` for a commit, per the project's setting."""
        seen = project.first_seen.setdefault(sha, time.monotonic())
        if time.monotonic() - seen < float(project.faults.get("checks_after", 0)):
            return "pending"
        return str(project.faults.get("checks", "success"))

    def open(self, project: Project, branch: str, base: str, title: str, body: str) -> Pull:
        """A new request (closed at once under ``close_unmerged``)."""
        pull = Pull(len(project.pulls) + 1, project.name, branch, base, title, body,
                    created_at=_now())
        if project.faults.get("close_unmerged"):
            pull.state, pull.closed_at = "closed", _now()
            pull.last_head = self.head(project, branch)
        project.pulls.append(pull)
        return pull

    def merge(self, project: Project, pull: Pull, *, method: str = "merge",
              squash: bool = False) -> tuple[str, str]:
        """Merge ``pull`` for real: (``merged``, the new base head) or (``conflict``, why).

        ``method``: ``merge`` (a merge commit), ``rebase_merge`` (a merge commit, only when
        the source contains the base) or ``ff`` (the base moves to the source's head, or to
        the squash commit); ``squash`` first squashes the source into one commit on the base.
        """
        if project.faults.get("merge_conflict"):
            return "conflict", "Merge conflict"
        base_sha, head_sha = self.head(project, pull.base), self.head(project, pull.branch)
        tree = _git(project.bare, "merge-tree", "--write-tree", base_sha, head_sha)
        if tree.returncode != 0:
            return "conflict", "Merge conflict"
        linear = _git(project.bare, "merge-base", "--is-ancestor", base_sha, head_sha)
        if method in ("ff", "rebase_merge") and linear.returncode != 0:
            return "conflict", "Fast-forward merge is not possible: rebase the source branch"
        tip, squashed, merge_commit = head_sha, None, None
        if squash:
            made = _git(project.bare, "commit-tree", tree.stdout.split()[0], "-p", base_sha,
                        "-m", f"{pull.title}\n")
            tip = squashed = made.stdout.strip()
        if method == "ff":
            new = tip
        else:
            message = f"Merge pull request #{pull.number} from {pull.branch}\n\n{pull.title}\n"
            made = _git(project.bare, "commit-tree", tree.stdout.split()[0], "-p", base_sha,
                        "-p", tip, "-m", message)
            new = merge_commit = made.stdout.strip()
        moved = _git(project.bare, "update-ref", f"refs/heads/{pull.base}", new, base_sha)
        if not new or moved.returncode != 0:
            return "conflict", "Base branch was modified"
        pull.state, pull.merged_at, pull.last_head = "merged", _now(), head_sha
        pull.merge_commit, pull.squash_commit = merge_commit, squashed
        if method == "ff" and not squash:
            pull.merge_commit = None  # GitLab's fast-forward: no merge commit
        hook = Path(project.bare) / "hooks" / "post-receive"
        if hook.is_file() and os.access(hook, os.X_OK):
            env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
            subprocess.run([str(hook)], cwd=project.bare, env={**env, "GIT_DIR": "."},
                           input=f"{base_sha} {new} refs/heads/{pull.base}\n", text=True,
                           capture_output=True, check=False, timeout=60)
        return "merged", new

    def default_branch(self, project: Project) -> str:
        """The branch the repository's HEAD names (what a forge shows as its default)."""
        done = _git(project.bare, "symbolic-ref", "--short", "HEAD")
        return done.stdout.strip() or "main"


class _Handler(BaseHTTPRequestHandler):
    server_version = "forge-sim/1"
    state: ForgeState  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        path = urlsplit(self.path).path
        if not path.startswith("/_forge/"):
            with self.state.lock:
                self.state.served.append(Served(self.command, path, status, body))
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        except ValueError:
            self._send(400, {"message": "Problems parsing JSON"})
            return
        state = self.state
        path = parts.path
        with state.lock:
            state.calls.append(f"{method} {path}")
        if path.startswith("/_forge/"):
            self._admin(method, path, body)
            return
        gitlab = path.startswith("/api/v4/")
        project = self._project(path, gitlab)
        if project is None:
            self._send(404, {"message": "404 Project Not Found"} if gitlab else
                       forge_github.error("Not Found"))
            return
        faults = project.faults
        if faults.get("slow"):
            time.sleep(float(faults["slow"]))
        if faults.get("rate_limit", 0) > 0:
            with state.lock:
                faults["rate_limit"] -= 1
            if not gitlab and faults.get("rate_limit_reset"):
                # GitHub's spent quota: 403, remaining 0, the reset as epoch seconds.
                self._send(403, forge_github.error("API rate limit exceeded for installation."),
                           {"X-RateLimit-Remaining": "0", "X-RateLimit-Limit": "5000",
                            "X-RateLimit-Reset": str(int(faults["rate_limit_reset"]))})
            else:
                self._send(429, {"message": "429 Too Many Requests"} if gitlab else
                           forge_github.error("API rate limit exceeded"),
                           {"Retry-After": str(faults.get("retry_after", 1)),
                            "X-RateLimit-Remaining": "0"})
            return
        if not gitlab and faults.get("secondary_limit", 0) > 0:
            with state.lock:
                faults["secondary_limit"] -= 1
            self._send(*forge_github.secondary_limit(project))
            return
        token = (self.headers.get("PRIVATE-TOKEN") if gitlab else
                 (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip())
        if faults.get("unauthorized") or token != state.token:
            self._send(401, {"message": "401 Unauthorized"} if gitlab else
                       forge_github.error("Bad credentials"))
            return
        if faults.get("hidden"):  # a private repository the token has no access to
            self._send(404, {"message": "404 Project Not Found"} if gitlab else
                       forge_github.error("Not Found"))
            return
        module = forge_gitlab if gitlab else forge_github
        with state.lock:
            self._send(*module.route(state, method, path, query, body, project))

    def _project(self, path: str, gitlab: bool) -> Project | None:
        if gitlab:
            m = re.match(r"^/api/v4/projects/([^/]+)(?:/|$)", path)
            name = unquote(m.group(1)) if m else ""
        else:
            m = re.match(r"^/repos/([^/]+)/([^/]+)(?:/|$)", path)
            name = f"{unquote(m.group(1))}/{unquote(m.group(2))}" if m else ""
        return self.state.projects.get(name)

    # -- admin -------------------------------------------------------------------------

    def _admin(self, method: str, path: str, body: Any) -> None:
        state = self.state
        with state.lock:
            if path == "/_forge/state" and method == "GET":
                self._send(200, {"projects": {
                    name: {"bare": p.bare, "faults": p.faults,
                           "pulls": [asdict(pull) for pull in p.pulls]}
                    for name, p in state.projects.items()}, "calls": state.calls})
            elif path == "/_forge/projects" and method == "POST":
                for name, bare in body.items():
                    state.projects.setdefault(name, Project(name, str(Path(bare).resolve())))
                self._send(200, {"projects": sorted(state.projects)})
            elif path == "/_forge/faults" and method == "POST":
                project = state.projects[body.pop("project")]
                project.faults = {k: v for k, v in {**project.faults, **body}.items()
                                  if v is not None}
                self._send(200, project.faults)
            elif path in ("/_forge/merge", "/_forge/close") and method == "POST":
                project = state.projects[body["project"]]
                pull = next(p for p in project.pulls if p.number == int(body["number"]))
                if path.endswith("close"):
                    pull.state, pull.closed_at = "closed", _now()
                    pull.last_head = state.head(project, pull.branch)
                    self._send(200, asdict(pull))
                else:
                    outcome, said = state.merge(project, pull)  # a person's merge commit
                    self._send(200 if outcome == "merged" else 409, {"result": outcome,
                                                                      "detail": said})
            else:
                self._send(404, {"message": "no such admin call"})


class ForgeServer:
    """The simulator on a loopback port, served from a thread."""

    def __init__(self, token: str, port: int = 0) -> None:
        self.state = ForgeState(token)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                       name="forge-sim")

    @property
    def url(self) -> str:
        """The GitHub API base URL (GitLab's is this + ``/api/v4``)."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ForgeServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def add_project(self, name: str, bare: str | Path) -> None:
        """Serve ``name`` (``owner/repo``) from the bare repository at ``bare``."""
        with self.state.lock:
            # Absolute: git and the post-receive hook run with the repository as their cwd.
            self.state.projects.setdefault(name, Project(name, str(Path(bare).resolve())))


def serve(token: str, port: int, projects: dict[str, str], url_file: Path | None = None
          ) -> None:
    """Serve ``projects`` (``owner/name`` -> bare repository) until the process is stopped;
    the URL goes to ``url_file`` once the port is bound."""
    server = ForgeServer(token, port)
    for name, bare in projects.items():
        server.add_project(name, bare)
    if url_file is not None:
        url_file.write_text(server.url + "\n", encoding="utf-8")
    print(f"forge simulator listening on {server.url} (GitHub API; GitLab's under /api/v4)",
          file=sys.stderr, flush=True)
    server.httpd.serve_forever()
