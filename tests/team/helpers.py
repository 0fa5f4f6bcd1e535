"""Team fleets: generated fleets whose journal is a PostgreSQL schema, and working copies.

A working copy is another directory with its own inventory.yaml, playbooks and
``.upgrade/`` (as on another laptop or CI runner), whose repos are the first copy's (as
when both reach the same runner): only the journal and its lock are shared.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from tests.rollout.helpers import GenFleet
from upgrade.config.settings import JournalSettings
from upgrade.journal.configured import existing_journal
from upgrade.journal.records import DeploymentRecord, Event
from upgrade.journal.store import Journal


def use_postgres(fleet: GenFleet, url: str) -> JournalSettings:
    """Point the fleet's inventory at the PostgreSQL journal ``url``; its settings."""
    doc = yaml.safe_load(fleet.inventory.read_text("utf-8"))
    doc["journal"] = url
    fleet.inventory.write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    return JournalSettings(fleet.root / ".upgrade", url)


def working_copy(fleet: GenFleet, root: Path) -> GenFleet:
    """Another working copy of ``fleet``'s inventory in ``root``, on the same repos."""
    root.mkdir(parents=True)
    shutil.copytree(fleet.root / "playbooks", root / "playbooks")
    doc = yaml.safe_load(fleet.inventory.read_text("utf-8"))
    for spec in doc["repos"].values():
        spec["path"] = str(fleet.root / spec["path"])
    (root / "inventory.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    return GenFleet(root, fleet.sim, list(fleet.deps))


@contextmanager
def journal(settings: JournalSettings) -> Iterator[Journal]:
    found = existing_journal(settings)
    assert found is not None, "no journal in the database yet"
    with found:
        yield found


def records(settings: JournalSettings) -> dict[str, DeploymentRecord]:
    """The active (else the newest) rollout's rows, by Deployment name."""
    with journal(settings) as j:
        rollout = j.active_rollout() or (j.rollouts() or [None])[-1]
        assert rollout is not None, "the journal has no rollout"
        return {r.name: r for r in j.deployments(rollout.id)}


def events(settings: JournalSettings, kind: str) -> list[Event]:
    with journal(settings) as j:
        return [e for e in j.events(None) if e.kind == kind]


def states(settings: JournalSettings) -> dict[str, str]:
    """Each Deployment's state ({} before the journal or a rollout exists)."""
    try:
        return {name: r.state for name, r in records(settings).items()}
    except AssertionError:
        return {}
