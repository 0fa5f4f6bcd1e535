"""Which adapter serves a repo's ``git.forge``."""

from __future__ import annotations

from collections.abc import Mapping

from upgrade.config.git import GitSettings, project_from_remote
from upgrade.config.inventory import Repo
from upgrade.controlplane.forge import Forge
from upgrade.controlplane.forge_github import GitHub
from upgrade.controlplane.forge_gitlab import GitLab
from upgrade.controlplane.http import RetryPolicy
from upgrade.errors import RepoError
from upgrade.hosts import git
from upgrade.hosts.host import Host

KINDS: Mapping[str, type[Forge]] = {"github": GitHub, "gitlab": GitLab}


def forge_for(settings: GitSettings, project: str, *, env: Mapping[str, str] | None = None,
              policy: RetryPolicy | None = None) -> Forge:
    """The adapter for ``settings.forge`` on ``project`` (ForgeAuthError without a token)."""
    assert settings.forge in KINDS
    return KINDS[settings.forge](settings, project, env=env, policy=policy)


def project_of(repo: Repo, host: Host) -> str:
    """``owner/name`` on the forge: ``git.project``, else from the remote's URL (read on the
    repo's runner); RepoError when neither says."""
    settings = repo.git
    if settings.project:
        return settings.project
    url = git.remote_url(host, str(repo.path), settings.remote) or ""
    found = project_from_remote(url)
    if not found:
        raise RepoError(f"{repo.name}: cannot tell the forge's project from remote "
                        f"{settings.remote!r}. Set git.project: OWNER/NAME in the inventory.")
    return found
