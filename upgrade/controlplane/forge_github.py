"""GitHub's REST API (v3) for pull requests: the seven endpoints the tool uses.

* ``GET /repos/{owner}/{repo}`` (Get a repository): the pre-flight's read of the repo (401
  for a refused token, 404 for a repository that does not exist or the token cannot see).

* ``GET /repos/{owner}/{repo}/pulls?state=open&head={owner}:{branch}&base={base}``
  (List pull requests): an array of pull requests.
* ``POST /repos/{owner}/{repo}/pulls`` with ``title``, ``head``, ``base``, ``body`` (Create a
  pull request): 201 and the pull request; 422 when one already exists for the branch.
* ``GET /repos/{owner}/{repo}/pulls/{pull_number}`` (Get a pull request): ``number``,
  ``html_url``, ``state`` (``open``/``closed``), ``merged``, ``merge_commit_sha``,
  ``head.ref``, ``head.sha``.
* ``GET /repos/{owner}/{repo}/commits/{ref}/status`` (Get the combined status for a specific
  reference): ``state`` is ``failure`` if any context is ``error`` or ``failure``, ``pending``
  if there are none or one is pending, else ``success``; ``total_count`` 0 means no
  statuses at all (a repo whose CI is GitHub Actions), not "pending".
* ``GET /repos/{owner}/{repo}/commits/{ref}/check-runs`` (List check runs for a Git
  reference; paged: ``per_page`` at most 100, ``page``): ``total_count`` and
  ``check_runs[]`` with ``status`` (queued, in_progress, completed, …) and ``conclusion``.
  GitHub Actions reports these, not statuses. A completed run passes with ``success``,
  ``neutral`` or ``skipped``; any other conclusion fails (``failure``, ``cancelled``,
  ``timed_out``, ``action_required``, and ``stale``, which GitHub sets on a run left
  incomplete for 14 days: it will not pass by waiting).

The checks pass when at least one kind is present and every present kind passes; they fail
when either fails; with neither (no CI has reported yet) they are pending.
* ``PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge`` with ``sha`` and ``merge_method``
  (Merge a pull request): 200 ``{sha, merged, message}``; 405 when it cannot be merged
  (conflicts, required checks, branch protection); 409 when ``sha`` is not the head.

Requests carry ``Authorization: Bearer``, ``Accept: application/vnd.github+json`` and
``X-GitHub-Api-Version: 2022-11-28``. ``tests/git_modes/recorded/github.json`` holds the
shapes, with their sources.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from upgrade.controlplane.forge import ChecksState, Forge, Merged, PullRequest
from upgrade.errors import ForgeError

API_VERSION = "2022-11-28"
PAGE = 100  # check runs per page (GitHub's largest)
MAX_PAGES = 10  # GitHub lists check runs of the 1,000 latest check suites at most
PASSING = frozenset({"success", "neutral", "skipped"})


def statuses_verdict(doc: Any) -> ChecksState | None:
    """The combined commit status as a verdict; None when the commit has no statuses."""
    if not isinstance(doc, dict) or not doc.get("total_count"):
        return None
    state = doc.get("state")
    if state == "success":
        return "success"
    if state in ("failure", "error"):
        return "failure"
    return "pending"


def check_runs_verdict(runs: list[Any]) -> ChecksState | None:
    """The check runs as a verdict; None when there are none."""
    if not runs:
        return None
    verdicts = set()
    for run in runs:
        if not isinstance(run, dict) or run.get("status") != "completed":
            verdicts.add("pending")
        elif run.get("conclusion") in PASSING:
            verdicts.add("success")
        else:  # failure, cancelled, timed_out, action_required, stale, or unknown
            verdicts.add("failure")
    return "failure" if "failure" in verdicts else "pending" if "pending" in verdicts \
        else "success"


def combined_verdict(*verdicts: ChecksState | None) -> ChecksState:
    """Failure if any fails, pending if any is pending or none reported, else success."""
    present = [v for v in verdicts if v is not None]
    if "failure" in present:
        return "failure"
    if not present or "pending" in present:
        return "pending"
    return "success"


class GitHub(Forge):
    """One repository on GitHub (or GitHub Enterprise Server, at its ``/api/v3`` URL)."""

    kind = "github"
    title = "GitHub"

    def headers(self, token: str) -> dict[str, str]:
        """Bearer token, the JSON media type and the pinned API version."""
        return {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION}

    @property
    def _repo(self) -> str:
        owner, _, name = self.project.partition("/")
        return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"

    @property
    def repo_path(self) -> str:
        """``GET /repos/{owner}/{repo}`` (Get a repository)."""
        return self._repo

    def find_open(self, branch: str, base: str) -> PullRequest | None:
        """The open pull request from ``branch`` (in this repo) into ``base``."""
        return next(iter(self._list(branch, base, "open")), None)

    def find_merged(self, branch: str, base: str, head_sha: str) -> PullRequest | None:
        """The merged pull request from ``branch`` into ``base`` whose head was ``head_sha``
        (GitHub lists a merged one as closed, with ``merged_at``)."""
        return next((pr for pr in self._list(branch, base, "closed")
                     if pr.state == "merged" and pr.head_sha == head_sha), None)

    def _list(self, branch: str, base: str, state: str) -> list[PullRequest]:
        owner = self.project.partition("/")[0]
        found = self.call("GET", f"{self._repo}/pulls",
                          params={"state": state, "head": f"{owner}:{branch}", "base": base,
                                  "per_page": 100})
        if not isinstance(found, list):
            raise ForgeError(f"GitHub answered the pull request list of {self.project} with "
                             "something that is not a list.")
        return [pr for pr in map(self._pull, found) if pr.head_branch == branch]

    def create(self, branch: str, base: str, title: str, body: str) -> PullRequest:
        """Open a pull request; one that already exists (422) is found and reused."""
        def exists(resp: httpx.Response) -> Any:
            found = self.find_open(branch, base)
            if found is None:
                raise ForgeError(f"GitHub refused a pull request from {branch} into {base} of "
                                 f"{self.project} (422: {self.said(resp)}).")
            return found

        made = self.call("POST", f"{self._repo}/pulls",
                         json={"title": title, "head": branch, "base": base, "body": body},
                         answers={422: exists})
        return made if isinstance(made, PullRequest) else self._pull(made)

    def get(self, number: int) -> PullRequest:
        """The pull request now."""
        return self._pull(self.call("GET", f"{self._repo}/pulls/{int(number)}"))

    def checks(self, pr: PullRequest) -> ChecksState:
        """The head commit's commit statuses and check runs, as one verdict."""
        ref = f"{self._repo}/commits/{quote(pr.head_sha, safe='')}"
        return combined_verdict(statuses_verdict(self.call("GET", f"{ref}/status")),
                                check_runs_verdict(self._check_runs(ref)))

    def _check_runs(self, ref: str) -> list[Any]:
        """Every check run on the commit, page by page (``total_count`` says how many)."""
        runs: list[Any] = []
        for page in range(1, MAX_PAGES + 1):
            doc = self.call("GET", f"{ref}/check-runs", params={"per_page": PAGE, "page": page})
            items = doc.get("check_runs") if isinstance(doc, dict) else None
            if not isinstance(items, list):
                raise ForgeError(f"GitHub answered the check runs of {self.project} without a "
                                 "check_runs list.")
            runs.extend(items)
            total = doc.get("total_count")
            if not items or not isinstance(total, int) or len(runs) >= total:
                break
        return runs

    def merge(self, pr: PullRequest, message: str) -> Merged:
        """Merge at the head commit we checked (a merge commit, as a person's button)."""
        def refused(outcome: str) -> Any:
            return lambda resp: Merged(outcome, said=self.said(resp))  # type: ignore[arg-type]

        done = self.call("PUT", f"{self._repo}/pulls/{int(pr.number)}/merge",
                         json={"sha": pr.head_sha, "merge_method": "merge",
                               "commit_title": message},
                         answers={405: refused("not_mergeable"), 409: refused("head_moved")})
        if isinstance(done, Merged):
            return done
        sha = done.get("sha") if isinstance(done, dict) else None
        if not (isinstance(done, dict) and done.get("merged") and isinstance(sha, str)):
            raise ForgeError(f"GitHub answered the merge of {pr.url} without a merge commit.")
        return Merged("merged", sha=sha)

    def _pull(self, item: Any) -> PullRequest:
        if not isinstance(item, dict) or not isinstance(item.get("number"), int):
            raise ForgeError(f"GitHub answered a pull request of {self.project} that is not the "
                             "documented shape (no number).")
        head = item.get("head") if isinstance(item.get("head"), dict) else {}
        merged = bool(item.get("merged")) or bool(item.get("merged_at"))
        state = "merged" if merged else ("open" if item.get("state") == "open" else "closed")
        return PullRequest(
            number=item["number"], url=str(item.get("html_url") or ""), state=state,
            head_branch=str(head.get("ref") or ""), head_sha=str(head.get("sha") or ""),
            merge_commit=str(item["merge_commit_sha"]) if merged and item.get(
                "merge_commit_sha") else None,
        )
