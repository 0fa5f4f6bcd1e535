"""Fixtures: a fleet directory where tests write inventories and their repos."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from upgrade.config.inventory import Inventory
from upgrade.config.inventory_loader import load_inventory
from upgrade.errors import InventoryError, Problem


class FleetDir:
    """A temporary directory holding inventory.yaml and repos/<name>/Dockerfile."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "inventory.yaml"

    def repo(self, name: str, *, dockerfile: str | None = "Dockerfile") -> Path:
        """Create repos/<name> (with a Dockerfile unless dockerfile is None)."""
        repo = self.root / "repos" / name
        repo.mkdir(parents=True, exist_ok=True)
        if dockerfile is not None:
            target = repo / dockerfile
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("FROM quay.io/astronomer/astro-runtime:12.1.0\n")
        return repo

    def write(self, text: str) -> Path:
        """Write the inventory; the first line of ``text`` after dedent is line 1."""
        self.path.write_text(textwrap.dedent(text).lstrip("\n"))
        return self.path

    def load(self, text: str, **kwargs: object) -> Inventory:
        """Write and load an inventory that must be valid."""
        return load_inventory(self.write(text), **kwargs)  # type: ignore[arg-type]

    def problems(self, text: str, **kwargs: object) -> list[Problem]:
        """Write and load an inventory that must be refused; its problems, sorted."""
        with pytest.raises(InventoryError) as caught:
            load_inventory(self.write(text), **kwargs)  # type: ignore[arg-type]
        return caught.value.problems


@pytest.fixture
def fleet(tmp_path: Path) -> FleetDir:
    """An empty fleet directory with repos/app (Dockerfile) ready."""
    fleet = FleetDir(tmp_path)
    fleet.repo("app")
    return fleet


REALISTIC = """
target: "12.4"
catalog:
  feed: feeds/runtime.json
  mode: extend
control_plane:
  api_url: http://127.0.0.1:18764/v1
  wait_timeout: 600
journal: state/journal
notifications:
  webhook: {url: "https://hooks.example.com/services/T0/B0/x", events: [wave_halted]}
runners:
  local: {parallel: 2}
  build-1:
    host: build-1.internal
    user: deploy
    key_file: keys/build
    known_hosts: accept-new
    parallel: 8
defaults:
  vars: {owner: platform, alert: none, tier: unknown}
  runner: local
groups:
  nonprod:
    children: [dev, staging]
    vars: {alert: email}
  dev: {vars: {tier: dev}}
  staging: {vars: {tier: staging}, wave: 2}
  prod: {vars: {tier: prod, alert: pager}, wave: 3}
  eu: {vars: {region: eu}}
  canary:
waves:
  1:
    match: [canary]
    batch: 1
    soak: 10m
  2: {batch: [1, "50%"], max_fail_percentage: 25, soak: 1h30m}
  3:
    parallel: 4
    batch: "20%"
    max_failures: 1
    approval: true
    soak: 2h
    verify: {checks: [{name: import_errors, max_new: 0}]}
repos:
  billing:
    path: repos/billing
    groups: [eu]
    vars: {team: payments}
    deployments:
      - {id: clb0dev, name: billing-dev, workspace_id: ws-np, groups: [dev, canary]}
      - {id: clb0stg, name: billing-staging, workspace_id: ws-np, groups: [staging]}
      - id: clb0prd
        name: billing-prod
        workspace_id: ws-prod
        groups: [prod]
        vars: {alert: sms}
  search:
    path: repos/search
    dockerfile: docker/Dockerfile.astro
    deployments:
      - {id: cls0dev, name: search-dev, workspace_id: ws-np, groups: [dev], wave: 1}
      - {id: cls0prd, name: search-prod, workspace_id: ws-prod, groups: [prod]}
  etl:
    path: /srv/astro/etl
    runner: build-1
    template: {name: standard.Dockerfile.j2, vars: {python: "3.12"}}
    deployments:
      - {id: cle0prd, name: etl-prod, workspace_id: ws-prod, groups: [prod, eu]}
"""


@pytest.fixture
def realistic(tmp_path: Path) -> Inventory:
    """A small but complete fleet: three repos, six Deployments, three waves."""
    fleet = FleetDir(tmp_path)
    fleet.repo("billing")
    fleet.repo("search", dockerfile="docker/Dockerfile.astro")
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "runtime.json").write_text("{}")
    return fleet.load(REALISTIC)
