"""What Astro runs now, per Deployment: one look at the fleet for the report's matrix.

The journal says what each Deployment was moved to; one ``astro deployment list`` per
workspace says what each runs now, so the version matrix shows the fleet as it is (a
hand deploy after the rollout included). A workspace that cannot be read leaves its
Deployments to the journal, and the note says so.
"""

from __future__ import annotations

from datetime import UTC, datetime

from upgrade.errors import AstroError
from upgrade.model.versions import RuntimeVersion, try_parse_version
from upgrade.plan.fleet import Fleet


def deployed_versions(fleet: Fleet) -> tuple[dict[str, RuntimeVersion], str]:
    """What Astro runs now, per Deployment id of the inventory, and how it was learnt.

    One list per workspace; a workspace that cannot be read leaves its Deployments to the
    journal, and the note says which.
    """
    found: dict[str, RuntimeVersion] = {}
    failed: list[str] = []
    workspaces = dict.fromkeys(d.workspace_id for d in fleet.inventory.deployments)
    cp = fleet.control_plane
    for ws in workspaces:
        try:
            listed = cp.list(ws)
        except AstroError as exc:
            failed.append(f"{ws}: {str(exc).splitlines()[0] if str(exc) else exc}")
            continue
        for summary in listed:
            version = try_parse_version(summary.runtime_version)
            if version is not None:
                found[summary.id] = version
    if failed and not found:
        return found, "Astro could not be read (" + "; ".join(failed) + ")"
    note = f"read from Astro at {datetime.now(UTC):%H:%M:%S} UTC"
    if failed:
        note += "; these workspaces could not be read: " + "; ".join(failed)
    return found, note
