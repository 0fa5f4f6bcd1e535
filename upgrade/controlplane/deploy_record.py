"""Astro's deploy records and the git metadata the astro CLI attaches to each deploy.

``GET /organizations/{org}/deployments/{id}/deploys`` pages through ``Deploy`` objects
(``{deploys, limit, offset, totalCount}``); each may carry ``git``: ``provider`` (``GITHUB``
or ``GENERIC``) and ``commitSha``, with ``account``/``repo``/``commitUrl`` for GitHub and
the raw ``remoteUrl`` otherwise, plus ``branch``, ``path`` (the project's directory in
the repo) and ``authorName``. The CLI sends it by default when the checkout is clean and
``origin`` parses. The order of the list is not documented: sort by ``createdAt``.

A repository is identified as ``host/account/repo`` (GitHub) or by its remote URL
normalised the same way (scheme, user, password, port, ``.git`` and trailing ``/``
dropped; host lower-cased), so ``git@gitlab.com:team/x.git`` and
``https://gitlab.com/team/x`` are one repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from upgrade.controlplane.deployment import parse_timestamp
from upgrade.errors import PlatformError


@dataclass(frozen=True)
class DeployGit:
    """Where a deploy's code came from, as the astro CLI reported it."""

    provider: str  # GITHUB | GENERIC
    commit_sha: str
    remote_url: str = ""  # GENERIC only (as the CLI read it; may hold credentials)
    account: str = ""  # GITHUB only
    repo: str = ""  # GITHUB only
    branch: str = ""  # HEAD when the checkout was detached
    path: str = ""  # the Astro project's directory inside the repo ('' at its root)
    author_name: str = ""
    commit_url: str = ""

    @property
    def repository(self) -> str:
        """The repository's identity: ``github.com/acme/dags`` or the normalised remote."""
        if self.provider == "GITHUB":
            return f"github.com/{self.account}/{self.repo}".rstrip("/")
        return normalise_remote(self.remote_url)

    @property
    def clone_url(self) -> str:
        """A URL ``git clone`` accepts, without credentials."""
        if self.provider == "GITHUB":
            return f"https://github.com/{self.account}/{self.repo}.git"
        return strip_credentials(self.remote_url)


@dataclass(frozen=True)
class DeployRecord:
    """One deploy of a Deployment."""

    id: str
    deployment_id: str
    type: str
    status: str  # INITIALIZED | DEPLOYED | FAILED
    created_at: datetime | None
    image_tag: str
    runtime_version: str
    description: str
    git: DeployGit | None


def deploy_record(item: Any) -> DeployRecord:
    """A platform API ``Deploy`` object; PlatformError when it is not the documented shape."""
    if not isinstance(item, Mapping) or not item.get("id") or not item.get("deploymentId"):
        raise PlatformError("Astro's API answered a deploy record without an id.")
    git = item.get("git")
    return DeployRecord(
        id=str(item["id"]), deployment_id=str(item["deploymentId"]),
        type=str(item.get("type") or ""), status=str(item.get("status") or ""),
        created_at=parse_timestamp(item.get("createdAt")),
        image_tag=str(item.get("imageTag") or ""),
        runtime_version=str(item.get("astroRuntimeVersion") or item.get("runtimeVersion") or ""),
        description=str(item.get("description") or ""),
        git=_git(git) if isinstance(git, Mapping) else None,
    )


def _git(doc: Mapping[str, Any]) -> DeployGit | None:
    def text(key: str) -> str:
        value = doc.get(key)
        return value if isinstance(value, str) else ""

    provider, sha = text("provider").upper(), text("commitSha")
    if not sha or provider not in ("GITHUB", "GENERIC"):
        return None
    if provider == "GITHUB" and not (text("account") and text("repo")):
        return None
    if provider == "GENERIC" and not text("remoteUrl"):
        return None
    return DeployGit(provider=provider, commit_sha=sha, remote_url=text("remoteUrl"),
                     account=text("account"), repo=text("repo"), branch=text("branch"),
                     path=text("path").strip("/"), author_name=text("authorName"),
                     commit_url=text("commitUrl"))


def newest_first(records: list[DeployRecord]) -> list[DeployRecord]:
    """The records by ``createdAt``, newest first (undated ones last, in the order given)."""
    return sorted(records, key=lambda r: (r.created_at is not None, r.created_at or datetime.min),
                  reverse=True)


def latest_with_git(records: list[DeployRecord]) -> DeployRecord | None:
    """The newest record (by ``createdAt``) that carries git metadata."""
    dated = newest_first([r for r in records if r.git is not None])
    return dated[0] if dated else None


def normalise_remote(url: str) -> str:
    """``host/path`` of a git remote: URL or SCP form, credentials, port and ``.git`` dropped."""
    text = url.strip()
    if "://" in text:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
        path = parts.path
    elif ":" in text and not text.startswith("/"):
        user_host, _, path = text.partition(":")
        host = user_host.rsplit("@", 1)[-1].lower()
    else:
        host, path = "", text
    path = path.strip("/").removesuffix(".git").rstrip("/")
    return f"{host}/{path}" if host else "/" + path


def remote_problem(url: str) -> str | None:
    """Why the astro CLI would send no git metadata for this ``origin`` (its
    ``parseGitURL``: a URL with ``://``, else SCP form ``[user@]host:path`` split on ``:``
    into exactly two parts; a github.com path needs ``account/repo``), or None."""
    text = url.strip()
    shown = strip_credentials(text)
    if "://" in text:
        parts = urlsplit(text)
        host, path = (parts.hostname or "").lower(), parts.path
        if not host:
            return f"origin '{shown}' names no host"
    else:
        pieces = text.split(":")
        if len(pieces) != 2 or not pieces[0]:
            return (f"origin '{shown}' is not a URL (a local path, or not host:path); the "
                    "astro CLI sends git metadata only for a URL or host:path origin")
        host, path = pieces[0].rsplit("@", 1)[-1].lower(), pieces[1]
    if host == "github.com" and "/" not in path.strip("/"):
        return f"origin '{shown}' names no account/repo on github.com"
    return None


def strip_credentials(url: str) -> str:
    """The URL without a user's password (a GENERIC remoteUrl is sent as typed)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()
