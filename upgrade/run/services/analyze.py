"""``astro-fleet analyze``: measure the soak analyses of the active rollout's waves, record
each measurement, and restart (``--retry``) or accept (``--accept``) them with a reason.

Under the journal's run lock, like every command that writes. ``watch`` measures every
``interval`` until no analysis is running: the soak, watched (in CI: ``upgrade --wave 1 &&
analyze --wave 1 --watch && upgrade --wave 2``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from upgrade.errors import InputError
from upgrade.journal.configured import locked_journal
from upgrade.run.session import Session
from upgrade.run.verify import analysis
from upgrade.run.verify.analysis import RUNNING, Measurement


@dataclass
class Analyzed:
    """What one ``analyze`` did: the measurements, and the analyses restarted or accepted."""

    rollout_id: int
    measurements: list[Measurement] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    looks: int = 0

    @property
    def blocking(self) -> list[Measurement]:
        """The analyses that keep the next wave's gate closed."""
        return [m for m in self.measurements if m.blocks()]


def analyze(fleet: Session, wave: int | None, *, actor: str, command: str,
            retry: str | None = None, accept: str | None = None, watch: bool = False,
            stop: threading.Event | None = None,
            on_look: Callable[[list[Measurement]], None] | None = None) -> Analyzed:
    """Measure (and record) every analysis of ``wave`` (all waves: None) of the active
    rollout; ``retry``/``accept``: the reason to restart or accept the failed and
    inconclusive ones first. InputError when there is no active rollout or no analysis."""
    stop = stop or threading.Event()
    inv = fleet.inventory
    with locked_journal(inv.journal, command) as (journal, _):
        active = journal.active_rollout()
        if active is None:
            raise InputError("no active rollout: nothing is soaking, so there is nothing to "
                             "analyse. Start one with `astro-fleet upgrade --wave 1`.")
        records = [r for r in journal.deployments(active.id)
                   if wave is None or r.wave == wave]
        done = Analyzed(active.id)
        if retry is not None:
            done.retried = analysis.retry(journal, active.id, records, actor, retry)
        if accept is not None:
            done.accepted = analysis.accept(journal, active.id, records, actor, accept)
        spaces = analysis.workspaces(inv, records)
        while True:
            found = analysis.measure_all(fleet.control_plane, journal, records, spaces,
                                         datetime.now(UTC))
            for m in found:
                if m.fresh:
                    analysis.record(journal, active.id, m)
            done.measurements, done.looks = found, done.looks + 1
            if on_look is not None:
                on_look(found)
            running = [m for m in found if m.status == RUNNING]
            if not watch or not running:
                break
            pause = min(m.settings.interval for m in running if m.settings is not None)
            if stop.wait(pause):
                break
        if not done.measurements and done.looks == 1 and not (done.retried or done.accepted):
            which = f"wave {wave}" if wave is not None else "any wave"
            raise InputError(
                f"no analysis to measure in {which} of rollout {active.id}: a wave's settings "
                "ask for one with the 'analysis' check (docs/verification.md, 'Soak "
                "analysis'), and only a Deployment deployed in this rollout has one.")
        return done
