"""The targets a command works to: the active rollout's pins, or a fresh resolution.

A rollout resolves every target spec its Deployments use once, when it starts, and pins
that whole map (spec → exact version) in the journal. Every later ``upgrade``, ``approve``
and ``plan`` follows it: the pins, and the targets the rollout started with (the
inventory's layers, or the ``--target`` it was started with), so nobody retypes the
target and no later wave gets a newer release than the ones before it verified.
``--target`` on a command of an active rollout is a check: it must resolve to a pinned
version, else the command is refused with the pins named.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from upgrade.config.targets import single
from upgrade.errors import PolicyRefusal
from upgrade.journal.records import Rollout
from upgrade.model.catalog import Resolution
from upgrade.model.versions import RuntimeVersion, parse_spec
from upgrade.plan.fleet import Fleet

GIVEN = "--target"  # a rollout's target_source when it was started with --target


@dataclass(frozen=True)
class Pins:
    """Every target spec resolved, and the rollout that pinned them (None: none is active;
    a rollout started now pins ``targets``)."""

    targets: Mapping[str, Resolution]
    rollout: Rollout | None = None
    note: str | None = None

    @property
    def versions(self) -> dict[str, RuntimeVersion]:
        """spec → exact version, as the journal stores it."""
        return {spec: r.version for spec, r in self.targets.items()}

    def describe(self) -> str:
        """``'13' → 13.9.0, '3.1' → 3.1-17``."""
        return describe(self.versions)


def describe(pins: Mapping[str, RuntimeVersion]) -> str:
    """A pin map as messages show it."""
    return ", ".join(f"'{spec}' → {version}" for spec, version in pins.items())


def follow(fleet: Fleet, active: Rollout | None) -> Pins:
    """The targets for this command: ``active``'s pins (and ``fleet`` set to plan with the
    targets it started with), or, with no active rollout, every spec resolved now.

    Raises PolicyRefusal when ``--target`` asks for a version the active rollout did not pin.
    """
    inv = fleet.inventory
    if active is None:
        return Pins(fleet.targets())
    note = None
    if inv.override is not None and inv.override_source == GIVEN:
        spec = str(next(iter(inv.override.specs.values())))
        asked = fleet.targets()[spec]
        if asked.version not in active.pins.values():
            raise PolicyRefusal(
                f"rollout {active.id} pinned {describe(active.pins)}; --target {spec} resolves "
                f"to {asked.version}. Leave --target out to follow the rollout, or finish it, "
                'or abandon it with `astro-fleet abandon --reason "..."` to start a new one.')
        note = (f"--target {spec} is rollout {active.id}'s pin ({asked.version}); following "
                "the rollout")
    if active.target_source == GIVEN:
        fleet.follow(single(parse_spec(active.target_spec)),
                     f"rollout {active.id} (--target {active.target_spec})")
    else:
        fleet.follow(None)
    return Pins(fleet.targets(active.pins, pinned_by=f"rollout {active.id}"), active, note)


def last_completed(fleet: Fleet, rollouts: Sequence[Rollout]) -> Rollout | None:
    """The newest rollout when it completed pinning exactly what a rollout started now
    would pin (the same targets, nothing newer in the catalog), else None.

    Its waves are done: running one again is a no-op, not the start of a new rollout
    whose gate would refuse every wave after the first.
    """
    if not rollouts or rollouts[-1].status != "completed":
        return None
    now = {spec: r.version for spec, r in fleet.targets().items()}
    return rollouts[-1] if now == dict(rollouts[-1].pins) else None


def yanked(pins: Pins) -> str | None:
    """How to go on when a release the active rollout pinned has been yanked since."""
    if pins.rollout is None:
        return None
    gone = [(spec, r) for spec, r in pins.targets.items() if r.release.yanked]
    if not gone:
        return None
    what = "; ".join(
        f"'{spec}' → {r.version}"
        + (f" ({r.release.yanked_reason.rstrip('.')})" if r.release.yanked_reason else "")
        for spec, r in gone)
    return (f"rollout {pins.rollout.id} pinned {what}, which Astronomer has yanked since. A "
            "rollout's pins never change: end it with `astro-fleet abandon --reason \"...\"`, "
            "then start a new rollout with another target (the inventory's, or --target).")
