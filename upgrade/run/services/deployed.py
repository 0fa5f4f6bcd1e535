"""What Astro runs now, per Deployment: one look at the fleet for the report's matrix.

The journal says what each Deployment was moved to; one ``astro deployment list`` per
workspace says what each runs now, so the version matrix shows the fleet as it is (a
hand deploy after the rollout included). A workspace that cannot be read leaves its
Deployments to the journal, and the note says so.
"""

from __future__ import annotations

from datetime import UTC, datetime

from upgrade.errors import ServiceError
from upgrade.model.versions import RuntimeVersion, try_parse_version
from upgrade.run.session import Session


def deployed_versions(fleet: Session) -> tuple[dict[str, RuntimeVersion], str]:
    """What Astro runs now, per Deployment id of the inventory, and how it was learnt."""
    found: dict[str, RuntimeVersion] = {}
    failed: dict[str, list[str]] = {}  # the problem -> the workspaces it kept from us
    workspaces = dict.fromkeys(d.workspace_id for d in fleet.inventory.deployments)
    for ws in workspaces:
        try:
            listed = fleet.control_plane.list(ws)
        except ServiceError as exc:  # Astro or its CLI
            failed.setdefault(str(exc).splitlines()[0].rstrip(". ") if str(exc) else
                              type(exc).__name__, []).append(ws)
            continue
        for summary in listed:
            version = try_parse_version(summary.runtime_version)
            if version is not None:
                found[summary.id] = version
    problems = "; ".join(f"{', '.join(wss)}: {problem}" for problem, wss in failed.items())
    if failed and not found:
        return found, f"Astro could not be read ({problems}); as the journal recorded it"
    note = f"as Astro reported it at {datetime.now(UTC):%H:%M:%S} UTC"
    if failed:
        note += f"; the journal's where Astro could not be read ({problems})"
    return found, note
