"""The forge simulator's GitLab: REST API v4 merge requests, in the shapes GitLab documents
(doc/api/merge_requests.md: "List project merge requests", "Get single MR", "Create MR",
"Merge a merge request", "Merge status"); tests/forge_schemas validates every answer.

A project's settings stand for its GitLab settings:

* ``merge_method``: ``merge`` (a merge commit, the default), ``rebase_merge`` (merge commit
  with semi-linear history: the source must contain the target) or ``ff`` (fast-forward:
  no merge commit, ``merge_commit_sha`` stays null; the target moves to the source's head);
* ``squash``: squash the source into one commit on merge (``squash_commit_sha``);
* ``pipeline``: ``present`` (the default: a head pipeline whose status follows ``checks``)
  or ``none`` (no CI for merge requests: ``head_pipeline`` is null);
* ``pipeline_required``: "Pipelines must succeed"; without a successful pipeline the MR is
  ``ci_must_pass``/``ci_still_running`` and a merge answers 405. Without it, GitLab lets an
  MR with no pipeline merge (``pipeline_allows_merge?``): ``detailed_merge_status``
  ``mergeable``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleet_sim.forge import ForgeState, Project, Pull, Reply

WEB = "https://gitlab.example.invalid"
RUNNING = ("created", "waiting_for_resource", "preparing", "pending", "running", "scheduled")
METHODS = ("merge", "rebase_merge", "ff")


def _user(name: str) -> dict[str, Any]:
    return {"id": 10, "username": name, "name": name.title(), "state": "active",
            "avatar_url": None, "web_url": f"{WEB}/{name}"}


def pipeline_status(state: ForgeState, project: Project, sha: str) -> str | None:
    """The head pipeline's status, or None when the project runs no pipeline for MRs."""
    if project.faults.get("pipeline") == "none" or not sha:
        return None
    outcome = state.checks(project, sha)
    return {"failure": "failed", "pending": "running"}.get(outcome, outcome)


def detailed_merge_status(state: ForgeState, project: Project, pr: Pull, head: str) -> str:
    """GitLab's ``detailed_merge_status`` for the MR now."""
    if pr.state != "open":
        return "not_open"
    if project.faults.get("merge_conflict"):
        return "conflict"
    status = pipeline_status(state, project, head)
    if project.faults.get("pipeline_required") and status != "success":
        return "ci_still_running" if status in RUNNING else "ci_must_pass"
    if _method(project) in ("ff", "rebase_merge") and not state.contains(
            project, pr.branch, pr.base):
        return "need_rebase"
    return "mergeable"


def _method(project: Project) -> str:
    method = str(project.faults.get("merge_method") or "merge")
    return method if method in METHODS else "merge"


def merge_request(state: ForgeState, project: Project, pr: Pull, *, single: bool
                  ) -> dict[str, Any]:
    """An MR as "List project merge requests" (``single`` False) or "Get single MR" gives it."""
    head = state.head(project, pr.branch) or pr.last_head or ""
    owner = project.name.split("/")[0]
    gl_state = {"open": "opened"}.get(pr.state, pr.state)
    merged = pr.state == "merged"
    detailed = detailed_merge_status(state, project, pr, head)
    doc: dict[str, Any] = {
        "id": 1000 + pr.number, "iid": pr.number, "project_id": 1, "title": pr.title,
        "description": pr.body, "state": gl_state, "imported": False,
        "imported_from": "none", "created_at": pr.created_at,
        "updated_at": pr.merged_at or pr.closed_at or pr.created_at,
        "merged_by": _user(owner) if merged else None,
        "merge_user": _user(owner) if merged else None, "merged_at": pr.merged_at,
        "closed_by": _user(owner) if pr.state == "closed" else None,
        "closed_at": pr.closed_at, "target_branch": pr.base, "source_branch": pr.branch,
        "user_notes_count": 0, "upvotes": 0, "downvotes": 0, "author": _user(owner),
        "assignees": [], "assignee": None, "reviewers": [], "source_project_id": 1,
        "target_project_id": 1, "labels": [], "draft": False, "work_in_progress": False,
        "milestone": None, "merge_when_pipeline_succeeds": False,
        # Deprecated in 15.6 for detailed_merge_status, which says why; still served.
        "merge_status": "cannot_be_merged" if detailed == "conflict" else "can_be_merged",
        "detailed_merge_status": detailed, "sha": head,
        "merge_commit_sha": pr.merge_commit, "squash_commit_sha": pr.squash_commit,
        "discussion_locked": None, "should_remove_source_branch": None,
        "force_remove_source_branch": False,
        "references": {"short": f"!{pr.number}", "relative": f"!{pr.number}",
                       "full": f"{project.name}!{pr.number}"},
        "web_url": f"{WEB}/{project.name}/-/merge_requests/{pr.number}",
        "time_stats": {"time_estimate": 0, "total_time_spent": 0, "human_time_estimate": None,
                       "human_total_time_spent": None},
        "squash": bool(project.faults.get("squash")),
        "task_completion_status": {"count": 0, "completed_count": 0},
        "has_conflicts": detailed == "conflict", "blocking_discussions_resolved": True,
    }
    if single:
        status = pipeline_status(state, project, head)
        pipeline = None if status is None else {
            "id": 7000 + pr.number, "iid": pr.number, "project_id": 1, "sha": head,
            "ref": f"refs/merge-requests/{pr.number}/head", "status": status,
            "source": "merge_request_event", "created_at": pr.created_at,
            "updated_at": pr.created_at,
            "web_url": f"{WEB}/{project.name}/-/pipelines/{7000 + pr.number}"}
        doc.update(
            subscribed=False, changes_count="1", latest_build_started_at=None,
            latest_build_finished_at=None, first_deployed_to_production_at=None,
            pipeline=pipeline, head_pipeline=pipeline,
            diff_refs={"base_sha": state.head(project, pr.base), "head_sha": head,
                       "start_sha": state.head(project, pr.base)},
            merge_error=None, first_contribution=False, user={"can_merge": True})
    return doc


