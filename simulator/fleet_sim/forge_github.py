"""The forge simulator's GitHub: REST API 2022-11-28 shapes for the endpoints the product's
GitHub client uses, answered from a project's bare repository and settings.

Every object carries the fields GitHub's OpenAPI description (github/rest-api-description,
``api.github.com.2022-11-28.json``) requires of it: ``full-repository`` (get a repository),
``pull-request-simple`` (list),
``pull-request`` (get, create), ``pull-request-merge-result``, ``combined-commit-status``,
``check-run`` (in ``{total_count, check_runs}``), ``basic-error``/``validation-error``;
tests/forge_schemas validates every answer against that description's subset.

CI on a commit is a project setting, as a repository's CI is:

* ``ci``: ``statuses`` (commit statuses only, the default), ``check_runs`` (GitHub Actions:
  check runs only, so the combined status is ``pending`` with ``total_count`` 0), ``both``,
  or ``none`` (no CI: no statuses, no check runs);
* ``check_runs``: how many check runs a commit gets (paged, ``per_page`` up to 100);
* ``checks``: where the last status / check run ends (``success``, ``failure``, ``pending``,
  or a check-run conclusion such as ``timed_out``), ``checks_after`` seconds after the
  commit was first seen; every other one succeeds.

Merging (``PUT .../merge``) is refused with 405 while a present check has not passed (the
branch protection GitHub enforces with required checks), 409 when ``sha`` is not the head.
Secondary rate limits (``secondary_limit``: the next N requests) answer ``secondary_status``
(403, or 429) with GitHub's message and, with ``secondary_retry_after``, a ``Retry-After``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from fleet_sim.forge import ForgeState, Project, Pull, Reply

WEB = "https://github.example.invalid"
API = "https://api.github.example.invalid"
DOCS = "https://docs.github.com/rest"
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
    "again. If you reach out to GitHub Support for help, please include the request ID "
    "0000:0000:0000000:0000000:00000000.")
SECONDARY_DOCS = ("https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
                  "#about-secondary-rate-limits")
CI_KINDS = ("statuses", "check_runs", "both", "none")
CONCLUSIONS = ("success", "failure", "neutral", "cancelled", "skipped", "timed_out",
               "action_required")
EPOCH = "2024-01-01T00:00:00Z"


def error(message: str, docs: str = DOCS) -> dict[str, Any]:
    """GitHub's ``basic-error`` body."""
    return {"message": message, "documentation_url": docs}


def user(login: str) -> dict[str, Any]:
    """A ``simple-user``."""
    url = f"{API}/users/{login}"
    return {
        "login": login, "id": 1000 + sum(map(ord, login)), "node_id": f"U_{login}",
        "avatar_url": f"{WEB}/avatars/{login}", "gravatar_id": "", "url": url,
        "html_url": f"{WEB}/{login}", "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}", "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{url}/subscriptions", "organizations_url": f"{url}/orgs",
        "repos_url": f"{url}/repos", "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events", "type": "Organization",
        "site_admin": False,
    }


