"""The gate in front of every wave: earlier waves passed, soaked, still healthy; approvals.

Wave N starts only when every earlier wave of the rollout passed and its soak has
elapsed, and at that moment every Deployment of the earlier waves is verified again (they
may have degraded during soak). A wave may require an approval (`astro-fleet approve`).
`--skip-gate --reason` bypasses all of it, and is recorded and shown in every later report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from upgrade.config.inventory import Inventory
from upgrade.errors import GateRefused
from upgrade.journal.records import DeploymentRecord, WaveRecord
from upgrade.journal.store import Journal


@dataclass(frozen=True)
class GateDecision:
    """Whether a wave may start, and every reason it may not."""

    wave: int
    reasons: tuple[str, ...]
    reverified: int = 0

    @property
    def open(self) -> bool:
        """True when nothing stands in the way."""
        return not self.reasons


# Re-verifies Deployments; returns one failure message per Deployment that fails now.
Reverify = Callable[[Sequence[DeploymentRecord]], list[str]]


def static_reasons(
    inventory: Inventory, waves: Iterable[WaveRecord], wave: int, now: datetime
) -> list[str]:
    """What the journal alone says stands in the way of ``wave`` (pure)."""
    reasons = []
    recorded = {w.number: w for w in waves}
    for number in sorted(n for n in inventory.waves if n < wave):
        if not any(d.wave == number for d in inventory.deployments):
            continue  # a wave with no Deployments has nothing to pass
        record = recorded.get(number)
        if record is None or record.status != "passed":
            status = "not started" if record is None else record.status
            why = f" ({record.halt_reason})" if record and record.halt_reason else ""
            reasons.append(
                f"wave {number} has not passed (it is {status}{why}): run "
                f"`astro-fleet upgrade --wave {number}` first"
            )
        elif record.proceed_after is not None and now < record.proceed_after:
            left = int((record.proceed_after - now).total_seconds()) + 1
            until = record.proceed_after.isoformat(timespec="seconds")
            reasons.append(
                f"wave {number} is soaking until {until} ({_duration(left)} left); "
                "run this again after that"
            )
    settings = inventory.waves.get(wave)
    record = recorded.get(wave)
    if settings is not None and settings.approval and (record is None or record.approval is None):
        reasons.append(
            f'wave {wave} requires an approval: `astro-fleet approve --wave {wave} --reason "..."`'
        )
    return reasons


def check(
    journal: Journal,
    inventory: Inventory,
    rollout_id: int,
    wave: int,
    now: datetime,
    reverify: Reverify,
) -> GateDecision:
    """The full gate: the journal's verdict, then a fresh verification of earlier waves."""
    reasons = static_reasons(inventory, journal.waves(rollout_id), wave, now)
    if reasons:
        return GateDecision(wave, tuple(reasons))
    earlier = [
        d for d in journal.deployments(rollout_id) if d.wave < wave and d.state == "verified"
    ]
    failures = reverify(earlier)
    if failures:
        shown = "; ".join(failures[:10]) + (
            f"; and {len(failures) - 10} more" if len(failures) > 10 else ""
        )
        reasons.append(
            f"{len(failures)} Deployment(s) of earlier waves no longer pass verification: {shown}"
        )
    return GateDecision(wave, tuple(reasons), reverified=len(earlier))


def refuse(journal: Journal, rollout_id: int, decision: GateDecision) -> GateRefused:
    """Record the refusal in the journal and build the error to raise."""
    message = (
        f"the gate refuses wave {decision.wave}:\n"
        + "\n".join(f"  - {r}" for r in decision.reasons)
        + (
            f"\nIn an emergency: `astro-fleet upgrade --wave {decision.wave} --skip-gate "
            '--reason "..."` (recorded, and shown in every report afterwards).'
        )
    )
    journal.event("gate_refused", rollout_id=rollout_id, wave=decision.wave, message=message)
    return GateRefused(message)


def _duration(seconds: int) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return (
        f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
    )
