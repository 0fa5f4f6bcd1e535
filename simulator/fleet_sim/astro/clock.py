"""The simulator's time: the wall clock, or a clock that moves only when told to.

Nothing in the simulator runs on a timer: a deploy records *when* the Deployment turns
DEPLOYING and HEALTHY, a DAG run when it ends, a heartbeat is the time floored to its
period, and every read computes what is true "now". So whoever owns "now" owns every
transition. In ``wall`` mode "now" is real time (plus any ``advance``); in ``manual`` mode it
stands still until ``advance`` moves it, so a test decides exactly when two simulated minutes
have passed instead of sleeping and racing them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

MODES = ("wall", "manual")


@dataclass
class Clock:
    """Seconds since the epoch, as the simulator's stored timestamps are."""

    offset: float = 0.0  # seconds added to the wall clock (wall mode) by advance()
    frozen_at: float | None = None  # the time in manual mode; None in wall mode

    @property
    def mode(self) -> str:
        """``wall`` or ``manual``."""
        return "wall" if self.frozen_at is None else "manual"

    def now(self) -> float:
        """The current simulated time."""
        if self.frozen_at is not None:
            return self.frozen_at
        return time.time() + self.offset

    def set_mode(self, mode: str) -> None:
        """Switch modes without a jump: the time goes on from where it is."""
        if mode == self.mode:
            return
        if mode == "manual":
            self.frozen_at = self.now()
        else:
            self.offset = self.now() - time.time()
            self.frozen_at = None

    def advance(self, seconds: float) -> None:
        """Move the time forward (never back: every transition assumes it only grows)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        if self.frozen_at is not None:
            self.frozen_at += seconds
        else:
            self.offset += seconds

    def to_json(self) -> dict:
        """What the store keeps, so a restarted server goes on with the same time."""
        return {"offset": self.offset, "frozen_at": self.frozen_at}

    @classmethod
    def from_json(cls, doc: object) -> Clock:
        """The clock a store kept (a wall clock when it kept none)."""
        if not isinstance(doc, dict):
            return cls()
        return cls(float(doc.get("offset") or 0.0), doc.get("frozen_at"))
