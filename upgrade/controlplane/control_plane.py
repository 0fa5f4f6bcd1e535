"""The Astro control plane as the rest of the tool sees it: deploy, read status, verify.

Production and the simulator differ only in ``ControlPlaneConfig`` (which ``astro``
binary, which extra environment, which URL scheme for the Airflow API); the code path is
the same: spawn the CLI to deploy, read status from Astro's platform API over HTTP (or
through ``astro deployment inspect`` when no API token is set), call the Airflow API.

Failures are the typed errors of ``upgrade.astro`` and ``upgrade.airflow``; this module
adds none of its own except ``DeploymentNotHealthy`` (from ``upgrade.astro``) for a
Deployment that never settles.
"""

from __future__ import annotations

import builtins
import logging
import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from upgrade.controlplane.airflow import (
    DEFAULT_TOKEN_ENV,
    AirflowAPI,
    AirflowEndpoint,
    AirflowVersion,
    DagImportError,
    Health,
    RetryPolicy,
)
from upgrade.controlplane.astro import AstroCLI, DeploymentInfo, DeploymentSummary, DeployOutcome
from upgrade.controlplane.platform import TOKEN_ENV, PlatformReader
from upgrade.errors import (
    AirflowAPIError,
    AstroTimeout,
    DeploymentNotHealthy,
    InputError,
    Problem,
    ProblemsError,
)
from upgrade.hosts.host import Host
from upgrade.model.redact import Redactor

log = logging.getLogger(__name__)

SCHEMES = ("https", "http")
STATUS_VIA = ("auto", "api", "cli")


@dataclass(frozen=True)
class ControlPlaneConfig:
    """How to reach the control plane. Every key can be set in ``control_plane:``."""

    astro_bin: str = "astro"  # the astro CLI (or astro-sim), a path or a name on $PATH
    extra_env: Mapping[str, str] = field(default_factory=dict)  # added to the child's env
    deploy_timeout: float = 1800.0  # s for one `astro deploy` (it builds an image)
    inspect_timeout: float = 60.0  # s for one `astro deployment inspect|list`
    kill_grace: float = 5.0  # s between SIGTERM and SIGKILL of a timed-out command
    airflow_scheme: str = "https"  # prepended to Astro's schemeless airflow_api_url
    token_env: str = DEFAULT_TOKEN_ENV  # env var holding the bearer token for Airflow
    http_timeout: float = 10.0  # s per Airflow API request (read)
    http_connect_timeout: float = 5.0  # s to open a connection
    http_retries: int = 3  # retries after the first try, on 5xx / connection / time-out
    http_backoff: float = 0.5  # s before the first retry; doubles each time
    http_backoff_max: float = 8.0  # s, cap of one back-off
    http_total_timeout: float = 60.0  # s, all tries and waits of one call together
    wait_timeout: float = 900.0  # s for a Deployment to become HEALTHY after a deploy
    poll_interval: float = 10.0  # s between inspects while waiting
    # How status is read: auto (the platform API when ASTRO_API_TOKEN is set, else the
    # CLI), api (refused without a token), cli (always `astro deployment inspect`).
    status_via: str = "auto"

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any] | None,
        *,
        source: str = "inventory.yaml",
        section: str = "control_plane",
        lines: Mapping[str, int] | None = None,
    ) -> ControlPlaneConfig:
        """Validate a ``control_plane:`` mapping; every problem is reported at once.

        ``simulator: <state dir or URL>`` starts from ``simulator(...)``; other keys override.
        """
        lines = lines or {}
        problems: list[Problem] = []

        def bad(key: str, message: str) -> None:
            problems.append(Problem(source, lines.get(key), f"{section}.{key}", message))

        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ProblemsError(
                [Problem(source, None, section, "must be a mapping of settings")]
            )
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key == "simulator":
                if not isinstance(value, str | Path) or not str(value):
                    bad(key, "must be the simulator's state directory or its http:// URL")
                continue
            if key not in known:
                bad(key, f"unknown key; valid keys: simulator, {', '.join(sorted(known))}")
                continue
            default = known[key].default
            if key == "extra_env":
                if not isinstance(value, Mapping) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in value.items()
                ):
                    bad(key, "must map variable names to string values (quote numbers)")
                    continue
                values[key] = dict(value)
            elif type(default) is int:
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    bad(key, f"must be a whole number of 0 or more, got {value!r}")
                    continue
                values[key] = value
            elif isinstance(default, float):
                if (
                    not isinstance(value, int | float)
                    or isinstance(value, bool)
                    or not math.isfinite(value)
                    or value <= 0
                ):
                    bad(key, f"must be a positive number of seconds, got {value!r}")
                    continue
                values[key] = float(value)
            else:
                if not isinstance(value, str) or not value.strip():
                    bad(key, f"must be a non-empty string, got {value!r}")
                    continue
                if key == "airflow_scheme" and value not in SCHEMES:
                    bad(key, f"must be one of {', '.join(SCHEMES)}, got {value!r}")
                    continue
                if key == "status_via" and value not in STATUS_VIA:
                    bad(key, f"must be one of {', '.join(STATUS_VIA)}, got {value!r}")
                    continue
                values[key] = value
        if problems:
            raise ProblemsError(problems)
        base = cls.simulator(data["simulator"]) if data.get("simulator") else cls()
        if "extra_env" in values:
            values["extra_env"] = {**base.extra_env, **values["extra_env"]}
        return replace(base, **values)

    @classmethod
    def simulator(cls, target: str | Path, **overrides: Any) -> ControlPlaneConfig:
        """The config that drives the simulator at ``target`` (its state dir or URL)."""
        from upgrade.sim import lifecycle  # the simulator is optional in production installs

        text = str(target)
        if text.startswith(("http://", "https://")):
            url = text
        else:
            running = lifecycle.status(Path(text))
            if running is None:
                raise InputError(
                    f"no Astro simulator is running for state directory {text}; start one "
                    "(see docs/simulator.md) or give its http:// URL."
                )
            url = running.url
        settings: dict[str, Any] = {
            "astro_bin": simulator_bin(),
            "extra_env": dict(lifecycle.sim_env(url)),
            "airflow_scheme": "http",
        }
        settings.update(overrides)
        return cls(**settings)

    def retry_policy(self) -> RetryPolicy:
        """The Airflow API retry policy these settings describe."""
        return RetryPolicy(
            attempts=self.http_retries + 1,
            backoff=self.http_backoff,
            backoff_max=self.http_backoff_max,
            total=self.http_total_timeout,
        )


