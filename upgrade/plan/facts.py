"""Gather the facts a plan decides from: Dockerfile texts and what Astro has deployed.

This is the impure half of planning: it reads repos through their host and asks the
control plane, then hands plain data to :func:`upgrade.plan.build_plan`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from upgrade.config.inventory import Deployment, Inventory, Repo
from upgrade.errors import RunnerUnreachable
from upgrade.hosts.host import Host
from upgrade.model.versions import try_parse_version
from upgrade.plan.plan import DeployedFact, RepoFile

if TYPE_CHECKING:
    from upgrade.controlplane.control_plane import ControlPlane

# Listing a workspace is one `astro deployment list` process; a few at once is plenty.
LIST_WORKERS = 8


def read_dockerfiles(
    inventory: Inventory, deployments: Iterable[Deployment], host_for: Callable[[Repo], Host]
) -> dict[str, RepoFile]:
    """Each selected repo's Dockerfile text (exact bytes, CRLF kept), or why it can't be read."""
    files: dict[str, RepoFile] = {}
    for name in dict.fromkeys(d.repo for d in deployments):
        repo = inventory.repos[name]
        path = str(repo.path / repo.dockerfile)
        try:
            files[name] = RepoFile(host_for(repo).read_text(path))
        except FileNotFoundError:
            files[name] = RepoFile(None, "file not found")
        except (OSError, UnicodeDecodeError) as exc:
            files[name] = RepoFile(None, f"cannot be read ({exc})")
        except RunnerUnreachable as exc:
            files[name] = RepoFile(None, str(exc), unreachable=True)
    return files


def deployed_versions(
    control_plane: ControlPlane, deployments: Iterable[Deployment]
) -> dict[str, DeployedFact]:
    """What Astro reports deployed, one `deployment list` per workspace (not per Deployment)."""
    by_workspace: dict[str, list[Deployment]] = defaultdict(list)
    for dep in deployments:
        by_workspace[dep.workspace_id].append(dep)
    with ThreadPoolExecutor(max_workers=min(LIST_WORKERS, max(1, len(by_workspace)))) as pool:
        listed = dict(zip(by_workspace, pool.map(control_plane.list, by_workspace), strict=True))
    facts: dict[str, DeployedFact] = {}
    for workspace, members in by_workspace.items():
        known = {s.id: s for s in listed[workspace]}
        for dep in members:
            summary = known.get(dep.id)
            if summary is None:
                facts[dep.id] = DeployedFact(
                    None,
                    error=(
                        f"Astro has no Deployment {dep.id} in workspace {workspace}: check "
                        f"'id' and 'workspace_id' of {dep.name} in the inventory."
                    ),
                )
                continue
            version = try_parse_version(summary.runtime_version)
            facts[dep.id] = DeployedFact(
                version,
                error=None
                if version or not summary.runtime_version
                else (
                    f"Astro reports Runtime '{summary.runtime_version}' for {dep.name}, "
                    "which is not a version this tool can compare; refusing to plan blind."
                ),
            )
    return facts


def org_airflow3_versions(facts: Mapping[str, DeployedFact]) -> frozenset:
    """Airflow 3 versions already running in the fleet (Astronomer accepts those as targets)."""
    return frozenset(
        f.version for f in facts.values() if f.version is not None and f.version.scheme == "af3"
    )
