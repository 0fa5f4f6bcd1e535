"""A Session decides from the connections it is given: in-process stand-ins, no process.

The session is the run floor's bundle of connections (the runners' hosts, Astro's control
plane, the catalog). Given a control plane and hosts, it uses them as they are (here: a
workspace listing and Dockerfile texts held in memory, in the shape of
``astro deployment list --json``'s rows, ``upgrade.controlplane.deployment``), and leaves
closing them to their owner.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from upgrade.config.inventory import Inventory, Repo
from upgrade.config.inventory_loader import load_inventory
from upgrade.config.targets import TargetSource
from upgrade.controlplane.deployment import DeploymentSummary
from upgrade.run.session import Session

AF2 = "quay.io/astronomer/astro-runtime"


@dataclass
class Astro:
    """What Astro lists per workspace."""

    listed: dict[str, list[DeploymentSummary]]
    closed: bool = False

    def list(self, workspace_id: str) -> list[DeploymentSummary]:
        return self.listed.get(workspace_id, [])

    def close(self) -> None:
        self.closed = True


@dataclass
class Files:
    """One runner's files, by path."""

    texts: dict[str, str]

    def read_text(self, path: str) -> str:
        if path not in self.texts:
            raise FileNotFoundError(path)
        return self.texts[path]

    def exists(self, path: str) -> bool:
        return any(p == path or p.startswith(path + "/") for p in self.texts)


@dataclass
class Hosts:
    files: Files
    closed: bool = False
    asked: list[str] = field(default_factory=list)

    def host_for(self, repo: Repo) -> Files:
        self.asked.append(repo.name)
        return self.files

    def prepare(self, repos: Iterable[Repo]) -> None:
        # Only repos given by url have checkouts to make ready; these are given by path.
        assert all(repo.managed is None for repo in repos)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    doc = {"target": "13", "repos": {
        "etl": {"path": "repos/etl", "deployments": [
            {"id": "cl-etl", "name": "etl-prod", "workspace_id": "ws-1", "wave": 1}]},
        "gone": {"path": "repos/gone", "deployments": [
            {"id": "cl-gone", "name": "gone-prod", "workspace_id": "ws-1", "wave": 1}]},
    }}
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_inventory(tmp_path / "inventory.yaml", check_repos=False)


def test_a_session_decides_with_the_connections_it_is_given(inventory: Inventory) -> None:
    root = inventory.root
    astro = Astro({"ws-1": [DeploymentSummary("cl-etl", "etl-prod", "12.1.0", "2.10.5", "ws-1")]})
    hosts = Hosts(Files({f"{root}/repos/etl/Dockerfile": f"FROM {AF2}:12.1.0\n"}))
    with Session(inventory, control_plane=astro, hosts=hosts) as session:  # type: ignore[arg-type]
        targets = session.targets()
        plan = session.decide(inventory.deployments, targets=targets)
    decided = {p.deployment.name: p for p in plan.deployments}
    etl, gone = decided["etl-prod"], decided["gone-prod"]
    assert (etl.action, str(etl.deployed), etl.target and etl.target.major) == \
        ("upgrade", "12.1.0", 13)
    assert etl.repo.new_text == f"FROM {AF2}:{etl.target}\n"
    # Neither Astro nor the runner knows it: refused for its path, named by the inventory.
    assert (gone.action, gone.refusal) == ("blocked", "input")
    assert "repos/gone does not exist on runner" in gone.reason
    assert sorted(hosts.asked) == ["etl", "gone"]
    # The targets are a value: the session and its inventory are as they were.
    assert (targets.source, targets.given) == (TargetSource.INVENTORY, None)
    assert session.inventory is inventory and inventory.override is None
    # What was given is its owner's to close.
    assert not astro.closed and not hosts.closed