def repository(project: Project, default_branch: str = "main") -> dict[str, Any]:
    """A ``repository`` (also a valid ``minimal-repository``)."""
    owner, _, name = project.name.partition("/")
    url = f"{API}/repos/{project.name}"
    doc: dict[str, Any] = {
        "id": 2000 + sum(map(ord, project.name)), "node_id": f"R_{project.name}",
        "name": name, "full_name": project.name, "owner": user(owner), "private": True,
        "html_url": f"{WEB}/{project.name}", "description": None, "fork": False, "url": url,
        "license": None, "forks": 0, "forks_count": 0, "stargazers_count": 0,
        "watchers_count": 0, "watchers": 0, "size": 0, "default_branch": default_branch,
        "open_issues_count": len(project.pulls), "open_issues": len(project.pulls),
        "has_issues": True, "has_projects": False, "has_wiki": False, "has_pages": False,
        "has_downloads": True, "archived": False, "disabled": False, "homepage": None,
        "language": "Python", "mirror_url": None, "pushed_at": EPOCH, "created_at": EPOCH,
        "updated_at": EPOCH, "git_url": f"git://github.example.invalid/{project.name}.git",
        "ssh_url": f"git@github.example.invalid:{project.name}.git",
        "clone_url": f"{WEB}/{project.name}.git", "svn_url": f"{WEB}/{project.name}",
    }
    for key, tail in (
            ("archive_url", "/{archive_format}{/ref}"), ("assignees_url", "/assignees{/user}"),
            ("blobs_url", "/git/blobs{/sha}"), ("branches_url", "/branches{/branch}"),
            ("collaborators_url", "/collaborators{/collaborator}"),
            ("comments_url", "/comments{/number}"), ("commits_url", "/commits{/sha}"),
            ("compare_url", "/compare/{base}...{head}"), ("contents_url", "/contents/{+path}"),
            ("contributors_url", "/contributors"), ("deployments_url", "/deployments"),
            ("downloads_url", "/downloads"), ("events_url", "/events"), ("forks_url", "/forks"),
            ("git_commits_url", "/git/commits{/sha}"), ("git_refs_url", "/git/refs{/sha}"),
            ("git_tags_url", "/git/tags{/sha}"), ("hooks_url", "/hooks"),
            ("issue_comment_url", "/issues/comments{/number}"),
            ("issue_events_url", "/issues/events{/number}"), ("issues_url", "/issues{/number}"),
            ("keys_url", "/keys{/key_id}"), ("labels_url", "/labels{/name}"),
            ("languages_url", "/languages"), ("merges_url", "/merges"),
            ("milestones_url", "/milestones{/number}"),
            ("notifications_url", "/notifications{?since,all,participating}"),
            ("pulls_url", "/pulls{/number}"), ("releases_url", "/releases{/id}"),
            ("stargazers_url", "/stargazers"), ("statuses_url", "/statuses/{sha}"),
            ("subscribers_url", "/subscribers"), ("subscription_url", "/subscription"),
            ("tags_url", "/tags"), ("teams_url", "/teams"), ("trees_url", "/git/trees{/sha}")):
        doc[key] = url + tail
    return doc


def full_repository(state: ForgeState, project: Project) -> dict[str, Any]:
    """A ``full-repository``, with the ``permissions`` GitHub adds for the caller."""
    doc = repository(project, state.default_branch(project))
    doc.update(network_count=0, subscribers_count=0, has_discussions=False,
               permissions={"admin": False, "maintain": False, "push": True, "triage": True,
                            "pull": True})
    return doc


def pull(state: ForgeState, project: Project, pr: Pull, *, full: bool) -> dict[str, Any]:
    """A ``pull-request`` (``full``) or ``pull-request-simple``."""
    owner = project.name.split("/")[0]
    head = state.head(project, pr.branch) or pr.last_head or ""
    merged = pr.state == "merged"
    url = f"{API}/repos/{project.name}/pulls/{pr.number}"
    html = f"{WEB}/{project.name}/pull/{pr.number}"
    issue = f"{API}/repos/{project.name}/issues/{pr.number}"
    repo = repository(project, pr.base)
    doc: dict[str, Any] = {
        "url": url, "id": 3000 + pr.number, "node_id": f"PR_{project.name}_{pr.number}",
        "html_url": html, "diff_url": f"{html}.diff", "patch_url": f"{html}.patch",
        "issue_url": issue, "commits_url": f"{url}/commits",
        "review_comments_url": f"{url}/comments",
        "review_comment_url": f"{API}/repos/{project.name}/pulls/comments{{/number}}",
        "comments_url": f"{issue}/comments",
        "statuses_url": f"{API}/repos/{project.name}/statuses/{head}",
        "number": pr.number, "state": "open" if pr.state == "open" else "closed",
        "locked": False, "title": pr.title, "body": pr.body, "labels": [], "milestone": None,
        "assignee": None, "user": user(owner), "author_association": "MEMBER",
        "auto_merge": None, "draft": False,
        "created_at": pr.created_at, "updated_at": pr.merged_at or pr.created_at,
        "closed_at": pr.closed_at, "merged_at": pr.merged_at,
        "merge_commit_sha": pr.merge_commit,
        "head": {"label": f"{owner}:{pr.branch}", "ref": pr.branch, "sha": head,
                 "repo": repo, "user": user(owner)},
        "base": {"label": f"{owner}:{pr.base}", "ref": pr.base,
                 "sha": state.head(project, pr.base), "repo": repo, "user": user(owner)},
        "_links": {name: {"href": href} for name, href in (
            ("self", url), ("html", html), ("issue", issue), ("comments", f"{issue}/comments"),
            ("review_comments", f"{url}/comments"),
            ("review_comment", f"{API}/repos/{project.name}/pulls/comments{{/number}}"),
            ("commits", f"{url}/commits"),
            ("statuses", f"{API}/repos/{project.name}/statuses/{head}"))},
    }
    if full:
        conflict = bool(project.faults.get("merge_conflict"))
        doc.update(
            merged=merged, mergeable=None if merged else not conflict,
            mergeable_state="dirty" if conflict else ("unknown" if merged else "clean"),
            merged_by=user(owner) if merged else None, comments=0, review_comments=0,
            maintainer_can_modify=False, commits=1, additions=1, deletions=1, changed_files=1)
    return doc


