"""A loopback forge: GitHub REST v3 and GitLab REST v4 pull/merge requests over real bare
repositories, with faults. ``astro-fleet`` talks to it exactly as to github.com or
gitlab.com (only the base URL differs): it serves the documented shapes of exactly the
endpoints the product's GitHub and GitLab clients use (the repository itself, its
pull/merge requests, the checks of a commit).

A project (``owner/name``) is a bare repository on this machine. A pull request's head is
whatever its branch holds in that repository; merging one writes a real merge commit
(``git merge-tree --write-tree`` + ``commit-tree``) onto the base branch and then runs the
repository's ``post-receive`` hook with that ref update, as a push would (a merge on
GitHub starts the deploy action like any push). Checks are a per-project setting: a state
(``success``, ``failure``) reached ``checks_after`` seconds after the head commit was
first seen (``pending`` until then).

Admin API (loopback, no token): ``POST /_forge/projects`` ``{project: bare path}``;
``POST /_forge/faults`` ``{project, ...}`` with ``checks``, ``checks_after``,
``merge_conflict`` (merge answers 405/406), ``head_moved`` (409), ``unauthorized`` (401 to
everything), ``hidden`` (404 to everything, as to a token without access to a private
repository), ``rate_limit`` (the next N requests answer 429 with ``Retry-After``),
``slow`` (seconds before each answer), ``close_unmerged`` (a new request is closed at
once, as by a reviewer); ``POST /_forge/merge`` / ``/_forge/close`` ``{project, number}``
(a person's button); ``GET /_forge/state`` (every request and the calls seen).

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

GITHUB_WEB = "https://github.example.invalid"


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
    created_at: str = ""
    merged_at: str | None = None


@dataclass
class Project:
    """A repository the forge serves, its requests and its faults."""

    name: str
    bare: str
    pulls: list[Pull] = field(default_factory=list)
    faults: dict[str, Any] = field(default_factory=dict)
    first_seen: dict[str, float] = field(default_factory=dict)  # head sha -> time


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
        self.lock = threading.RLock()

    # -- git ---------------------------------------------------------------------------

    def head(self, project: Project, branch: str) -> str:
        done = _git(project.bare, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
        return done.stdout.strip()

    def checks(self, project: Project, sha: str) -> str:
        """``success``/``failure``/``pending`` for a commit, per the project's setting."""
        seen = project.first_seen.setdefault(sha, time.monotonic())
        if time.monotonic() - seen < float(project.faults.get("checks_after", 0)):
            return "pending"
        return str(project.faults.get("checks", "success"))

    def merge(self, project: Project, pull: Pull) -> tuple[str, str]:
        """Merge ``pull`` for real: (``merged``, sha) or (``conflict``, git's words)."""
        if project.faults.get("merge_conflict"):
            return "conflict", "Merge conflict"
        base_sha, head_sha = self.head(project, pull.base), self.head(project, pull.branch)
        tree = _git(project.bare, "merge-tree", "--write-tree", base_sha, head_sha)
        if tree.returncode != 0:
            return "conflict", tree.stdout.strip().splitlines()[-1:] and "Merge conflict"
        message = f"Merge pull request #{pull.number} from {pull.branch}\n\n{pull.title}\n"
        commit = _git(project.bare, "commit-tree", tree.stdout.split()[0], "-p", base_sha,
                      "-p", head_sha, "-m", message)
        sha = commit.stdout.strip()
        moved = _git(project.bare, "update-ref", f"refs/heads/{pull.base}", sha, base_sha)
        if commit.returncode != 0 or moved.returncode != 0:
            return "conflict", "Base branch was modified"
        pull.state, pull.merge_commit, pull.merged_at = "merged", sha, _now()
        hook = Path(project.bare) / "hooks" / "post-receive"
        if hook.is_file() and os.access(hook, os.X_OK):
            env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
            subprocess.run([str(hook)], cwd=project.bare, env={**env, "GIT_DIR": "."},
                           input=f"{base_sha} {sha} refs/heads/{pull.base}\n", text=True,
                           capture_output=True, check=False, timeout=60)
        return "merged", sha

    # -- shapes ------------------------------------------------------------------------

    def default_branch(self, project: Project) -> str:
        done = _git(project.bare, "symbolic-ref", "--short", "HEAD")
        return done.stdout.strip() or "main"

    def github_repo(self, project: Project) -> dict[str, Any]:
        """Get a repository (full-repository), trimmed; ``permissions`` as GitHub adds it
        for an authenticated caller."""
        owner, _, name = project.name.partition("/")
        return {
            "id": 1 + sorted(self.projects).index(project.name), "name": name,
            "full_name": project.name, "owner": {"login": owner}, "private": True,
            "html_url": f"{GITHUB_WEB}/{project.name}",
            "default_branch": self.default_branch(project),
            "permissions": {"admin": False, "maintain": False, "push": True, "triage": True,
                            "pull": True},
        }

    def gitlab_project(self, project: Project) -> dict[str, Any]:
        """Get a single project, trimmed; ``permissions`` as GitLab adds it for a member."""
        return {
            "id": 1 + sorted(self.projects).index(project.name),
            "path_with_namespace": project.name, "name": project.name.rsplit("/", 1)[-1],
            "web_url": f"https://gitlab.example.invalid/{project.name}",
            "default_branch": self.default_branch(project), "visibility": "private",
            "permissions": {"project_access": {"access_level": 30, "notification_level": 3},
                            "group_access": None},
        }

    def github_pull(self, project: Project, pull: Pull) -> dict[str, Any]:
        owner = project.name.split("/")[0]
        head = self.head(project, pull.branch) or ""
        merged = pull.state == "merged"
        return {
            "url": f"/repos/{project.name}/pulls/{pull.number}",
            "html_url": f"{GITHUB_WEB}/{project.name}/pull/{pull.number}",
            "number": pull.number, "state": "open" if pull.state == "open" else "closed",
            "title": pull.title, "body": pull.body, "draft": False,
            "created_at": pull.created_at, "merged_at": pull.merged_at,
            "closed_at": pull.merged_at if merged else None,
            "merge_commit_sha": pull.merge_commit, "merged": merged,
            "mergeable": None if merged else not project.faults.get("merge_conflict"),
            "head": {"label": f"{owner}:{pull.branch}", "ref": pull.branch, "sha": head},
            "base": {"label": f"{owner}:{pull.base}", "ref": pull.base,
                     "sha": self.head(project, pull.base)},
        }

    def gitlab_mr(self, project: Project, pull: Pull) -> dict[str, Any]:
        head = self.head(project, pull.branch) or ""
        state = {"open": "opened"}.get(pull.state, pull.state)
        checks = self.checks(project, head) if head else "pending"
        return {
            "id": 1000 + pull.number, "iid": pull.number, "project_id": 1,
            "title": pull.title, "description": pull.body, "state": state,
            "web_url": f"https://gitlab.example.invalid/{project.name}/-/merge_requests/"
                       f"{pull.number}",
            "source_branch": pull.branch, "target_branch": pull.base, "sha": head,
            "merge_commit_sha": pull.merge_commit, "squash_commit_sha": None,
            "merged_at": pull.merged_at, "created_at": pull.created_at,
            "detailed_merge_status": "conflict" if project.faults.get("merge_conflict")
            else "mergeable",
            "head_pipeline": {"id": 1, "sha": head,
                              "status": {"failure": "failed"}.get(checks, checks)},
        }


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
            self._send(404, {"message": "Not Found"} if not gitlab else {"message": "404 Project "
                                                                        "Not Found"})
            return
        faults = project.faults
        if faults.get("slow"):
            time.sleep(float(faults["slow"]))
        if faults.get("rate_limit", 0) > 0:
            with state.lock:
                faults["rate_limit"] -= 1
            self._send(429, {"message": "API rate limit exceeded"},
                       {"Retry-After": str(faults.get("retry_after", 1)),
                        "X-RateLimit-Remaining": "0"})
            return
        token = (self.headers.get("PRIVATE-TOKEN") if gitlab else
                 (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip())
        if faults.get("unauthorized") or token != state.token:
            self._send(401, {"message": "401 Unauthorized"} if gitlab else
                       {"message": "Bad credentials",
                        "documentation_url": "https://docs.github.com/rest"})
            return
        if faults.get("hidden"):  # a private repository the token has no access to
            self._send(404, {"message": "404 Project Not Found"} if gitlab else
                       {"message": "Not Found",
                        "documentation_url": "https://docs.github.com/rest"})
            return
        with state.lock:
            if gitlab:
                self._gitlab(method, path, query, body, project)
            else:
                self._github(method, path, query, body, project)

    def _project(self, path: str, gitlab: bool) -> Project | None:
        if gitlab:
            m = re.match(r"^/api/v4/projects/([^/]+)(?:/|$)", path)
            name = unquote(m.group(1)) if m else ""
        else:
            m = re.match(r"^/repos/([^/]+)/([^/]+)(?:/|$)", path)
            name = f"{unquote(m.group(1))}/{unquote(m.group(2))}" if m else ""
        return self.state.projects.get(name)

    # -- GitHub ------------------------------------------------------------------------

    def _github(self, method: str, path: str, query: dict[str, str], body: Any,
                project: Project) -> None:
        state = self.state
        rest = path.split("/", 4)[4] if path.count("/") >= 4 else ""
        if rest == "" and method == "GET":
            self._send(200, state.github_repo(project))
            return
        if rest == "pulls" and method == "GET":
            owner_branch = query.get("head", "")
            branch = owner_branch.partition(":")[2] or owner_branch
            want = query.get("state", "open")
            found = [state.github_pull(project, p) for p in project.pulls
                     if (not branch or p.branch == branch)
                     and (not query.get("base") or p.base == query["base"])
                     and (want == "all" or (p.state == "open") == (want == "open"))]
            self._send(200, found)
            return
        if rest == "pulls" and method == "POST":
            head, base = body.get("head"), body.get("base")
            if not head or not base or not body.get("title"):
                self._send(422, {"message": "Validation Failed", "errors": [
                    {"resource": "PullRequest", "code": "missing_field"}]})
                return
            if not state.head(project, head):
                self._send(422, {"message": "Validation Failed", "errors": [
                    {"resource": "PullRequest", "field": "head", "code": "invalid"}]})
                return
            if any(p.branch == head and p.base == base and p.state == "open"
                   for p in project.pulls):
                self._send(422, {"message": "Validation Failed", "errors": [
                    {"resource": "PullRequest", "code": "custom",
                     "message": f"A pull request already exists for {head}."}]})
                return
            pull = self._open(project, head, base, body.get("title"), body.get("body") or "")
            self._send(201, state.github_pull(project, pull))
            return
        m = re.fullmatch(r"pulls/(\d+)(/merge)?", rest)
        if m:
            pull = next((p for p in project.pulls if p.number == int(m.group(1))), None)
            if pull is None:
                self._send(404, {"message": "Not Found"})
            elif not m.group(2) and method == "GET":
                self._send(200, state.github_pull(project, pull))
            elif m.group(2) and method == "PUT":
                self._github_merge(project, pull, body)
            else:
                self._send(404, {"message": "Not Found"})
            return
        m = re.fullmatch(r"commits/([^/]+)/status", rest)
        if m and method == "GET":
            sha = unquote(m.group(1))
            checks = state.checks(project, sha)
            statuses = [] if checks == "pending" and not project.faults.get("checks_after") else [
                {"state": checks, "context": "ci/test", "description": f"ci/test: {checks}",
                 "target_url": None, "created_at": _now(), "updated_at": _now()}]
            self._send(200, {"state": checks, "sha": sha, "total_count": len(statuses),
                             "statuses": statuses,
                             "repository": {"full_name": project.name}})
            return
        self._send(404, {"message": "Not Found"})

    def _github_merge(self, project: Project, pull: Pull, body: Any) -> None:
        state = self.state
        head = state.head(project, pull.branch)
        if pull.state != "open":
            self._send(405, {"message": "Pull Request is not mergeable"})
        elif (body.get("sha") and body["sha"] != head) or project.faults.get("head_moved"):
            self._send(409, {"message": "Head branch was modified. Review and try the merge "
                                        "again."})
        elif state.checks(project, head) != "success":
            self._send(405, {"message": "Required status check \"ci/test\" is expected."})
        else:
            outcome, said = state.merge(project, pull)
            if outcome != "merged":
                self._send(405, {"message": "Pull Request is not mergeable"})
            else:
                self._send(200, {"sha": said, "merged": True,
                                 "message": "Pull Request successfully merged"})

    # -- GitLab ------------------------------------------------------------------------

    def _gitlab(self, method: str, path: str, query: dict[str, str], body: Any,
                project: Project) -> None:
        state = self.state
        rest = path.split("/", 5)[5] if path.count("/") >= 5 else ""
        if rest == "" and method == "GET":
            self._send(200, state.gitlab_project(project))
            return
        if rest == "merge_requests" and method == "GET":
            want = query.get("state", "all")
            found = [state.gitlab_mr(project, p) for p in project.pulls
                     if (not query.get("source_branch") or p.branch == query["source_branch"])
                     and (not query.get("target_branch") or p.base == query["target_branch"])
                     and (want == "all" or {"open": "opened"}.get(p.state, p.state) == want)]
            self._send(200, found)
            return
        if rest == "merge_requests" and method == "POST":
            source, target = body.get("source_branch"), body.get("target_branch")
            if not source or not target or not body.get("title"):
                self._send(400, {"error": "source_branch, target_branch, title are missing"})
                return
            if any(p.branch == source and p.base == target and p.state == "open"
                   for p in project.pulls):
                self._send(409, {"message": ["Another open merge request already exists for "
                                             "this source branch"]})
                return
            pull = self._open(project, source, target, body["title"],
                              body.get("description") or "")
            self._send(201, state.gitlab_mr(project, pull))
            return
        m = re.fullmatch(r"merge_requests/(\d+)(/merge)?", rest)
        if m:
            pull = next((p for p in project.pulls if p.number == int(m.group(1))), None)
            if pull is None:
                self._send(404, {"message": "404 Not found"})
            elif not m.group(2) and method == "GET":
                self._send(200, state.gitlab_mr(project, pull))
            elif m.group(2) and method == "PUT":
                head = state.head(project, pull.branch)
                if pull.state != "open":
                    self._send(405, {"message": "405 Method Not Allowed"})
                elif (body.get("sha") and body["sha"] != head) or project.faults.get("head_moved"):
                    self._send(409, {"message": "SHA does not match HEAD of source branch"})
                elif state.checks(project, head) != "success":
                    self._send(405, {"message": "405 Method Not Allowed"})
                else:
                    outcome, _ = state.merge(project, pull)
                    if outcome != "merged":
                        self._send(406, {"message": "Branch cannot be merged"})
                    else:
                        self._send(200, state.gitlab_mr(project, pull))
            else:
                self._send(404, {"message": "404 Not found"})
            return
        self._send(404, {"message": "404 Not found"})

    def _open(self, project: Project, branch: str, base: str, title: str, body: str) -> Pull:
        pull = Pull(len(project.pulls) + 1, project.name, branch, base, title, body,
                    created_at=_now())
        if project.faults.get("close_unmerged"):
            pull.state = "closed"
        project.pulls.append(pull)
        return pull

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
                    pull.state = "closed"
                    self._send(200, asdict(pull))
                else:
                    outcome, said = state.merge(project, pull)
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
