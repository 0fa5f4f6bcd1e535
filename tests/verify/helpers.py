"""Helpers for the verification tests (importable as tests.verify.helpers)."""

from __future__ import annotations

import threading

from upgrade.config.inventory import Deployment
from upgrade.config.verify import VerifyConfig, merge_verify_config
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.hosts.host import Host
from upgrade.model.catalog import Catalog
from upgrade.model.versions import parse_version
from upgrade.run.verify import verify

TARGET = "13.8.0"  # the catalog knows its Airflow exactly (2.11.2)


def deployment(dep_id: str = "dep-1", workspace_id: str = "ws-1") -> Deployment:
    """An inventory Deployment (only id, name and workspace matter to the checks)."""
    return Deployment(id=dep_id, name=f"{dep_id}-name", workspace_id=workspace_id, repo="repo",
                      wave=1, groups=frozenset(), vars={}, own_vars={})


def config(*checks: object, timeout: float = 20.0, poll: float = 0.05,
           inconclusive: str = "fail") -> VerifyConfig:
    """A merged config as the playbook step would give it."""
    return merge_verify_config(
        {"checks": list(checks), "timeout": timeout, "poll_interval": poll,
         "inconclusive": inconclusive}, None, None)


def check(cp: ControlPlane, catalog: Catalog, cfg: VerifyConfig, *,
          dep: Deployment | None = None, target: str = TARGET, baseline: dict | None = None,
          host: Host | None = None, repo_dir: str | None = None,
          stop: threading.Event | None = None) -> verify.Verdict:
    """run_checks with the test defaults."""
    return verify.run_checks(cp, cfg, dep or deployment(), parse_version(target), catalog,
                             baseline=baseline, host=host, repo_dir=repo_dir,
                             stop=stop or threading.Event())