def project_doc(state: ForgeState, project: Project) -> dict[str, Any]:
    """A project as "Get a single project" (doc/api/projects.md) gives it to a member."""
    namespace, _, name = project.name.rpartition("/")
    return {
        "id": 1 + sorted(state.projects).index(project.name), "description": None,
        "name": name, "name_with_namespace": f"{namespace} / {name}", "path": name,
        "path_with_namespace": project.name, "created_at": "2024-01-01T00:00:00.000Z",
        "default_branch": state.default_branch(project), "tag_list": [], "topics": [],
        "ssh_url_to_repo": f"git@gitlab.example.invalid:{project.name}.git",
        "http_url_to_repo": f"{WEB}/{project.name}.git", "web_url": f"{WEB}/{project.name}",
        "visibility": "private", "archived": False, "empty_repo": False,
        "merge_method": _method(project), "squash_option": "always" if project.faults.get(
            "squash") else "default_off",
        "only_allow_merge_if_pipeline_succeeds": bool(project.faults.get("pipeline_required")),
        "namespace": {"id": 2, "name": namespace, "path": namespace, "kind": "group",
                      "full_path": namespace},
        "permissions": {"project_access": {"access_level": 30, "notification_level": 3},
                        "group_access": None},
    }


def route(state: ForgeState, method: str, path: str, query: dict[str, str], body: Any,
          project: Project) -> Reply:
    """Answer one GitLab request: (status, body, headers)."""
    rest = path.split("/", 5)[5] if path.count("/") >= 5 else ""
    if path.count("/") == 4 and method == "GET":  # Get a single project
        return 200, project_doc(state, project), {}
    if rest == "merge_requests" and method == "GET":
        want = query.get("state", "all")
        found = [merge_request(state, project, p, single=False) for p in project.pulls
                 if (not query.get("source_branch") or p.branch == query["source_branch"])
                 and (not query.get("target_branch") or p.base == query["target_branch"])
                 and (want == "all" or {"open": "opened"}.get(p.state, p.state) == want)]
        return 200, found, {}
    if rest == "merge_requests" and method == "POST":
        source, target = body.get("source_branch"), body.get("target_branch")
        if not source or not target or not body.get("title"):
            return 400, {"error": "source_branch, target_branch, title are missing"}, {}
        if any(p.branch == source and p.base == target and p.state == "open"
               for p in project.pulls):
            return 409, {"message": ["Another open merge request already exists for this "
                                     "source branch"]}, {}
        pr = state.open(project, source, target, body["title"], body.get("description") or "")
        return 201, merge_request(state, project, pr, single=True), {}
    m = re.fullmatch(r"merge_requests/(\d+)(/merge)?", rest)
    if m:
        pr = next((p for p in project.pulls if p.number == int(m.group(1))), None)
        if pr is None:
            return 404, {"message": "404 Not found"}, {}
        if not m.group(2) and method == "GET":
            return 200, merge_request(state, project, pr, single=True), {}
        if m.group(2) and method == "PUT":
            return _merge(state, project, pr, body)
    return 404, {"message": "404 Not found"}, {}


def _merge(state: ForgeState, project: Project, pr: Pull, body: Any) -> Reply:
    """``PUT .../merge``: 405 when the MR cannot merge now, 409 when ``sha`` is not the
    head, 422 when git could not merge it."""
    head = state.head(project, pr.branch)
    if pr.state != "open":
        return 405, {"message": "405 Method Not Allowed"}, {}
    if (body.get("sha") and body["sha"] != head) or project.faults.get("head_moved"):
        return 409, {"message": "SHA does not match HEAD of source branch"}, {}
    if detailed_merge_status(state, project, pr, head) != "mergeable":
        return 405, {"message": "405 Method Not Allowed"}, {}
    squash = bool(body.get("squash")) or bool(project.faults.get("squash"))
    outcome, _ = state.merge(project, pr, method=_method(project), squash=squash)
    if outcome != "merged":
        return 422, {"message": "Branch cannot be merged"}, {}
    return 200, merge_request(state, project, pr, single=True), {}
