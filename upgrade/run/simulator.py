"""The local simulator of an inventory's control plane: where it keeps state, and seeding it.

``control_plane.simulator`` names the simulator's state directory (relative to the
inventory) or its URL. These are the ``sim.*`` commands' operations; the simulator itself
is ``upgrade.sim``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from upgrade.config.inventory import Deployment, Inventory
from upgrade.errors import DockerfileError, InputError, ServiceError
from upgrade.model.dockerfile import find_base_image
from upgrade.plan.facts import read_dockerfiles
from upgrade.plan.fleet import Fleet
from upgrade.sim import lifecycle


def state_dir(inv: Inventory) -> Path:
    """The simulator state directory named by the inventory's ``control_plane.simulator``."""
    where = inv.control_plane.simulator
    if where is None or where.startswith(("http://", "https://")):
        line = inv.line_of("control_plane", "simulator")
        raise InputError(
            f"{inv.file}:{line}: control_plane.simulator: set it to the simulator's state "
            "directory (e.g. .sim) to manage a local simulator with the sim.* commands."
        )
    return Path(where)


def url(inv: Inventory) -> str:
    """The URL of the inventory's simulator: given directly, or found via its state dir."""
    where = inv.control_plane.simulator
    if where is not None and where.startswith(("http://", "https://")):
        return where
    info = lifecycle.status(state_dir(inv))
    if info is None:
        raise ServiceError("the simulator is not running: start it with `astro-fleet sim.start`.")
    return info.url


def canary_dags(inv: Inventory, dep: Deployment) -> list[str]:
    """The DAGs the inventory's ``dag_run`` checks (its wave's, its own) expect it to have."""
    wave = inv.waves.get(dep.wave)
    found: list[str] = []
    for layer in (wave.verify if wave else None, dep.verify):
        for check in (layer.checks or ()) if layer else ():
            dag_id = check.get("dag_id")
            if check["name"] == "dag_run" and dag_id and dag_id not in found:
                found.append(dag_id)
    return found


def seed_documents(fleet: Fleet) -> tuple[list[dict[str, Any]], list[str]]:
    """Simulator Deployments for the inventory, at their Dockerfiles' versions; and skips.

    Each gets the DAGs its ``dag_run`` checks name, paused as new DAGs are in Airflow.
    """
    inv = fleet.inventory
    files = read_dockerfiles(inv, inv.deployments, fleet.host_for)
    docs, skipped = [], []
    for dep in inv.deployments:
        text = files[dep.repo].text
        try:
            if text is None:
                raise DockerfileError(files[dep.repo].error or "unreadable")
            version = find_base_image(text, path=str(inv.repos[dep.repo].dockerfile_path)).version
        except DockerfileError as exc:
            skipped.append(f"{dep.name}: {exc}")
            continue
        docs.append(
            {
                "id": dep.id,
                "name": dep.name,
                "workspace_id": dep.workspace_id,
                "runtime_version": str(version),
                "dags": canary_dags(inv, dep),
            }
        )
    return docs, skipped


def seed(fleet: Fleet) -> tuple[str, int, list[str]]:
    """Create the inventory's Deployments in its simulator; (URL, how many, skips)."""
    where = url(fleet.inventory)
    docs, skipped = seed_documents(fleet)
    lifecycle.seed(where, docs)
    return where, len(docs), skipped
