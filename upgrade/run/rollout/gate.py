"""The gate in front of every wave: earlier waves passed, soaked, still healthy; approvals.

Wave N starts only when every earlier wave of the rollout passed and its soak has
elapsed (this module: the journal's half), and at that moment every Deployment of the
earlier waves is verified again, as they may have degraded during soak (the live half, in
``upgrade.run.rollout.preflight``). A wave may require an approval (`astro-fleet approve`).
`--skip-gate --reason` bypasses all of it, and is recorded and shown in every later report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from upgrade.config.inventory import Inventory
from upgrade.errors import GateRefused
from upgrade.journal.records import WaveRecord


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


def refusal(wave: int, reasons: Sequence[str]) -> GateRefused:
    """The error that refuses ``wave``, every reason listed; nothing is recorded (a refused
    command changes nothing), the webhook still tells the team."""
    return GateRefused(
        f"the gate refuses wave {wave}:\n"
        + "\n".join(f"  - {r}" for r in reasons)
        + f"\nIn an emergency: `astro-fleet upgrade --wave {wave} --skip-gate --reason \"...\"` "
        "(recorded, and shown in every report afterwards)."
    )


def _duration(seconds: int) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return (
        f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
    )