# --------------------------------------------------------------------------- the checks

def ci_kind(project: Project) -> str:
    """Which kinds of checks the project's CI reports."""
    kind = str(project.faults.get("ci") or "statuses")
    return kind if kind in CI_KINDS else "statuses"


def statuses(state: ForgeState, project: Project, sha: str) -> dict[str, Any]:
    """``combined-commit-status`` for ``sha``."""
    outcome = state.checks(project, sha)
    found = []
    if ci_kind(project) in ("statuses", "both"):
        status = {"success": "success", "pending": "pending"}.get(outcome, "failure")
        found.append({
            "id": 4000, "node_id": "SC_1", "state": status, "context": "ci/test",
            "description": f"ci/test: {status}", "target_url": None, "avatar_url": None,
            "url": f"{API}/repos/{project.name}/statuses/{sha}", "created_at": EPOCH,
            "updated_at": EPOCH})
    # GitHub's rule: failure if any is error or failure, pending if none or any pending.
    states = {s["state"] for s in found}
    combined = ("failure" if states & {"failure", "error"} else
                "pending" if not found or "pending" in states else "success")
    return {"state": combined, "sha": sha, "total_count": len(found), "statuses": found,
            "repository": repository(project),
            "commit_url": f"{API}/repos/{project.name}/commits/{sha}",
            "url": f"{API}/repos/{project.name}/commits/{sha}/status"}


def check_runs(state: ForgeState, project: Project, sha: str) -> list[dict[str, Any]]:
    """Every ``check-run`` on ``sha`` (the last one ends as ``checks`` says)."""
    if ci_kind(project) not in ("check_runs", "both"):
        return []
    outcome = state.checks(project, sha)
    count = max(1, int(project.faults.get("check_runs") or 1))
    owner = project.name.split("/")[0]
    app = {"id": 15368, "slug": "github-actions", "node_id": "A_actions", "owner": user(owner),
           "name": "GitHub Actions", "description": "Automate your workflow",
           "external_url": "https://help.github.com/en/actions",
           "html_url": f"{WEB}/apps/github-actions", "created_at": EPOCH, "updated_at": EPOCH,
           "permissions": {"checks": "write"}, "events": ["push", "pull_request"]}
    runs = []
    for n in range(1, count + 1):
        mine = outcome if n == count else "success"
        done = mine != "pending"
        url = f"{API}/repos/{project.name}/check-runs/{5000 + n}"
        runs.append({
            "id": 5000 + n, "node_id": f"CR_{n}", "head_sha": sha, "name": f"test ({n})",
            "external_id": str(n), "url": url, "html_url": f"{WEB}/{project.name}/runs/{n}",
            "details_url": f"{WEB}/{project.name}/runs/{n}",
            "status": "completed" if done else "in_progress",
            "conclusion": mine if done else None, "started_at": EPOCH,
            "completed_at": EPOCH if done else None,
            "output": {"title": None, "summary": None, "text": None, "annotations_count": 0,
                       "annotations_url": f"{url}/annotations"},
            "check_suite": {"id": 6000}, "app": app, "pull_requests": []})
    return runs


def passed(state: ForgeState, project: Project, sha: str) -> bool:
    """Whether every check present on ``sha`` passed (GitHub would let it merge)."""
    if statuses(state, project, sha)["state"] not in ("success",) and \
            ci_kind(project) in ("statuses", "both"):
        return False
    return all(run["status"] == "completed"
               and run["conclusion"] in ("success", "neutral", "skipped")
               for run in check_runs(state, project, sha))


# ----------------------------------------------------------------------------- routes

