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

from collections.abc import Sequence

from upgrade.config.targets import TargetSource, single
from upgrade.errors import PolicyRefusal
from upgrade.journal.records import Rollout
from upgrade.model.versions import parse_spec
from upgrade.plan.planner import resolve_pinned
from upgrade.plan.targets import Targets, describe
from upgrade.run.session import Session


def follow(fleet: Session, active: Rollout | None) -> Targets:
    """The targets for this command: ``active``'s pins (with the target it started with),
    or, with no active rollout, every spec resolved now.

    Raises PolicyRefusal when ``--target`` asks for a version the active rollout did not pin.
    """
    if active is None:
        return fleet.targets()
    note = None
    flag = fleet.inventory.override
    if flag is not None:
        spec = str(next(iter(flag.specs.values())))
        asked = fleet.targets().resolutions[spec]
        if asked.version not in active.pins.values():
            raise PolicyRefusal(
                f"rollout {active.id} pinned {describe(active.pins)}; {TargetSource.FLAG} "
                f"{spec} resolves to {asked.version}. Leave {TargetSource.FLAG} out to follow "
                "the rollout, or finish it, or abandon it with "
                '`astro-fleet abandon --reason "..."` to start a new one.')
        note = (f"{TargetSource.FLAG} {spec} is rollout {active.id}'s pin ({asked.version}); "
                "following the rollout")
    resolutions = resolve_pinned(fleet.catalog, active.pins, pinned_by=f"rollout {active.id}")
    if active.target_source != TargetSource.FLAG:
        return Targets(resolutions, TargetSource.PINNED, rollout=active, note=note)
    return Targets(resolutions, TargetSource.PINNED, single(parse_spec(active.target_spec)),
                   f"rollout {active.id} ({TargetSource.FLAG} {active.target_spec})",
                   rollout=active, note=note)


def last_completed(fleet: Session, rollouts: Sequence[Rollout]) -> Rollout | None:
    """The newest rollout when it completed pinning exactly what a rollout started now
    would pin (the same targets, nothing newer in the catalog), else None.

    Its waves are done: running one again is a no-op, not the start of a new rollout
    whose gate would refuse every wave after the first.
    """
    if not rollouts or rollouts[-1].status != "completed":
        return None
    now = fleet.targets().versions
    return rollouts[-1] if now == dict(rollouts[-1].pins) else None


def yanked(targets: Targets) -> str | None:
    """How to go on when a release the active rollout pinned has been yanked since."""
    if targets.rollout is None:
        return None
    gone = [(spec, r) for spec, r in targets.resolutions.items() if r.release.yanked]
    if not gone:
        return None
    what = "; ".join(
        f"'{spec}' → {r.version}"
        + (f" ({r.release.yanked_reason.rstrip('.')})" if r.release.yanked_reason else "")
        for spec, r in gone)
    return (f"rollout {targets.rollout.id} pinned {what}, which Astronomer has yanked since. A "
            "rollout's pins never change: end it with `astro-fleet abandon --reason \"...\"`, "
            "then start a new rollout with another target (the inventory's, or --target).")
