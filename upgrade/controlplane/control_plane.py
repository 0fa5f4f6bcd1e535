"""The Astro control plane as the rest of the tool sees it: deploy, read status, verify.

Astro and a stand-in for it differ only in ``ControlPlaneConfig`` (which platform API,
which ``astro`` binary, which extra environment, which URL scheme for the Airflow API); the
code path is the same: spawn the CLI to deploy, read status from Astro's platform API over
HTTP (or through ``astro deployment inspect`` when no API token is set), call the Airflow
API. Verification's status looks are batched: one list call per workspace per tick
(``StatusBoard``).

Failures are the typed errors of ``upgrade.errors`` (AstroError, AirflowAPIError and
their subclasses).
"""

from __future__ import annotations

import builtins
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from upgrade.config.control_plane import STATUS_VIA, ControlPlaneConfig
from upgrade.controlplane.airflow import (
    DEFAULT_TOKEN_ENV,
    AirflowAPI,
    AirflowEndpoint,
    AirflowVersion,
    DagImportError,
    Health,
)
from upgrade.controlplane.astro import AstroCLI
from upgrade.controlplane.deployment import DeploymentInfo, DeploymentSummary, DeployOutcome
from upgrade.controlplane.http import retry_policy
from upgrade.controlplane.platform import TOKEN_ENV, PlatformReader
from upgrade.controlplane.status_board import Reading, StatusBoard
from upgrade.errors import AirflowAPIError, InputError
from upgrade.hosts.host import Host
from upgrade.model.redact import Redactor


class ControlPlane:
    """Deploy through ``astro``, read status from Astro's API (or ``astro``), verify via Airflow.

    Deploys always go through the real CLI: it builds the image, pushes it and finalises
    the deploy, which no read-only API call can stand in for.
    """

    def __init__(self, config: ControlPlaneConfig | None = None):
        """Connect as ``config`` says (nothing is contacted until the first call)."""
        self.config = config = config or ControlPlaneConfig()
        if config.status_via not in STATUS_VIA:
            raise InputError(f"control_plane.status_via must be one of {', '.join(STATUS_VIA)}, "
                             f"got {config.status_via!r}.")
        self._platform = PlatformReader.for_config(config) if config.status_via != "cli" else None
        self._boards: dict[str, StatusBoard] = {}
        self._boards_lock = threading.Lock()
        if config.status_via == "api" and self._platform is None:
            raise InputError(
                f"control_plane.status_via is 'api', but ${TOKEN_ENV} is not set (or Astro's "
                "API would be reached without https). Set the token, or use status_via: auto "
                "to read status through `astro deployment inspect` instead."
            )
        self.astro = AstroCLI(
            config.astro_bin,
            extra_env=config.extra_env,
            deploy_timeout=config.deploy_timeout,
            inspect_timeout=config.inspect_timeout,
            kill_grace=config.kill_grace,
            secret_names=(config.token_env, DEFAULT_TOKEN_ENV),
        )
        self.airflow = AirflowAPI(
            token_env=config.token_env,
            env={**os.environ, **config.extra_env},
            timeout=config.http_timeout,
            connect_timeout=config.http_connect_timeout,
            retry=retry_policy(config),
        )

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release pooled HTTP connections."""
        self.airflow.close()
        with self._boards_lock:
            for board in self._boards.values():
                board.close()
        if self._platform is not None:
            self._platform.close()

    @property
    def platform(self) -> PlatformReader | None:
        """The platform API reader status reads use; None when they go through the CLI."""
        return self._platform

    @property
    def redact(self) -> Redactor:
        """Redacts every token this control plane can see; use it on anything you print."""
        return self.astro.redactor()

    def deploy(
        self,
        deployment_id: str,
        workspace_id: str,
        repo_dir: str | Path,
        description: str,
        *,
        host: Host | None = None,
        timeout: float | None = None,
    ) -> DeployOutcome:
        """Deploy the project in ``repo_dir`` to one Deployment (raises the typed failure).

        ``host`` is the repo's runner (``HostPool.host_for``); without it, this machine.
        ``timeout`` applies when stricter than the configured ``deploy_timeout``.
        """
        return self.astro.deploy(
            deployment_id, workspace_id, repo_dir, description, host=host, timeout=timeout
        )

    def inspect(self, deployment_id: str, workspace_id: str) -> DeploymentInfo:
        """What ``astro deployment inspect`` reports for one Deployment now (a CLI process)."""
        return self.astro.inspect(deployment_id, workspace_id)

    def status(self, deployment_id: str, workspace_id: str) -> DeploymentInfo:
        """What Astro reports for one Deployment now: from the platform API when a token
        allows it (``status_via``), else from ``inspect``. Same fields, same typed errors."""
        if self._platform is not None:
            return self._platform.deployment(deployment_id, workspace_id)
        return self.inspect(deployment_id, workspace_id)

    def read_status(self, deployment_id: str, workspace_id: str, *, newer_than: datetime,
                    poll: float) -> Reading:
        """What Astro reports for one Deployment, as a poll reads it: Astro's state after
        ``newer_than`` (the deploy's end, then the previous reading's ``as_of``).

        Through the platform API, the looks of one workspace share a list call made at
        most every ``min(poll, status_tick)`` s (``StatusBoard``); through the CLI, one
        ``inspect`` per look. Same fields, same typed errors as ``status``.
        """
        if self._platform is None:
            as_of = datetime.now(UTC)
            return Reading(self.inspect(deployment_id, workspace_id), as_of)
        with self._boards_lock:
            board = self._boards.get(workspace_id)
            if board is None:
                board = self._boards[workspace_id] = StatusBoard(self._platform, workspace_id)
        return board.read(deployment_id, newer_than=newer_than,
                          tick=min(poll, self.config.status_tick))

    def list(self, workspace_id: str) -> builtins.list[DeploymentSummary]:
        """The Deployments of one workspace (no status; use ``status`` for that)."""
        return self.astro.list(workspace_id)

    def list_all(self, workspace_id: str) -> builtins.list[DeploymentSummary]:
        """The Deployments of every workspace the token can see (the CLI needs one
        workspace to start from, even for ``--all``)."""
        return self.astro.list_all(workspace_id)

    def airflow_endpoint(self, info: DeploymentInfo) -> AirflowEndpoint:
        """The Airflow API of ``info``, with the configured scheme for schemeless URLs; its
        version asked of the server (``AirflowAPI.probe``), not read from the URL."""
        if not info.airflow_api_url:
            raise AirflowAPIError(
                f"Deployment {info.id} has no airflow_api_url in Astro's answer; it cannot "
                "be verified through the Airflow API.",
                deployment_id=info.id,
            )
        return self.airflow.probe(info.airflow_api_url, deployment_id=info.id,
                                  scheme=self.config.airflow_scheme, line=info.airflow_version)

    def airflow_health(self, info: DeploymentInfo) -> Health:
        """The Deployment's Airflow health (scheduler, triggerer, DAG processor, database)."""
        return self.airflow.health(self.airflow_endpoint(info))

    def airflow_version(self, info: DeploymentInfo) -> AirflowVersion:
        """The Airflow version the Deployment's webserver/API server reports."""
        return self.airflow.version(self.airflow_endpoint(info))

    def import_errors(self, info: DeploymentInfo) -> builtins.list[DagImportError]:
        """Every DAG import error the Deployment reports."""
        return self.airflow.import_errors(self.airflow_endpoint(info))
