"""429 Too Many Requests from Astro's platform API, through the production client against
the simulator (``sim.throttle``), on a simulated clock: waits are recorded, never taken.

Sources: Astro documents its rate limits per token (GET 25 requests/s, "Astro API
overview", ../shared/reference/astro-cli.md §9.1) and answers errors in its error shape;
forges-and-astro-edges.md: honour 429 with Retry-After as for any public API. Retry-After is
delay-seconds or an HTTP date (RFC 9110 §10.2.3).
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from simulators import SimHandle

from upgrade.controlplane.http import RetryPolicy, retry_after
from upgrade.controlplane.platform import RATE_LIMITED, PlatformReader
from upgrade.errors import PlatformError

LIST, GET = "platform: list Deployments", "platform: get Deployment"


class SimulatedTime:
    """A monotonic clock that moves only when something sleeps on it: waits are recorded,
    never taken."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 2))
        self.now += seconds


def grown(sim: SimHandle, before: dict[str, int]) -> dict[str, int]:
    after = sim.requests()
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def reader(sim: SimHandle, time: SimulatedTime, total: float = 60.0) -> PlatformReader:
    return PlatformReader(f"{sim.url}/v1", sim.env["ASTRO_API_TOKEN"], timeout=5.0,
                          retry=RetryPolicy(attempts=4, backoff=0.01, backoff_max=0.05,
                                            total=total),
                          sleep=time.sleep, clock=time.clock)


def test_a_429_is_waited_out_as_retry_after_says(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "one")
    sim.throttle(2, retry_after=7, kind=LIST)
    time = SimulatedTime()
    before = sim.requests()
    with reader(sim, time) as api:
        assert api.workspace("ws-1")["dep-1"].name == "one"
    assert time.slept == [7.0, 7.0]  # Astro's word, not the 0.01 s back-off
    assert grown(sim, before) == {LIST: 3}


def test_a_429_without_retry_after_waits_a_bounded_default(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "one")
    sim.throttle(1, kind=GET)
    time = SimulatedTime()
    with reader(sim, time) as api:
        assert api.deployment("dep-1", "ws-1").name == "one"
    assert time.slept == [RATE_LIMITED]


def test_no_request_goes_out_before_retry_after_from_any_read(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "one")
    sim.throttle(1, retry_after=120, kind=GET)
    time = SimulatedTime()
    before = sim.requests()
    with reader(sim, time, total=30.0) as api:
        # Longer than this read may wait: it fails at once, without waiting.
        with pytest.raises(PlatformError, match="answered 429.*gave up after 1 attempt"):
            api.deployment("dep-1", "ws-1")
        # Any other read (another Deployment's thread) is not even sent meanwhile.
        with pytest.raises(PlatformError, match="not sent.*another 120 s"):
            api.workspace("ws-1")
        assert grown(sim, before) == {GET: 1}
        time.now += 100  # 20 s of the hold left: within a read's budget, it waits them
        assert api.deployment("dep-1", "ws-1").name == "one"
    assert time.slept == [20.0]
    assert grown(sim, before) == {GET: 2}


def test_retry_after_is_seconds_or_an_http_date() -> None:
    now = datetime(2026, 12, 7, 20, 0, 0, tzinfo=UTC)

    def said(value: str) -> float | None:
        return retry_after(httpx.Response(429, headers={"Retry-After": value}), now=now)

    assert said("7") == 7.0
    assert said("Mon, 07 Dec 2026 20:00:30 GMT") == 30.0
    assert said("Mon, 07 Dec 2026 19:59:00 GMT") == 0.0  # already past: go
    assert said("soon") is None
    assert retry_after(httpx.Response(429)) is None
