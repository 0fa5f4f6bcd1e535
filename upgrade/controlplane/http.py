"""The one retry loop for HTTP reads of Astro's platform API and each Airflow API.

A read is retried on connection errors, time-outs, 5xx and 429 (honouring ``Retry-After``),
with bounded exponential back-off and jitter, within a total time budget; anything else is
answered at once. The callers decide what a response means and which error names it; this
module only decides when to try again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

from upgrade.config.control_plane import ControlPlaneConfig
from upgrade.errors import ServiceError, Signal

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential back-off: ``attempts`` tries within ``total`` s."""

    attempts: int = 4
    backoff: float = 0.5
    backoff_max: float = 8.0
    total: float = 60.0
    jitter: bool = True

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        base = min(self.backoff_max, self.backoff * 2 ** (attempt - 1))
        # Equal jitter: spread a fleet's retries without ever waiting less than half.
        return base / 2 + random.uniform(0, base / 2) if self.jitter else base


def retry_policy(config: ControlPlaneConfig) -> RetryPolicy:
    """The retry policy the ``control_plane:`` settings describe."""
    return RetryPolicy(
        attempts=config.http_retries + 1,
        backoff=config.http_backoff,
        backoff_max=config.http_backoff_max,
        total=config.http_total_timeout,
    )


class Retry(Signal):
    """Raised by a response handler: ``failure`` is transient, try again (after ``after`` s)."""

    def __init__(self, failure: ServiceError, after: float | None = None):
        super().__init__(str(failure))
        self.failure = failure
        self.after = after


def retry_after(resp: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (a 429's or 503's hint), when it is a number."""
    try:
        return max(0.0, float(resp.headers.get("retry-after", "")))
    except ValueError:
        return None


def read_with_retries(
    send: Callable[[httpx.Timeout], httpx.Response],
    *,
    policy: RetryPolicy,
    timeout: float,
    connect_timeout: float,
    on_response: Callable[[httpx.Response], T],
    on_transport: Callable[[httpx.TransportError], ServiceError],
) -> T:
    """Send (``send(limit)``) until ``on_response`` returns, raises, or the budget is spent.

    ``on_response`` returns the value, raises a final error, or raises :class:`Retry`;
    ``on_transport`` names a connection error or time-out (always retried). The error of
    the last try is raised, its message saying how many attempts were made.
    """
    deadline = time.monotonic() + policy.total
    attempt = 0
    while True:
        attempt += 1
        remaining = max(0.05, deadline - time.monotonic())
        limit = httpx.Timeout(min(timeout, remaining), connect=min(connect_timeout, remaining))
        wait: float | None = None
        try:
            return on_response(send(limit))
        except Retry as retry:
            failure, wait = retry.failure, retry.after
        except httpx.TransportError as exc:  # time-outs included
            failure = on_transport(exc)
        delay = max(policy.delay(attempt), wait or 0.0)
        if attempt >= policy.attempts or time.monotonic() + delay >= deadline:
            failure.attempts = attempt  # type: ignore[attr-defined]
            failure.args = (f"{failure.args[0]}; gave up after {attempt} attempt(s).",)
            raise failure
        log.info("%s; retrying in %.2fs (attempt %d of %d)", failure, delay, attempt + 1,
                 policy.attempts)
        time.sleep(delay)
