"""The git metadata ``astro deploy`` attaches to a deploy, collected as astro-cli does.

astro-cli (v1.40+, on by default) reads the project's checkout with plain ``git -C <path>``
commands; any failing step drops all of it. In order: the tree must be clean
(``git diff --quiet HEAD``: tracked changes count, untracked files do not, a repo with no
commits is dirty), ``origin`` must parse as a URL or as SCP-style ``[user@]host:path``
(``.git`` stripped), then the project's path inside the repo (``rev-parse --show-prefix``),
the branch (``HEAD`` when detached), the head commit's sha and author name (read through
a JSON-shaped ``git log`` format, so a ``"`` or ``\\`` in the name drops everything) and
its message's first line, cut at 72 bytes. A remote on exactly ``github.com`` is sent as
provider ``GITHUB`` with ``account``, ``repo`` and ``commitUrl``; any other as ``GENERIC``
with the raw ``remoteUrl``. The author's email is read but never sent.
``deploy.git_metadata: false`` in the project's ``.astro/config.yaml`` (else
``$ASTRO_HOME/.astro/config.yaml``, else ``~/.astro/config.yaml``) turns it off; no
environment variable does. Releases before 1.43.0 (``$ASTRO_SIM_VERSION``) skip any remote
that is not github.com ("Unsupported Git provider", at debug level only), so such deploys
carry no git metadata; before 1.40.0 no deploy carries any.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from fleet_sim.astro_cli.context import GENERIC_GIT, GIT_METADATA, at_least

MAX_MESSAGE_BYTES = 72
DIRTY_NOTE = "Local repository has uncommitted changes, skipping Git metadata retrieval"
# The JSON-shaped line astro-cli's GetHeadCommit reads.
_FORMAT = '--pretty=format:{"sha":"%H","name":"%an","email":"%ae"}'


class _Skip(Exception):
    """One step failed: astro-cli drops all the metadata (and logs it at debug level)."""


def _git(path: str | Path, *args: str) -> str:
    """``git -C path args``, its output trimmed as astro-cli's runGitCommand trims it.

    stdout and stderr share one pipe, as Go's ``CombinedOutput`` makes them share one buffer.
    """
    try:
        done = subprocess.run(["git", "-C", str(path), *args], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, check=False)
    except OSError as exc:
        raise _Skip(str(exc)) from exc
    output = done.stdout.decode("utf-8", errors="replace")
    if done.returncode != 0:
        raise _Skip(output.strip())
    return output.strip()


def is_git_repository(path: str | Path) -> bool:
    """astro-cli's IsGitRepository: ``rev-parse`` succeeds inside a work tree."""
    try:
        _git(path, "rev-parse", "--is-inside-working-tree")
    except _Skip:
        return False
    return True


def has_uncommitted_changes(path: str | Path) -> bool:
    """astro-cli's HasUncommittedChanges: ``git diff --quiet HEAD`` fails inside a repo."""
    if not is_git_repository(path):
        return False
    try:
        _git(path, "diff", "--quiet", "HEAD")
    except _Skip:
        return True
    return False


def parse_remote(url: str) -> tuple[str, str]:
    """(host, path) of a remote as astro-cli's parseGitURL reads it; _Skip when it cannot."""
    if "://" in url:
        parts = urlsplit(url)
        host, path = parts.netloc.rsplit("@", 1)[-1], parts.path
    else:
        pieces = url.split(":")
        if len(pieces) != 2:
            raise _Skip(f"invalid Git URL: {url}")
        user_host = pieces[0].split("@")
        if len(user_host) > 2:
            raise _Skip("invalid user@host format")
        host, path = user_host[-1], pieces[1]
    return host, path.removesuffix(".git")


def enabled(project: str | Path, env: dict[str, str] | None = None) -> bool:
    """``deploy.git_metadata`` (default true): the project's config, else the global one."""
    env = dict(os.environ) if env is None else env
    home = Path(env.get("ASTRO_HOME") or Path.home())
    for config in (Path(project) / ".astro" / "config.yaml", home / ".astro" / "config.yaml"):
        value = _deploy_git_metadata(config)
        if value is not None:
            return str(value).strip().lower() != "false"
    return True


def _deploy_git_metadata(config: Path) -> object:
    """``deploy.git_metadata`` as the file says it, or None (no file, no such key)."""
    try:
        doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    deploy = doc.get("deploy") if isinstance(doc, dict) else None
    return deploy.get("git_metadata") if isinstance(deploy, dict) else None


def collect(path: str | Path, say: Callable[[str], object] = print) -> tuple[dict | None, str]:
    """The deploy's ``git`` object (None when any step fails) and the commit message line."""
    if not at_least(GIT_METADATA):
        return None, ""
    if has_uncommitted_changes(path):
        say(DIRTY_NOTE)
        return None, ""
    try:
        remote = _git(path, "remote", "get-url", "origin")
        host, remote_path = parse_remote(remote)
        prefix = _git(path, "rev-parse", "--show-prefix").removesuffix("/")
        branch = _git(path, "rev-parse", "--abbrev-ref", "HEAD")
        try:
            head = json.loads(_git(path, "log", "-1", _FORMAT))
        except ValueError as exc:
            raise _Skip("unreadable commit") from exc
        first = _git(path, "log", "-1", "--pretty=%B").split("\n")[0]
        message = first.encode()[:MAX_MESSAGE_BYTES].decode(errors="replace")
        meta: dict[str, str] = {"commitSha": str(head["sha"])}
        if host == "github.com":
            account, slash, repo = remote_path.lstrip("/").partition("/")
            if not slash:
                raise _Skip("no account/repo in the GitHub URL")
            meta.update(provider="GITHUB", account=account, repo=repo,
                        commitUrl=f"https://github.com/{account}/{repo}/commit/{meta['commitSha']}")
        elif not at_least(GENERIC_GIT):
            raise _Skip(f"Unsupported Git provider, skipping Git metadata retrieval: {host}")
        else:
            meta.update(provider="GENERIC", remoteUrl=remote)
        if prefix:
            meta["path"] = prefix
        meta.update(branch=branch, authorName=str(head["name"]))
    except (_Skip, KeyError, TypeError):
        return None, ""
    return meta, message
