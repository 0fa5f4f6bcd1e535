"""``discover``: read every Deployment and its latest deploy's git metadata from Astro, find
the repos' checkouts here, and merge what is new into an inventory (written only when
everything was read and the result validates).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from upgrade.config.control_plane import ControlPlaneConfig
from upgrade.config.inventory_loader import load_inventory
from upgrade.config.inventory_writer import Merged, NewDeployment, NewRepo, merge_inventory
from upgrade.controlplane.control_plane import resolve
from upgrade.controlplane.deploy_record import latest_with_git, normalise_remote
from upgrade.controlplane.platform import TOKEN_ENV, PlatformReader
from upgrade.errors import AstroAuthError, InventoryError, PlatformError
from upgrade.hosts import git
from upgrade.hosts.host import LocalHost
from upgrade.plan.discover import DiscoveredDeployment, Discovery, Found, discover

READERS = 8  # deploy-record reads at once
SCAN_DEPTH = 2  # checkouts are looked for in DIR, DIR/*, DIR/*/*


@dataclass(frozen=True)
class Written:
    """What ``discover`` proposed and what it merged."""

    discovery: Discovery
    merged: Merged
    url: str  # the platform API read


def read_fleet(config: ControlPlaneConfig, workspaces: Sequence[str], repos_dir: Path,
               waves: Sequence[int]) -> tuple[Discovery, str]:
    """Every Deployment (of ``workspaces``, or all) with its git; checkouts under ``repos_dir``."""
    config = resolve(config)
    base, token, _ = PlatformReader.endpoint(config)
    reader = PlatformReader.for_config(config)
    if reader is None:
        why = ("no token" if not token else "it would travel without https")
        raise AstroAuthError(
            f"cannot read {base} ({why}): set ${TOKEN_ENV} to an Astro API token that can "
            "read Deployments (an Organization token, or a Workspace token with --workspace), "
            "then run again. Nothing was written.")
    with reader:
        try:
            infos = reader.deployments(tuple(workspaces))
        except PlatformError as exc:
            raise PlatformError(f"{exc} Check the network (and ASTRO_DOMAIN), then run "
                                "again. Nothing was written.") from None

        def one(deployment_id: str) -> Found:
            latest = latest_with_git(reader.deploys(deployment_id))
            return Found(infos[deployment_id], latest.git if latest else None,
                         latest.created_at if latest else None)

        with ThreadPoolExecutor(READERS) as pool:
            found = list(pool.map(one, sorted(infos)))
    return discover(found, find_checkouts(repos_dir), waves), base


def find_checkouts(root: Path) -> dict[str, str]:
    """Repository identity (normalised ``origin``) -> checkout directory, under ``root``."""
    host = LocalHost()
    found: dict[str, str] = {}
    level = [Path(root).resolve()]
    for depth in range(SCAN_DEPTH + 1):
        below = []
        for directory in level:
            if (directory / ".git").exists():
                url = git.remote_url(host, str(directory))
                if url:
                    found.setdefault(normalise_remote(url), str(directory))
                continue
            if depth < SCAN_DEPTH:
                try:
                    below += sorted(p for p in directory.iterdir()
                                    if p.is_dir() and not p.name.startswith("."))
                except OSError:
                    continue
        level = below
    return found


def merge(discovery: Discovery, base_text: str, root: Path,
          production_group: bool) -> Merged:
    """``base_text`` with the discovered Deployments added (see inventory_writer)."""
    repos = [
        NewRepo(name=r.name, path=r.path(str(root)),
                comment=f"discovered: {r.repository}"
                        + (f" ({r.project_dir})" if r.project_dir else "")
                        + ("" if r.checkout else f"; clone {r.clone_url} here"),
                deployments=tuple(_new(d, production_group) for d in r.deployments))
        for r in discovery.repos
    ]
    unmapped = [f"{{id: {d.id}, name: {d.name}, workspace_id: {d.workspace_id}, "
                f"wave: {d.wave}}}  # {d.note()}" for d in discovery.unmapped]
    return merge_inventory(base_text, str(root), repos, unmapped)


def _new(d: DiscoveredDeployment, production_group: bool) -> NewDeployment:
    prod = production_group and "prod" in d.wave_reason
    return NewDeployment(d.id, d.name, d.workspace_id, d.wave, d.note(),
                         ("production",) if prod else ())


def validate(text: str, where: Path) -> None:
    """Load ``text`` as an inventory in ``where`` (InventoryError naming the problems)."""
    fd, name = tempfile.mkstemp(prefix=".discover-", suffix=".yaml", dir=where)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        try:
            load_inventory(Path(name), check_repos=False)
        except InventoryError as exc:
            shown = "the inventory discover would write"
            raise InventoryError([replace(p, file=shown) for p in exc.problems]) from None
    finally:
        os.unlink(name)
