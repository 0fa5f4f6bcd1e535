"""The decision corpus: one Deployment's facts, its target, its permissions, the action.

Each case is decided twice: by the policy alone, in-process (tests/core/test_policy.py),
and by the real commands over a fleet made of exactly those facts (a Dockerfile, what the
simulator reports deployed, the journal's high-water mark, this catalog as the runtime
feed): `plan`, `upgrade --dry-run` and `upgrade` must decide it the same way and exit the
same way (tests/rollout/test_one_decision.py).

The versions are real releases (the simulator builds and deploys them), with release data
chosen for the rules: 12.5.0 yanked, 11.8.0 past its end of maintenance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from upgrade.model.catalog import Catalog, Release
from upgrade.model.versions import parse_version

# (version, end of maintenance, yanked reason or None, channel)
RELEASES: tuple[tuple[str, str | None, str | None, str], ...] = (
    ("11.7.0", "2025-09-30", None, "deprecated"),
    ("11.8.0", "2025-10-31", None, "deprecated"),
    ("12.3.0", None, None, "stable"),
    ("12.4.0", None, None, "stable"),
    ("12.5.0", None, "Broken scheduler.", "stable"),
    ("13.6.0", None, None, "stable"),
    ("13.7.0", None, None, "stable"),
    ("13.9.0", None, None, "stable"),
    ("3.1-11", None, None, "stable"),
    ("3.1-12", None, None, "stable"),
    ("3.2-5", None, None, "stable"),
)


def catalog() -> Catalog:
    """The corpus's releases as the policy reads them."""
    return Catalog(tuple(
        Release(version=parse_version(v), channel=channel, yanked=yanked is not None,
                yanked_reason=yanked,
                end_of_maintenance=date.fromisoformat(eom) if eom else None)
        for v, eom, yanked, channel in RELEASES))


def feed() -> dict:
    """The same releases in Astronomer's runtime feed format (catalog: {mode: replace})."""
    doc: dict = {"version": "decisions", "runtimeVersions": {}, "runtimeVersionsV3": {}}
    for v, eom, yanked, channel in RELEASES:
        meta: dict = {"channel": channel, "releaseDate": "2024-01-01"}
        if eom:
            meta["endOfMaintenance"] = eom
        if yanked:
            meta.update(yanked=True, yankedReason=yanked)
        doc["runtimeVersionsV3" if "-" in v else "runtimeVersions"][v] = {"metadata": meta}
    return doc


@dataclass(frozen=True)
class Case:
    """One decision. ``planned``: what the plan decides when the planner answers before
    the policy (a target for another Runtime line leaves the Deployment not targeted);
    ``org``: Airflow 3 versions other Deployments of the wave already run."""

    id: str
    target: str
    action: str
    reason: str = ""  # a fragment of the policy's reason
    deployed: str | None = None
    dockerfile: str | None = None
    high_water: str | None = None
    allow_airflow3: bool = False
    allow_end_of_maintenance: bool = False
    org: tuple[str, ...] = ()
    planned: str | None = None
    e2e: str | None = None  # why this case cannot be a fleet (None: it is one)
    warns: bool = False

    @property
    def plan_action(self) -> str:
        """What ``plan`` says for this Deployment."""
        return self.planned or self.action


CASES: tuple[Case, ...] = (
    Case("plain upgrade", "12.4.0", "upgrade", "Upgrade 12.3.0 → 12.4.0.",
         deployed="12.3.0", dockerfile="12.3.0"),
    Case("equal is a noop", "12.4.0", "noop", "Already at 12.4.0.",
         deployed="12.4.0", dockerfile="12.4.0", high_water="12.4.0"),
    Case("noop from the Dockerfile alone", "12.4.0", "noop", "Already at 12.4.0.",
         dockerfile="12.4.0",
         e2e="Astro always reports a version for a Deployment it lists"),
    Case("below the deployed version", "12.4.0", "refuse",
         "Cannot deploy a downgraded Astro Runtime version. Modify your Astro Runtime version "
         "to 13.6.0 or higher", deployed="13.6.0", dockerfile="12.3.0", warns=True),
    Case("below the high-water mark", "12.4.0", "refuse", "highest recorded version is 13.6.0",
         deployed="12.3.0", dockerfile="12.3.0", high_water="13.6.0"),
    Case("Airflow 3 to 2 is another line", "13.9.0", "refuse", "different line",
         deployed="3.1-12", dockerfile="3.1-12", planned="not_targeted"),
    Case("Dockerfile newer than the target", "12.4.0", "refuse",
         "The Dockerfile already holds 13.6.0, newer than the target 12.4.0",
         deployed="12.3.0", dockerfile="13.6.0", warns=True),
    Case("unknown target", "12.4.9", "refuse", "12.4.9 is not a known Astro Runtime release",
         deployed="12.3.0", dockerfile="12.3.0"),
    Case("yanked target", "12.5.0", "refuse",
         "Target 12.5.0 is yanked by Astronomer (Broken scheduler)",
         deployed="12.3.0", dockerfile="12.3.0"),
    Case("past end of maintenance", "11.8.0", "refuse", "end of maintenance on 2025-10-31",
         deployed="11.7.0", dockerfile="11.7.0"),
    Case("end of maintenance allowed", "11.8.0", "upgrade", "Upgrade 11.7.0 → 11.8.0.",
         deployed="11.7.0", dockerfile="11.7.0", allow_end_of_maintenance=True),
    Case("Airflow 3 needs an explicit opt-in", "3.1-12", "refuse", "allow_airflow3: true",
         deployed="13.9.0", dockerfile="13.9.0", planned="not_targeted"),
    Case("Airflow 3 needs 13.7.0 or later", "3.1-12", "refuse",
         "needs Runtime 13.7.0 or later", deployed="13.6.0", dockerfile="13.6.0",
         allow_airflow3=True),
    Case("Airflow 3 from 13.7.0", "3.1-12", "migrate", "Migrate 13.7.0 → 3.1-12",
         deployed="13.7.0", dockerfile="13.7.0", allow_airflow3=True),
    Case("Airflow 3 target must be the newest patch", "3.1-11", "refuse",
         "latest patch of each minor (3.1-12)", deployed="13.9.0", dockerfile="13.9.0",
         allow_airflow3=True),
    Case("Airflow 3 target already used in the org", "3.1-11", "migrate",
         "Migrate 13.9.0 → 3.1-11", deployed="13.9.0", dockerfile="13.9.0",
         allow_airflow3=True, org=("3.1-11",)),
    Case("within Airflow 3", "3.2-5", "upgrade", "Upgrade 3.1-11 → 3.2-5.",
         deployed="3.1-11", dockerfile="3.1-11"),
    Case("a disagreement is a warning", "13.9.0", "upgrade", "Upgrade 12.4.0 → 13.9.0.",
         deployed="12.4.0", dockerfile="12.3.0", warns=True),
    Case("Dockerfile at the target ahead of Astro", "12.4.0", "upgrade",
         "Upgrade 12.3.0 → 12.4.0.", deployed="12.3.0", dockerfile="12.4.0"),
    Case("deployed at the target, Dockerfile behind", "12.4.0", "upgrade",
         "rewrite it to match", deployed="12.4.0", dockerfile="12.3.0", warns=True),
    Case("nothing known pins the target", "12.4.0", "upgrade", "will pin 12.4.0",
         e2e="a plan always reads a Dockerfile, or refuses the repo"),
)
CASE_IDS = [c.id for c in CASES]
