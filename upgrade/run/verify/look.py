"""One look of a check at a Deployment, and what a probe knows about the check it serves.

A probe (``upgrade.run.verify.checks``) answers each look with a :class:`Look`; the poller
(``upgrade.run.verify.verify``) decides when to look again and what the last look means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from upgrade.config.verify import CheckSpec
from upgrade.errors import Signal


@dataclass(frozen=True)
class Look:
    """One observation: ``pass``, ``fail``, ``wait`` (not yet) or ``unknown`` (no answer)."""

    state: str
    message: str
    final: bool = False  # waiting cannot change this


class Abandoned(Signal):
    """A call still in flight when the check's deadline passed or a stop was requested."""

    def __init__(self, stopped: bool):
        self.stopped = stopped


@dataclass
class Attempt:
    """What a probe may know about the check it serves."""

    spec: CheckSpec
    started: float
    deadline: float
    one_look: bool
    tries: int = 0  # looks taken so far, this one included
    # What a probe keeps between its looks (heartbeats seen, the canary run it triggered).
    memory: dict[str, Any] = field(default_factory=dict)
