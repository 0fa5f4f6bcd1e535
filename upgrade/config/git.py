"""The ``git:`` setting: how a repo's change reaches its remote and how its Deployments
get the new code.

It may be written under ``defaults``, on a group and on a repo; a later layer replaces the
keys it sets (defaults → the repo's groups, shallower first → the repo). Modes:

* ``local`` (the default): commit on a local branch and deploy the working tree; only for
  repos without a shared remote. ``plan`` warns about it.
* ``direct``: commit on the remote's default branch and push it before deploying.
* ``pull-request``: push a branch, open (or reuse) a pull/merge request through the
  ``forge`` (``github`` or ``gitlab``) and wait until it is merged (by a person, or by the
  tool when ``auto_merge`` and the required checks are green); then ``deploy: cli`` deploys
  the merge commit, ``deploy: ci`` waits until Astro reports it deployed by CI.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from upgrade.config.checker import Checker, http_url_problem
from upgrade.config.located import LMap, join

Mode = Literal["local", "direct", "pull-request"]
MODES: tuple[Mode, ...] = ("local", "direct", "pull-request")
FORGES = ("github", "gitlab")
DEPLOY_HOW = ("cli", "ci")
GIT_KEYS = ("mode", "remote", "default_branch", "forge", "forge_url", "project", "token_env",
            "auto_merge", "deploy", "ci_timeout", "merge_timeout", "poll_interval")

DEFAULT_API = {"github": "https://api.github.com", "gitlab": "https://gitlab.com/api/v4"}
DEFAULT_TOKEN_ENV = {"github": "GITHUB_TOKEN", "gitlab": "GITLAB_TOKEN"}
# CI builds and deploys an image in minutes; half an hour means it is not coming.
DEFAULT_CI_TIMEOUT = 1800
# A person reviews within the hour or the wave should not keep waiting.
DEFAULT_MERGE_TIMEOUT = 3600
DEFAULT_POLL_INTERVAL = 10.0


@dataclass(frozen=True)
class GitSettings:
    """One repo's ``git:`` setting after layering."""

    mode: Mode = "local"
    remote: str = "origin"
    default_branch: str | None = None  # None: what the remote's HEAD names
    forge: str | None = None
    forge_url: str | None = None
    project: str | None = None  # owner/name on the forge; None: from the remote's URL
    token_env: str | None = None
    auto_merge: bool = False
    deploy: str = "cli"
    ci_timeout: int = DEFAULT_CI_TIMEOUT
    merge_timeout: int = DEFAULT_MERGE_TIMEOUT
    poll_interval: float = DEFAULT_POLL_INTERVAL

    @property
    def shared(self) -> bool:
        """True when the remote's default branch is the truth (direct, pull-request)."""
        return self.mode != "local"

    @property
    def api_url(self) -> str:
        """The forge's API base URL."""
        assert self.forge is not None
        return (self.forge_url or DEFAULT_API[self.forge]).rstrip("/")

    @property
    def token_variable(self) -> str:
        """The environment variable holding the forge's token."""
        assert self.forge is not None
        return self.token_env or DEFAULT_TOKEN_ENV[self.forge]


def project_from_remote(url: str) -> str | None:
    """``owner/name`` from a remote URL (URL or SCP form), ``.git`` dropped; None for a path."""
    text = url.strip()
    if "://" in text:
        try:
            path = urlsplit(text).path
        except ValueError:  # a remote URL git itself could not use either
            return None
    elif ":" in text and not text.startswith("/"):
        path = text.partition(":")[2]
    else:
        return None
    path = path.strip("/").removesuffix(".git")
    return path if "/" in path else None


def read_git_layer(c: Checker, m: LMap, path: str) -> tuple[dict[str, Any], int] | None:
    """The keys one layer's ``git:`` mapping sets (validated), and its line; None if absent."""
    node = c.mapping(m, "git", path)
    if node is None:
        return None
    full = join(path, "git")
    c.keys(node, GIT_KEYS, full)
    found: dict[str, Any] = {}
    for key, choices in (("mode", MODES), ("forge", FORGES), ("deploy", DEPLOY_HOW)):
        value = c.string(node, key, full)
        if value is None:
            continue
        if value not in choices:
            c.add(node.key_line(key), join(full, key),
                  f"must be one of {', '.join(choices)}, got '{value}'.")
            continue
        found[key] = value
    for key in ("remote", "default_branch", "forge_url", "project", "token_env"):
        value = c.string(node, key, full)
        if value is not None:
            found[key] = value
    problem = http_url_problem(found["forge_url"]) if "forge_url" in found else None
    if problem:
        c.add(node.key_line("forge_url"), join(full, "forge_url"),
              f"must be an http(s) URL with a host, e.g. https://api.github.com; {problem}.")
        del found["forge_url"]
    if "auto_merge" in node:
        found["auto_merge"] = c.boolean(node, "auto_merge", full, default=False)
    for key in ("ci_timeout", "merge_timeout"):
        if key in node:
            seconds = c.duration(node, key, full, default=-1)
            if seconds == 0:
                c.add(node.key_line(key), join(full, key), "must be longer than 0s, e.g. 30m.")
            elif seconds > 0:
                found[key] = seconds
    if "poll_interval" in node:
        value = c.number(node, "poll_interval", full, minimum=0.01, maximum=3600)
        if value is not None:
            found["poll_interval"] = float(value)
    return found, m.key_line("git")


def merge_git(layers: Iterable[tuple[dict[str, Any], int]]) -> GitSettings:
    """The settings the layers give, lowest first (each replaces the keys it sets)."""
    values: dict[str, Any] = {}
    for found, _ in layers:
        values.update(found)
    return GitSettings(**values)


def check_git(c: Checker, settings: GitSettings, line: int | None, path: str) -> None:
    """What no single layer can check: a pull request needs a forge."""
    where = join(path, "git")
    if settings.mode != "pull-request":
        return
    if settings.forge is None:
        c.add(line, join(where, "forge"), "mode 'pull-request' needs a forge. Add forge: github "
              "or forge: gitlab (under this repo's git, a group's or defaults').")


def git_layers(defaults: tuple[dict[str, Any], int] | None,
               groups: Iterable[tuple[dict[str, Any], int] | None],
               repo: tuple[dict[str, Any], int] | None) -> list[tuple[dict[str, Any], int]]:
    """The layers that exist, lowest first."""
    return [layer for layer in (defaults, *groups, repo) if layer is not None]

