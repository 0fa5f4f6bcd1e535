"""The monotonic upgrade policy: may this Deployment be sent this Runtime?

One pure function, :func:`decide`, answers for one Deployment from plain facts. It is the
only place that says upgrade, noop or refuse; everything that deploys asks it first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from upgrade.model.catalog import Catalog
from upgrade.model.versions import RuntimeVersion, parse_version

Action = Literal["upgrade", "migrate", "noop", "refuse"]

# Astronomer's in-place Airflow 2 -> 3 rules (https://www.astronomer.io/docs/astro/airflow3/
# upgrade-af3): the Deployment must already run Runtime
# 13.7.0 or later, and the target must be the latest patch of an Airflow 3 minor, or a 3.x
# version already running in the Organization. The CLI's own deploy-time floor (12.0.0,
# astro-cli ValidRuntimeVersion) is lower, so this one is the binding rule.
AIRFLOW3_MINIMUM_SOURCE = parse_version("13.7.0")


@dataclass(frozen=True)
class Facts:
    """What is known about one Deployment's Runtime; None means not known."""

    deployed: RuntimeVersion | None = None  # what Astro reports as deployed
    dockerfile: RuntimeVersion | None = None  # what its repo's Dockerfile builds from
    high_water: RuntimeVersion | None = None  # highest it ever had, per our journal
    dockerfile_at: str | None = None  # ``path:line`` of the Dockerfile's version, if known

    @property
    def current(self) -> RuntimeVersion | None:
        """The version the Deployment runs now, as well as we know it."""
        return self.deployed or self.dockerfile


@dataclass(frozen=True)
class PolicyOptions:
    """Per-Deployment permissions; the safe choice is the default for each."""

    today: date
    allow_airflow3: bool = False
    allow_end_of_maintenance: bool = False
    # Airflow 3 versions already running in the Organization: Astronomer also accepts
    # those as in-place upgrade targets.
    org_versions: frozenset[RuntimeVersion] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Decision:
    """The policy's answer for one Deployment, always with a human reason."""

    action: Action
    reason: str
    warnings: tuple[str, ...] = ()


def decide(
    facts: Facts, target: RuntimeVersion, catalog: Catalog, options: PolicyOptions
) -> Decision:
    """Upgrade, noop or refuse for one Deployment; pure, so every rule is testable alone."""
    warnings = _warnings(facts, target)

    def refuse(reason: str) -> Decision:
        return Decision("refuse", reason, warnings)

    release = catalog.get(target)
    if release is None:
        return refuse(f"Target {target} is not a known Astro Runtime release.")
    if release.yanked:
        why = f" ({release.yanked_reason.rstrip('.')})" if release.yanked_reason else ""
        return refuse(f"Target {target} is yanked by Astronomer{why}; choose another version.")

    for floor, what in ((facts.deployed, "deployed"), (facts.high_water, "highest recorded")):
        if floor is not None and target < floor and floor.scheme != target.scheme:
            return refuse(
                f"{target} is on the Airflow 2 line and this Deployment is on Airflow 3 "
                f"({what} version {floor}): a different line, and Airflow 3 never goes back to "
                "2. Give it an Airflow 3 target (target: {airflow3: ...})."
            )
        if floor is not None and target < floor:
            return refuse(
                "Cannot deploy a downgraded Astro Runtime version. Modify your Astro Runtime "
                f"version to {floor} or higher in your Dockerfile ({what} version is {floor}, "
                f"target is {target})."
            )
    if facts.dockerfile is not None and facts.dockerfile > target:
        at = f"{facts.dockerfile_at}: " if facts.dockerfile_at else ""
        if facts.dockerfile.scheme != target.scheme:
            return refuse(
                f"{at}The Dockerfile already holds {facts.dockerfile} (Airflow 3), a different "
                f"line from the target {target} (Airflow 2). Give this Deployment an Airflow 3 "
                "target."
            )
        return refuse(
            f"{at}The Dockerfile already holds {facts.dockerfile}, newer than the target {target}; "
            "rewriting it would lower it. Raise the target or leave this Deployment out."
        )

    at_target = [v for v in (facts.deployed, facts.dockerfile) if v is not None]
    if at_target and all(v == target for v in at_target):
        return Decision("noop", f"Already at {target}.", warnings)

    current = facts.current
    migrating = current is not None and current.scheme == "af2" and target.scheme == "af3"
    if migrating:
        assert current is not None
        crossing = _airflow3_crossing(current, target, catalog, options)
        if crossing:
            return refuse(crossing)

    if release.past_maintenance(options.today) and not options.allow_end_of_maintenance:
        return refuse(
            f"Target {target} reached end of maintenance on {release.end_of_maintenance}; "
            "choose a maintained version, or allow end-of-maintenance targets explicitly."
        )

    if current is None:
        return Decision("upgrade", f"Nothing known deployed; will pin {target}.", warnings)
    if facts.deployed is not None and facts.deployed == target:
        return Decision(
            "upgrade",
            f"Deployed {target} already, but the Dockerfile holds {facts.dockerfile}; "
            "rewrite it to match (an equal-version redeploy is allowed).",
            warnings,
        )
    if migrating:
        return Decision("migrate", f"Migrate {current} → {target} (Airflow 2 → 3).", warnings)
    return Decision("upgrade", f"Upgrade {current} → {target}.", warnings)


def _airflow3_crossing(
    current: RuntimeVersion, target: RuntimeVersion, catalog: Catalog, options: PolicyOptions
) -> str | None:
    if not options.allow_airflow3:
        return (
            f"{current} → {target} crosses from Airflow 2 to Airflow 3 (new registry, metadata "
            "migration, failed in-flight runs). Allow it explicitly for this Deployment "
            "(allow_airflow3: true) after following Astronomer's Airflow 3 upgrade guide."
        )
    if current < AIRFLOW3_MINIMUM_SOURCE:
        return (
            f"An in-place upgrade to Airflow 3 needs Runtime {AIRFLOW3_MINIMUM_SOURCE} or later "
            f"first (Astronomer's rule); this Deployment runs {current}. Upgrade it to 13.7.0+ "
            "in an earlier rollout."
        )
    newest = catalog.newest_in_line(target)
    if target not in options.org_versions and (newest is None or newest.version != target):
        return (
            f"{target} is not available as an Airflow 3 upgrade target: Astronomer allows only "
            f"the latest patch of each minor ({newest.version if newest else 'none known'}) or "
            "a version already used in your Organization."
        )
    return None


def _warnings(facts: Facts, target: RuntimeVersion) -> tuple[str, ...]:
    if (
        facts.deployed is not None
        and facts.dockerfile is not None
        and facts.deployed != facts.dockerfile
        # A Dockerfile already at this target ahead of Astro is a rollout in flight (a
        # shared repo changed by an earlier wave, a merge waiting for its deploy), not a
        # deploy by hand.
        and not (facts.dockerfile == target and facts.deployed < target)
    ):
        return (
            f"The Dockerfile holds {facts.dockerfile} but Astro reports {facts.deployed} "
            "deployed: someone deployed by hand, or the last deploy did not finish.",
        )
    return ()
