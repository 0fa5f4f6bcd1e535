"""What Astro says about a Deployment: ``DeploymentInfo`` (one, with its status and URLs),
``DeploymentSummary`` (a row of a workspace's list) and ``DeployOutcome`` (a deploy Astro
accepted). The CLI and the platform API are read into the same types."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class DeployOutcome:
    """A deploy Astro accepted: the new image tag and where to look at it."""

    deployment_id: str
    workspace_id: str
    image_tag: str | None
    dag_bundle_version: str | None
    deployment_url: str | None
    airflow_ui_url: str | None
    warnings: tuple[str, ...]
    duration: float
    output: str = field(repr=False, default="")


@dataclass(frozen=True)
class DeploymentInfo:
    """One Deployment as ``astro deployment inspect`` reports it."""

    id: str
    name: str
    workspace_id: str
    runtime_version: str
    airflow_version: str
    status: str
    image_tag: str
    airflow_api_url: str
    webserver_url: str
    deployment_url: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    description: str = ""
    workspace_name: str = ""
    deployment_type: str = ""
    executor: str = ""
    cluster_id: str = ""
    dag_deploy_enabled: bool = False
    ci_cd_enforcement: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_healthy(self) -> bool:
        """HEALTHY or HIBERNATING, the two states ``astro deploy --wait`` accepts."""
        return self.status in HEALTHY_STATES


@dataclass(frozen=True)
class DeploymentSummary:
    """One row of ``astro deployment list --json`` (which has no status and no URLs)."""

    id: str
    name: str
    runtime_version: str
    airflow_version: str
    workspace_id: str | None = None
    workspace_name: str = ""
    namespace: str = ""
    cluster_name: str = ""
    cloud_provider: str = ""
    region: str = ""
    type: str = ""
    dag_deploy_enabled: bool = False
    cicd_enforced: bool = False
    remote_execution_enabled: bool = False


STATUSES = ("CREATING", "DEPLOYING", "HEALTHY", "HIBERNATING", "UNHEALTHY", "UNKNOWN")
HEALTHY_STATES = frozenset({"HEALTHY", "HIBERNATING"})

def parse_timestamp(value: Any) -> datetime | None:
    """An aware datetime from RFC 3339 text (any fraction length) or a datetime; else None."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip().replace(" ", "T", 1)
    # Go prints up to 9 fractional digits; Python takes at most 6.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    text = re.sub(r"[Zz]$", "+00:00", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
