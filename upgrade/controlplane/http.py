"""The one retry loop for HTTP reads of Astro's platform API and each Airflow API.

A read is retried on connection errors, time-outs, 5xx and 429 (honouring ``Retry-After``),
with bounded exponential back-off and jitter, within a total time budget; anything else is
answered at once. The callers decide what a response means and which error names it; this
module only decides when to try again. A :class:`Throttle` carries a server's
``Retry-After`` to every thread of one client, so that none asks again before it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
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


def retry_after(resp: httpx.Response, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds (a 429's or 503's hint): delay-seconds or an HTTP-date
    (RFC 9110 section 10.2.3 allows both); None when absent or unreadable."""
    text = resp.headers.get("retry-after", "").strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class Throttle:
    """The time before which one client sends nothing, shared by all its threads.

    A 429's ``Retry-After`` is about the client (the token), not the one request: the
    thread that got it waits in its retry, and every other thread waits here before its
    next request instead of spending one more 429 of the server's patience.
    """

    def __init__(self, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self._sleep, self._clock = sleep, clock
        self._lock = threading.Lock()
        self._until = -float("inf")

    def hold(self, seconds: float) -> None:
        """Send nothing for ``seconds`` from now (a later hold never shortens an earlier)."""
        with self._lock:
            self._until = max(self._until, self._clock() + seconds)

    def pause(self) -> float:
        """Seconds still to wait before sending (0 when free to send)."""
        with self._lock:
            return max(0.0, self._until - self._clock())

    def wait(self) -> None:
        """Sleep until sending is allowed again (at once when it is)."""
        pause = self.pause()
        if pause > 0:
            self._sleep(pause)


def read_with_retries(
    send: Callable[[httpx.Timeout], httpx.Response],
    *,
    policy: RetryPolicy,
    timeout: float,
    connect_timeout: float,
    on_response: Callable[[httpx.Response], T],
    on_transport: Callable[[httpx.TransportError], ServiceError],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Send (``send(limit)``) until ``on_response`` returns, raises, or the budget is spent.

    ``on_response`` returns the value, raises a final error, or raises :class:`Retry`;
    ``on_transport`` names a connection error or time-out (always retried). The error of
    the last try is raised, its message saying how many attempts were made. ``sleep``
    waits between tries (tests pass one that records the wait instead of taking it).
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
        sleep(delay)