def route(state: ForgeState, method: str, path: str, query: dict[str, str], body: Any,
          project: Project) -> Reply:
    """Answer one GitHub request: (status, body, headers)."""
    rest = path.split("/", 4)[4] if path.count("/") >= 4 else ""
    if rest == "" and method == "GET":  # Get a repository (full-repository)
        return 200, full_repository(state, project), {}
    if rest == "pulls" and method == "GET":
        owner_branch = query.get("head", "")
        branch = owner_branch.partition(":")[2] or owner_branch
        want = query.get("state", "open")
        found = [pull(state, project, p, full=False) for p in project.pulls
                 if (not branch or p.branch == branch)
                 and (not query.get("base") or p.base == query["base"])
                 and (want == "all" or (p.state == "open") == (want == "open"))]
        return 200, found, {}
    if rest == "pulls" and method == "POST":
        return _create(state, project, body)
    m = re.fullmatch(r"pulls/(\d+)(/merge)?", rest)
    if m:
        pr = next((p for p in project.pulls if p.number == int(m.group(1))), None)
        if pr is None:
            return 404, error("Not Found"), {}
        if not m.group(2) and method == "GET":
            return 200, pull(state, project, pr, full=True), {}
        if m.group(2) and method == "PUT":
            return _merge(state, project, pr, body)
        return 404, error("Not Found"), {}
    m = re.fullmatch(r"commits/([^/]+)/(status|check-runs)", rest)
    if m and method == "GET":
        sha = unquote(m.group(1))
        if m.group(2) == "status":
            return 200, statuses(state, project, sha), {}
        return _check_runs_page(state, project, sha, query, path)
    return 404, error("Not Found"), {}


def _create(state: ForgeState, project: Project, body: Any) -> Reply:
    head, base = body.get("head"), body.get("base")
    invalid = "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"
    if not head or not base or not body.get("title"):
        return 422, {"message": "Validation Failed", "documentation_url": invalid, "errors": [
            {"resource": "PullRequest", "code": "missing_field"}]}, {}
    if not state.head(project, head):
        return 422, {"message": "Validation Failed", "documentation_url": invalid, "errors": [
            {"resource": "PullRequest", "field": "head", "code": "invalid"}]}, {}
    if any(p.branch == head and p.base == base and p.state == "open" for p in project.pulls):
        return 422, {"message": "Validation Failed", "documentation_url": invalid, "errors": [
            {"resource": "PullRequest", "code": "custom",
             "message": f"A pull request already exists for {head}."}]}, {}
    pr = state.open(project, head, base, body.get("title"), body.get("body") or "")
    return 201, pull(state, project, pr, full=True), {}


def _merge(state: ForgeState, project: Project, pr: Pull, body: Any) -> Reply:
    head = state.head(project, pr.branch)
    merge_docs = "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request"
    if pr.state != "open":
        return 405, error("Pull Request is not mergeable", merge_docs), {}
    if (body.get("sha") and body["sha"] != head) or project.faults.get("head_moved"):
        return 409, error("Head branch was modified. Review and try the merge again.",
                          merge_docs), {}
    if not passed(state, project, head):
        return 405, error("Required status check \"ci/test\" is expected.", merge_docs), {}
    outcome, said = state.merge(project, pr, method="merge", squash=False)
    if outcome != "merged":
        return 405, error("Pull Request is not mergeable", merge_docs), {}
    return 200, {"sha": said, "merged": True, "message": "Pull Request successfully merged"}, {}


def _check_runs_page(state: ForgeState, project: Project, sha: str, query: dict[str, str],
                     path: str) -> Reply:
    """One page of ``GET .../check-runs`` (``per_page`` 30 by default, at most 100)."""
    runs = check_runs(state, project, sha)
    try:
        per_page = min(100, max(1, int(query.get("per_page", "30"))))
        page = max(1, int(query.get("page", "1")))
    except ValueError:
        return 422, error("Invalid request."), {}
    chunk = runs[(page - 1) * per_page: page * per_page]
    headers = {}
    last = max(1, -(-len(runs) // per_page))
    if page < last:
        link = f"{API}{path}?per_page={per_page}&page="
        headers["Link"] = f'<{link}{page + 1}>; rel="next", <{link}{last}>; rel="last"'
    return 200, {"total_count": len(runs), "check_runs": chunk}, headers


def secondary_limit(project: Project) -> Reply:
    """A secondary rate limit's answer (the project's ``secondary_*`` settings)."""
    faults = project.faults
    headers = {"x-ratelimit-remaining": "4990", "x-ratelimit-limit": "5000"}
    if faults.get("secondary_retry_after") is not None:
        headers["Retry-After"] = str(faults["secondary_retry_after"])
    return int(faults.get("secondary_status") or 403), error(SECONDARY_MESSAGE,
                                                             SECONDARY_DOCS), headers
