"""The forges repos live on (GitHub REST v3, GitLab REST v4): pull/merge requests, their
checks, and merging them. A forge is a system we depend on, like Astro.

Only these operations, each one documented endpoint (``forge_github``, ``forge_gitlab``):
find the open request for a branch, create one, read one (state, merged, merge commit),
read the checks on a commit, merge. Every call goes through one retry loop
(``upgrade.controlplane.http``) for connection errors and 5xx, and around it the forge's
rate limits, as GitHub's guidance says to honour them: ``Retry-After`` when given; a spent
quota (``x-ratelimit-remaining: 0``) until ``x-ratelimit-reset``; a secondary limit (403 or
429 whose message says so) without either header at least one minute, doubling on each
repeat; all within ``MAX_RATE_WAIT`` per call, after which the call fails (exit 7). The
waits go through ``sleep`` (injectable) and are logged. A 401, or a 403 that is not a rate
limit, is one line naming the repo and the token's variable. The token is read from the
environment (``GITHUB_TOKEN``/``GITLAB_TOKEN`` or the variable ``git.token_env`` names) and
never printed: every message passes the redaction rule with the token as a known secret.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from upgrade.config.git import GitSettings
from upgrade.controlplane.http import Retry, RetryPolicy, read_with_retries, retry_after
from upgrade.errors import ForgeAuthError, ForgeError, Signal
from upgrade.model.redact import Redactor

log = logging.getLogger(__name__)

PrState = Literal["open", "closed", "merged"]
ChecksState = Literal["success", "pending", "failure"]
# accepted: the forge took the merge but has not finished it (read the request again).
MergeOutcome = Literal["merged", "not_mergeable", "head_moved", "accepted"]

# A forge call that takes longer than this is treated as lost (and retried when safe).
TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
# GitHub's guidance for a secondary rate limit that names no time: wait at least a minute,
# longer each time it repeats.
SECONDARY_WAIT = 60.0
# The longest rate limits may make one call wait in all before it counts as failed
# (60 + 120 + 240 s: three unhinted secondary limits in a row).
MAX_RATE_WAIT = 600.0


class RateLimited(Signal):
    """An answer that says the quota is spent; ``after``: seconds the forge asked for
    (None: it did not say)."""

    def __init__(self, failure: ForgeError, after: float | None):
        super().__init__(str(failure))
        self.failure, self.after = failure, after


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
                 env: Mapping[str, str] | None = None, policy: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time):
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
        self._sleep, self._clock = sleep, clock
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
        of the status codes it handles (e.g. 405 on a merge). Rate limits are waited out
        (the forge did not process a request it refused for one, so a write is repeated
        too) within MAX_RATE_WAIT."""
        waited, strikes = 0.0, 0
        while True:
            try:
                return self._call_once(method, path, params=params, json=json,
                                       answers=answers)
            except RateLimited as limited:
                strikes += 1
                wait = limited.after
                if wait is None:  # nothing said when: a minute, doubling each time
                    wait = SECONDARY_WAIT * 2 ** (strikes - 1)
                if waited + wait > MAX_RATE_WAIT:
                    raise ForgeError(self._line(
                        f"{limited.failure}; rate limited for {waited:.0f}s already and the "
                        f"forge asks for {wait:.0f}s more: gave up (at most "
                        f"{MAX_RATE_WAIT:.0f}s per call). Run again later.")) from None
                log.warning("%s; waiting %.0fs (wait %d of this call)", limited.failure, wait,
                            strikes)
                self._sleep(wait)
                waited += wait

    def _call_once(self, method: str, path: str, *, params: Mapping[str, Any] | None,
                   json: Any, answers: Mapping[int, Callable[[httpx.Response], Any]] | None
                   ) -> Any:
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
            limited = self._rate_limited(resp)
            if limited is not None:
                kind, after = limited
                raise RateLimited(self._error(resp, what, f"rate limited ({kind})"), after)
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

    def _rate_limited(self, resp: httpx.Response) -> tuple[str, float | None] | None:
        """(kind, seconds to wait or None when the forge did not say) when the answer is a
        rate limit; None when it is not (a 403 without these signs refused the token)."""
        code = resp.status_code
        if code not in (403, 429):
            return None
        after = retry_after(resp)
        if resp.headers.get("x-ratelimit-remaining") == "0":
            if after is not None:
                return "primary", after
            try:
                reset = float(resp.headers.get("x-ratelimit-reset", ""))
            except ValueError:
                return "primary", None
            return "primary", max(1.0, reset - self._clock() + 1.0)
        secondary = "secondary rate limit" in self.said(resp).lower()
        if code == 429 or secondary or after is not None:
            return ("secondary" if secondary else "rate limit"), after
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

