"""The failure budget of one wave: Ansible's ``max_fail_percentage`` plus an absolute cap.

Semantics (those of Ansible's linear strategy), decided once here:

* ``max_fail_percentage`` is per batch: it trips when ``failed / batch size`` is **strictly
  greater** than the percentage, the denominator being the batch's size when it started.
  ``batch: 10`` with 30% trips on the 4th failure; 0% trips on the first.
* If every Deployment of a batch failed, the wave stops whatever the percentage (Ansible
  does the same, even at 100%).
* ``max_failures`` counts failures across the whole wave and trips when it is exceeded:
  ``max_failures: 1`` tolerates one failure and stops at the second.
* Unlike Ansible, a Deployment whose runner is unreachable counts as failed: for a Runtime
  upgrade an unreachable build host is a failure the operator must see in the budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FailureBudget:
    """Counts failures as they happen and says when a budget trips (and which one)."""

    max_fail_percentage: float | None = None
    max_failures: int | None = None
    wave_failures: int = 0
    batch_size: int = 0
    batch_failures: int = 0
    batch_done: int = 0
    tripped: str | None = field(default=None)

    def start_batch(self, size: int) -> None:
        """A new batch of ``size`` Deployments begins; per-batch counts start over."""
        self.batch_size, self.batch_failures, self.batch_done = size, 0, 0

    def record(self, failed: bool) -> str | None:
        """Count one finished Deployment; return the trip message the first time one trips."""
        self.batch_done += 1
        if failed:
            self.batch_failures += 1
            self.wave_failures += 1
        if self.tripped is None:
            self.tripped = self._check()
            return self.tripped
        return None

    def _check(self) -> str | None:
        if self.max_failures is not None and self.wave_failures > self.max_failures:
            return (
                f"max_failures tripped: {self.wave_failures} Deployments failed in this wave, "
                f"more than the {self.max_failures} allowed"
            )
        pct, size = self.max_fail_percentage, self.batch_size
        # Multiply instead of dividing: no rounded share can slip under the limit.
        if pct is not None and size and self.batch_failures * 100 > pct * size:
            share = 100 * self.batch_failures / size
            return (
                f"max_fail_percentage tripped: {self.batch_failures} of {size} Deployments "
                f"in this batch failed ({share:.0f}%), more than the {pct:g}% allowed"
            )
        if size and self.batch_failures == size:
            return f"every Deployment of the batch failed ({self.batch_failures} of {size})"
        return None
