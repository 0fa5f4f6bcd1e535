"""Which adapter serves a repo's ``git.forge``."""

from __future__ import annotations

from collections.abc import Mapping

from upgrade.config.git import GitSettings
from upgrade.controlplane.forge import Forge
from upgrade.controlplane.forge_github import GitHub
from upgrade.controlplane.forge_gitlab import GitLab
from upgrade.controlplane.http import RetryPolicy

KINDS: Mapping[str, type[Forge]] = {"github": GitHub, "gitlab": GitLab}


def forge_for(settings: GitSettings, project: str, *, env: Mapping[str, str] | None = None,
              policy: RetryPolicy | None = None) -> Forge:
    """The adapter for ``settings.forge`` on ``project`` (ForgeAuthError without a token)."""
    assert settings.forge in KINDS
    return KINDS[settings.forge](settings, project, env=env, policy=policy)