def simulator_bin() -> str:
    """``astro-sim`` installed beside this interpreter (the venv's bin), else on $PATH."""
    # Not resolved: a venv's python is a symlink to the base interpreter.
    beside = Path(sys.executable).parent / "astro-sim"
    return str(beside) if beside.exists() else "astro-sim"


class ControlPlane:
    """Deploy through ``astro``, read status from Astro's API (or ``astro``), verify via Airflow.

    Deploys always go through the real CLI: it builds the image, pushes it and finalises
    the deploy, which no read-only API call can stand in for.
    """

    def __init__(self, config: ControlPlaneConfig | None = None):
        self.config = config = config or ControlPlaneConfig()
        if config.status_via not in STATUS_VIA:
            raise InputError(f"control_plane.status_via must be one of {', '.join(STATUS_VIA)}, "
                             f"got {config.status_via!r}.")
        self._platform = PlatformReader.for_config(config) if config.status_via != "cli" else None
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
            retry=config.retry_policy(),
        )

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release pooled HTTP connections."""
        self.airflow.close()
        if self._platform is not None:
            self._platform.close()

    @property
    def platform(self) -> PlatformReader | None:
        """The platform API reader status reads use; None when they go through the CLI."""
        return self._platform

    @property
    def status_source(self) -> str:
        """``api`` or ``cli``: how ``status`` reads, for notes and reports."""
        return "api" if self._platform is not None else "cli"

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

    def list(self, workspace_id: str) -> builtins.list[DeploymentSummary]:
        """The Deployments of one workspace (no status; use ``status`` for that)."""
        return self.astro.list(workspace_id)

    def list_all(self) -> builtins.list[DeploymentSummary]:
        """The Deployments of every workspace the token can see."""
        return self.astro.list_all()

    def wait_healthy(
        self,
        deployment_id: str,
        workspace_id: str,
        *,
        image_tag: str | None = None,
        timeout: float | None = None,
        poll_interval: float | None = None,
    ) -> DeploymentInfo:
        """Inspect until HEALTHY (and running ``image_tag``, if given); else DeploymentNotHealthy.

        UNHEALTHY does not end the wait early: like ``astro deploy --wait``, a rollout may
        pass through it. (Still ``inspect``, not ``status``: tests/ssh checks that these
        polls run on this machine through the CLI; ``status`` would serve as well.)
        """
        timeout = self.config.wait_timeout if timeout is None else timeout
        interval = self.config.poll_interval if poll_interval is None else poll_interval
        deadline = time.monotonic() + timeout
        last: DeploymentInfo | None = None
        while True:
            try:
                last = self.inspect(deployment_id, workspace_id)
            except AstroTimeout as exc:
                log.info("inspect %s timed out while waiting: %s", deployment_id, exc)
            else:
                if last.is_healthy and (image_tag is None or last.image_tag == image_tag):
                    return last
            if time.monotonic() + interval > deadline:
                break
            time.sleep(interval)
        if last is None:
            state = "no inspect succeeded"
        else:
            state = f"last seen {last.status}, image {last.image_tag or 'unknown'}"
        want = f" with image {image_tag}" if image_tag else ""
        raise DeploymentNotHealthy(
            f"Deployment {deployment_id} did not become HEALTHY{want} within {timeout:g}s "
            f"({state}).",
            last=last, deployment_id=deployment_id,
        )

    def airflow_endpoint(self, info: DeploymentInfo) -> AirflowEndpoint:
        """The Airflow API of ``info``, with the configured scheme for schemeless URLs."""
        if not info.airflow_api_url:
            raise AirflowAPIError(
                f"Deployment {info.id} has no airflow_api_url in Astro's answer; it cannot "
                "be verified through the Airflow API.",
                deployment_id=info.id,
            )
        return AirflowEndpoint.from_api_url(
            info.airflow_api_url, deployment_id=info.id, scheme=self.config.airflow_scheme
        )

    def airflow_health(self, info: DeploymentInfo) -> Health:
        """The Deployment's Airflow health (scheduler, triggerer, DAG processor, database)."""
        return self.airflow.health(self.airflow_endpoint(info))

    def airflow_version(self, info: DeploymentInfo) -> AirflowVersion:
        """The Airflow version the Deployment's webserver/API server reports."""
        return self.airflow.version(self.airflow_endpoint(info))

    def import_errors(self, info: DeploymentInfo) -> builtins.list[DagImportError]:
        """Every DAG import error the Deployment reports."""
        return self.airflow.import_errors(self.airflow_endpoint(info))
