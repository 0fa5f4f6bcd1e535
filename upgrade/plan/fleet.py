"""One command's view of the fleet: inventory, catalog, hosts and control plane, loaded once.

A :class:`Fleet` is a context manager: the inventory is loaded and validated on entry
(every problem at once), the catalog, the runners' hosts and the control plane are opened
on first use, and every connection is closed on exit. Everything that plans goes through
:meth:`Fleet.plan`, so ``plan``, ``render`` and ``upgrade`` decide with the same facts and
the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from upgrade.config.inventory import Deployment, Inventory, Repo
from upgrade.config.inventory_loader import load_inventory
from upgrade.hosts.host import Host
from upgrade.model.catalog import Catalog, Resolution, load_catalog
from upgrade.model.versions import RuntimeVersion
from upgrade.plan.facts import deployed_versions, org_airflow3_versions, read_dockerfiles
from upgrade.plan.plan import DeployedFact, Plan, PlanOptions, build_plan

if TYPE_CHECKING:
    from upgrade.controlplane.control_plane import ControlPlane
    from upgrade.hosts.pool import HostPool


class Fleet:
    """The loaded inventory plus what commands need around it (catalog, hosts, Astro)."""

    def __init__(self, inventory: Inventory, feed_override: str | None = None):
        self.inventory = inventory
        self.feed_override = feed_override

    @classmethod
    def load(cls, path: str | Path, *, target: str | None = None, feed: str | None = None) -> Fleet:
        """Load and validate the inventory (every problem at once) and nothing else yet."""
        return cls(load_inventory(Path(path), target_override=target), feed)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @cached_property
    def catalog(self) -> Catalog:
        """The snapshot with the inventory's (or --feed's) runtime feed applied."""
        settings = self.inventory.catalog
        feed = self.feed_override or settings.feed
        return load_catalog(feed, mode=settings.mode, base_dir=self.inventory.root)  # type: ignore[arg-type]

    @cached_property
    def control_plane(self) -> ControlPlane:
        """The Astro control plane (real CLI, or the simulator) configured in the inventory."""
        # Imported here: httpx is needed only by commands that talk to Astro (not --offline).
        from upgrade.controlplane.control_plane import ControlPlane

        return ControlPlane(self.inventory.control_plane)

    @cached_property
    def hosts(self) -> HostPool:
        """One Host per runner: this machine, or a pooled SSH connection (opened lazily)."""
        from upgrade.hosts.pool import HostPool

        return HostPool(self.inventory)

    def host_for(self, repo: Repo) -> Host:
        """The host a repo lives on (its runner)."""
        return self.hosts.host_for(repo)

    def resolve(self, source: str = "") -> Resolution:
        """The fleet target resolved against the catalog."""
        inv = self.inventory
        where = source or (
            "--target"
            if inv.target_source == "--target"
            else f"{inv.file}:{inv.line_of('target')}: target"
        )
        return self.catalog.resolve(inv.target, source=where)

    def select(self, wave: int | None, limits: Sequence[str]) -> list[Deployment]:
        """Deployments of ``wave`` chosen by ``--limit`` (same grammar everywhere)."""
        return self.inventory.select(wave, limits)

    def plan(
        self,
        deployments: Sequence[Deployment],
        *,
        resolution: Resolution | None = None,
        offline: bool = False,
        adopt: bool = False,
        high_water: Mapping[str, RuntimeVersion] | None = None,
    ) -> Plan:
        """Gather facts for ``deployments`` and decide; the only impure step is gathering."""
        resolution = resolution or self.resolve()
        files = read_dockerfiles(self.inventory, deployments, self.host_for)
        deployed: dict[str, DeployedFact] = (
            {} if offline else deployed_versions(self.control_plane, deployments)
        )
        return build_plan(
            self.inventory,
            deployments,
            resolution,
            self.catalog,
            files,
            deployed,
            high_water or {},
            PlanOptions(today=datetime.now(UTC).date(), adopt=adopt),
            org_versions=org_airflow3_versions(deployed),
        )

    def close(self) -> None:
        """Release pooled connections (HTTP to Airflow, SSH to runners)."""
        if "control_plane" in self.__dict__:
            self.control_plane.close()
        if "hosts" in self.__dict__:
            self.hosts.close()
