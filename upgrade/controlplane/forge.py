"""The forges repos live on (GitHub REST v3, GitLab REST v4): pull/merge requests, their
checks, and merging them. A forge is a system we depend on, like Astro.

Only these operations, each one documented endpoint (``forge_github``, ``forge_gitlab``):
find the open request for a branch, create one, read one (state, merged, merge commit),
read the combined status of the checks on a commit, merge. Every call goes through one
retry loop (``upgrade.controlplane.http``): connection errors, 5xx and 429 are retried,
honouring ``Retry-After`` and the rate-limit headers (``X-RateLimit-Remaining: 0`` with
``X-RateLimit-Reset``, as GitHub answers a spent quota with 403 or 429); a 401 or 403 is
one line naming the repo and the token's variable. The token is read from the environment
(``GITHUB_TOKEN``/``GITLAB_TOKEN`` or the variable ``git.token_env`` names) and never
printed: every message passes the redaction rule with the token as a known secret.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from upgrade.config.git import GitSettings
from upgrade.controlplane.http import Retry, RetryPolicy, read_with_retries, retry_after
from upgrade.errors import ForgeAuthError, ForgeError
from upgrade.model.redact import Redactor

PrState = Literal["open", "closed", "merged"]
ChecksState = Literal["success", "pending", "failure"]
MergeOutcome = Literal["merged", "not_mergeable", "head_moved"]

# A forge call that takes longer than this is treated as lost (and retried when safe).
TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
# The longest a rate limit may make us wait before the call counts as failed.
MAX_RATE_WAIT = 120.0


@dataclass(frozen=True)
class PullRequest:
    """A pull request (GitHub) or merge request (GitLab), as the tool needs it."""

    number: int  # GitHub's number, GitLab's iid
    url: str  # the page a person opens
    state: PrState
    head_branch: str
    head_sha: str
    merge_commit: str | None = None  # once merged


@dataclass(frozen=True)
class Merged:
    """What a merge request to the forge answered."""

    outcome: MergeOutcome
    sha: str | None = None
    said: str = ""


class Forge:
    """One repository on one forge: the HTTP client, the token and the retry loop."""

    kind = "forge"
    title = "the forge"

    def __init__(self, settings: GitSettings, project: str, *,
                 env: Mapping[str, str] | None = None, policy: RetryPolicy | None = None):
        env = os.environ if env is None else env
        self.project = project
        self.variable = settings.token_variable
        token = env.get(self.variable, "").strip()
        if not token:
            raise ForgeAuthError(
                f"{self.title} repo {project}: ${self.variable} is not set. Put a token with "
                "access to the repository in it (or name another variable in git.token_env).")
        self._redact = Redactor((token,))
        self.base_url = settings.api_url
        self.policy = policy or RetryPolicy(attempts=4, backoff=0.5, backoff_max=4.0, total=60.0)
        self._client = httpx.Client(headers=self.headers(token), follow_redirects=False)

    def headers(self, token: str) -> dict[str, str]:
        """The authentication and media-type headers of every request."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the connections."""
        self._client.close()

    def __enter__(self) -> Forge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the operations (each forge implements them) -------------------------------------

    @property
    def repo_path(self) -> str:
        """The repository's own resource (GitHub's Get a repository, GitLab's Get a single
        project)."""
        raise NotImplementedError

    def check_access(self) -> None:
        """One read of the repository: the token is accepted and can see it. Pre-flight
        asks this before a run writes anything; ForgeAuthError (exit 7) names the repo and
        the variable otherwise."""
        def hidden(resp: httpx.Response) -> Any:
            # GitHub answers 404, not 403, for a private repository a token cannot see.
            raise ForgeAuthError(self._line(
                f"{self.title} does not show {self.project} to the token in ${self.variable} "
                f"(404: {self.said(resp)}): the repository does not exist there, or the token "
                "has no access to it. Fix git.project (or the remote's URL), or give the token "
                "access to the repository."))

        doc = self.call("GET", self.repo_path, answers={404: hidden})
        if not isinstance(doc, Mapping):
            raise ForgeError(self._line(f"{self.title} answered the read of {self.project} "
                                        "with something that is not the documented object."))

    def find_open(self, branch: str, base: str) -> PullRequest | None:
        """The open request from ``branch`` into ``base``, if there is one."""
        raise NotImplementedError

    def find_merged(self, branch: str, base: str, head_sha: str) -> PullRequest | None:
        """The merged request from ``branch`` into ``base`` whose head was ``head_sha``, if
        there is one (a person merged it while no run was watching)."""
        raise NotImplementedError

    def create(self, branch: str, base: str, title: str, body: str) -> PullRequest:
        """Open a request from ``branch`` into ``base``."""
        raise NotImplementedError

    def get(self, number: int) -> PullRequest:
        """One request as it is now."""
        raise NotImplementedError

    def checks(self, pr: PullRequest) -> ChecksState:
        """The combined state of the checks on the request's head commit."""
        raise NotImplementedError

    def merge(self, pr: PullRequest, message: str) -> Merged:
        """Merge the request at its head commit (refused if the head moved)."""
        raise NotImplementedError

    def find_or_create(self, branch: str, base: str, title: str, body: str) -> tuple[
            PullRequest, bool]:
        """The open request for ``branch`` (reused), else a new one; True when created."""
        found = self.find_open(branch, base)
        if found is not None:
            return found, False
        return self.create(branch, base, title, body), True

    # -- HTTP ------------------------------------------------------------------------------

    def call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             json: Any = None, answers: Mapping[int, Callable[[httpx.Response], Any]]
             | None = None) -> Any:
        """One request with retries; the decoded JSON of a 2xx, or what ``answers`` makes
        of the status codes it handles (e.g. 405 on a merge)."""
        url = self.base_url + path
        what = f"{method} {path}"
        # Only a read, or a write the forge certainly did not process (429, refused
        # connection), is repeated; a write lost in a time-out is found again by the caller.
        safe = method == "GET"

        def send(limit: httpx.Timeout) -> httpx.Response:
            return self._client.request(method, url, params=params, json=json, timeout=limit)

        def on_response(resp: httpx.Response) -> Any:
            code = resp.status_code
            if answers and code in answers:
                return answers[code](resp)
            wait = self._rate_limited(resp)
            if wait is not None:
                raise Retry(self._error(resp, what, "rate limited"), after=wait)
            if code in (401, 403):
                raise ForgeAuthError(self._line(
                    f"{self.title} refused the token in ${self.variable} for {self.project} "
                    f"({code}: {self.said(resp)}). Give it access to the repository (pull "
                    "requests: write, contents: write, statuses: read)."))
            if 200 <= code < 300:
                try:
                    return resp.json()
                except ValueError as exc:
                    raise ForgeError(self._line(
                        f"{self.title} answered {what} for {self.project} with a body that is "
                        "not JSON.")) from exc
            if code >= 500 and safe:
                raise Retry(self._error(resp, what, "failed"), after=retry_after(resp))
            raise self._error(resp, what, "failed")

        def on_transport(exc: httpx.TransportError) -> ForgeError:
            failure = ForgeError(self._line(
                f"{self.title} could not be reached for {self.project} ({what}): "
                f"{type(exc).__name__}: {exc}. Check the network and git.forge_url."))
            if not safe and not isinstance(exc, httpx.ConnectError):
                raise failure  # the write may have happened: the caller looks again
            return failure

        return read_with_retries(send, policy=self.policy, timeout=TIMEOUT,
                                 connect_timeout=CONNECT_TIMEOUT, on_response=on_response,
                                 on_transport=on_transport)

    def _rate_limited(self, resp: httpx.Response) -> float | None:
        """Seconds to wait when the answer says the quota is spent, else None."""
        if resp.status_code == 429:
            return min(MAX_RATE_WAIT, retry_after(resp) or 1.0)
        if resp.status_code == 403 and resp.headers.get("x-ratelimit-remaining") == "0":
            if retry_after(resp) is not None:
                return min(MAX_RATE_WAIT, retry_after(resp) or 0.0)
            try:
                reset = float(resp.headers.get("x-ratelimit-reset", ""))
            except ValueError:
                return 1.0
            return min(MAX_RATE_WAIT, max(0.0, reset - time.time()))
        return None

    def said(self, resp: httpx.Response) -> str:
        """The forge's own message from an error body (``message``, GitLab's ``error``)."""
        try:
            doc = resp.json()
        except ValueError:
            return resp.reason_phrase or "no message"
        if isinstance(doc, Mapping):
            for key in ("message", "error"):
                value = doc.get(key)
                if isinstance(value, str | list) and value:
                    return self._redact(str(value))
        return resp.reason_phrase or "no message"

    def _error(self, resp: httpx.Response, what: str, how: str) -> ForgeError:
        return ForgeError(self._line(
            f"{self.title} {how} for {self.project}: {what} answered {resp.status_code} "
            f"({self.said(resp)})."))

    def _line(self, text: str) -> str:
        return self._redact(" ".join(text.split()))

