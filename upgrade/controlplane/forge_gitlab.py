"""GitLab's REST API (v4) for merge requests: the six endpoints the tool uses.

* ``GET /projects/:id`` (Get a single project): the pre-flight's read of the project (401
  for a refused token, 404 for a project the token cannot see).

* ``GET /projects/:id/merge_requests?state=opened&source_branch=..&target_branch=..``
  (List project merge requests): an array of merge requests.
* ``POST /projects/:id/merge_requests`` with ``source_branch``, ``target_branch``, ``title``,
  ``description`` (Create MR): 201; 409 when one already exists for the branches.
* ``GET /projects/:id/merge_requests/:merge_request_iid`` (Get single MR): ``iid``,
  ``web_url``, ``state`` (``opened``, ``closed``, ``locked``, ``merged``), ``sha`` (the head),
  ``merge_commit_sha``, ``squash_commit_sha``, ``source_branch``, ``head_pipeline.status``,
  ``detailed_merge_status`` (GitLab 15.6+; ``mergeable``, ``ci_must_pass``,
  ``ci_still_running``, ``not_approved``, ``conflict``, …: why it cannot merge now).
* The checks are the head pipeline's ``status`` from that same answer (``success``;
  ``failed``/``canceled`` fail; created … running are still running). With no pipeline to
  wait for (none, ``skipped``, ``manual``), GitLab itself says whether the MR may merge
  (``pipeline_allows_merge?``: a project without "Pipelines must succeed" merges an MR that
  has no pipeline): ``detailed_merge_status`` ``mergeable`` passes, anything else waits.
* ``PUT /projects/:id/merge_requests/:merge_request_iid/merge`` with ``sha`` (Merge a merge
  request): 200 and the MR; 405 when it cannot be merged (closed, draft, pipeline), 406 on
  conflicts (older versions), 409 when ``sha`` is not the head, 422 when not mergeable.

The commit a merge put on the target branch depends on the project's merge method: a merge
commit (``merge_commit_sha``; also with semi-linear history), the squash commit
(``squash_commit_sha``) fast-forwarded, or with fast-forward and no squash the source's
head itself (``merge_commit_sha`` null; the MR's ``sha``). The caller checks it is on the
target branch before deploying it.

``:id`` is the URL-encoded project path (``group%2Fproject``). Requests carry
``PRIVATE-TOKEN``. ``tests/git_modes/recorded/gitlab.json`` holds the shapes and sources.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from upgrade.controlplane.forge import ChecksState, Forge, Merged, PullRequest
from upgrade.errors import ForgeError

RUNNING = frozenset({"created", "waiting_for_resource", "preparing", "pending", "running",
                     "scheduled"})


def pipeline_verdict(doc: Any) -> ChecksState:
    """An MR's checks: its head pipeline, or GitLab's word when there is none to wait for."""
    if not isinstance(doc, dict):
        return "pending"
    pipeline = doc.get("head_pipeline")
    status = pipeline.get("status") if isinstance(pipeline, dict) else None
    if status == "success":
        return "success"
    if status in ("failed", "canceled"):
        return "failure"
    if status in RUNNING:
        return "pending"
    detailed = doc.get("detailed_merge_status")
    if detailed is None:  # before GitLab 15.6
        return "success" if doc.get("merge_status") == "can_be_merged" and status is None \
            else "pending"
    return "success" if detailed == "mergeable" else "pending"


def merged_commit(doc: dict[str, Any]) -> str | None:
    """The commit a merged MR put on its target branch (see the module's docstring)."""
    commit = doc.get("merge_commit_sha") or doc.get("squash_commit_sha") or doc.get("sha")
    return str(commit) if commit else None


class GitLab(Forge):
    """One project on GitLab (gitlab.com or self-managed, at its ``/api/v4`` URL)."""

    kind = "gitlab"
    title = "GitLab"

    def headers(self, token: str) -> dict[str, str]:
        """GitLab's personal/project access token header."""
        return {"PRIVATE-TOKEN": token, "Accept": "application/json"}

    @property
    def _project(self) -> str:
        return f"/projects/{quote(self.project, safe='')}"

    @property
    def repo_path(self) -> str:
        """``GET /projects/:id`` (Get a single project)."""
        return self._project

    def find_open(self, branch: str, base: str) -> PullRequest | None:
        """The open merge request from ``branch`` into ``base``."""
        return next(iter(self._list(branch, base, "opened")), None)

    def find_merged(self, branch: str, base: str, head_sha: str) -> PullRequest | None:
        """The merged merge request from ``branch`` into ``base`` whose head was
        ``head_sha``."""
        return next((mr for mr in self._list(branch, base, "merged")
                     if mr.state == "merged" and mr.head_sha == head_sha), None)

    def _list(self, branch: str, base: str, state: str) -> list[PullRequest]:
        found = self.call("GET", f"{self._project}/merge_requests",
                          params={"state": state, "source_branch": branch,
                                  "target_branch": base, "per_page": 100})
        if not isinstance(found, list):
            raise ForgeError(f"GitLab answered the merge request list of {self.project} with "
                             "something that is not a list.")
        return [mr for mr in map(self._mr, found) if mr.head_branch == branch]

    def create(self, branch: str, base: str, title: str, body: str) -> PullRequest:
        """Open a merge request; one that already exists (409) is found and reused."""
        def exists(resp: httpx.Response) -> Any:
            found = self.find_open(branch, base)
            if found is None:
                raise ForgeError(f"GitLab refused a merge request from {branch} into {base} of "
                                 f"{self.project} (409: {self.said(resp)}).")
            return found

        made = self.call("POST", f"{self._project}/merge_requests",
                         json={"source_branch": branch, "target_branch": base, "title": title,
                               "description": body},
                         answers={409: exists})
        return made if isinstance(made, PullRequest) else self._mr(made)

    def get(self, number: int) -> PullRequest:
        """The merge request now."""
        return self._mr(self.call("GET", f"{self._project}/merge_requests/{int(number)}"))

    def checks(self, pr: PullRequest) -> ChecksState:
        """The head pipeline's status, or GitLab's merge status without one (read again:
        it moves while we wait)."""
        return pipeline_verdict(self.call("GET", f"{self._project}/merge_requests/"
                                                 f"{int(pr.number)}"))

    def merge(self, pr: PullRequest, message: str) -> Merged:
        """Accept the merge request at the head commit we checked."""
        def refused(outcome: str) -> Any:
            return lambda resp: Merged(outcome, said=self.said(resp))  # type: ignore[arg-type]

        done = self.call("PUT", f"{self._project}/merge_requests/{int(pr.number)}/merge",
                         json={"sha": pr.head_sha, "merge_commit_message": message},
                         answers={405: refused("not_mergeable"), 406: refused("not_mergeable"),
                                  422: refused("not_mergeable"), 409: refused("head_moved")})
        if isinstance(done, Merged):
            return done
        mr = self._mr(done)
        if mr.state != "merged":
            return Merged("accepted")  # still merging: the caller reads the MR again
        if not mr.merge_commit:
            raise ForgeError(f"GitLab answered the merge of {pr.url} without a commit.")
        return Merged("merged", sha=mr.merge_commit)

    def _mr(self, item: Any) -> PullRequest:
        if not isinstance(item, dict) or not isinstance(item.get("iid"), int):
            raise ForgeError(f"GitLab answered a merge request of {self.project} that is not "
                             "the documented shape (no iid).")
        # locked: GitLab is merging it right now (short-lived); not closed.
        state = {"opened": "open", "locked": "open", "merged": "merged"}.get(
            str(item.get("state")), "closed")
        commit = merged_commit(item)
        return PullRequest(
            number=item["iid"], url=str(item.get("web_url") or ""), state=state,  # type: ignore[arg-type]
            head_branch=str(item.get("source_branch") or ""), head_sha=str(item.get("sha") or ""),
            merge_commit=str(commit) if state == "merged" and commit else None,
        )
