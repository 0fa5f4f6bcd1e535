"""Repos given by URL: ``repos.X.url`` and the ``workdir:`` where the tool keeps their checkouts.

A repo is either a checkout someone keeps (``path``, today's behaviour) or a repository
the tool clones and keeps itself (``url``), so a wave can run on a CI runner that holds
nothing but the fleet repo::

    workdir: .upgrade/checkouts        # the default: under the journal's directory
    repos:
      dags:
        url: https://github.com/acme/dags.git   # or git@github.com:acme/dags.git, file:///srv/dags.git
        directory: astro                        # the Astro project's directory in it ('' = root)
        token_env: DAGS_TOKEN                   # https only (http to this machine); else git's
                                                # helpers or the SSH agent
        git: {mode: direct}

Credentials never go into the URL: a URL holding a password is refused at load (astro-cli
sends a non-GitHub remote verbatim with every deploy, reference astro-deploy-git.md, and
git prints remotes in its messages). They come from git's own credential helpers, the SSH
agent, or the variable ``token_env`` names, whose value joins the one redaction rule when
the inventory is loaded and reaches git only through a credential helper
(``upgrade.hosts.credential_helper``) that reads it from the environment when git asks.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from upgrade.config.checker import Checker
from upgrade.config.control_plane import is_loopback
from upgrade.config.located import LMap, join

#: The keys of a repo entry this module reads.
URL_KEYS = ("url", "token_env", "directory")
#: Where checkouts live when the inventory names no ``workdir``: under the journal's directory.
DEFAULT_WORKDIR = "checkouts"
_SCHEMES = ("https", "http", "ssh", "file")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# [user@]host:path, git's "scp-like" form: no scheme, and no slash before the first colon.
_SCP = re.compile(r"^(?:[A-Za-z0-9._~-]+@)?[A-Za-z0-9.-]+:(?!//)[^\s]+$")


@dataclass(frozen=True)
class ManagedCheckout:
    """A repo the tool clones from ``url`` into ``checkout`` and keeps itself."""

    url: str  # never holds a credential (refused at load)
    checkout: Path  # the clone's directory: <workdir>/<repo name>
    directory: str = ""  # the Astro project's directory in the repository ('' = its root)
    token_env: str | None = None  # the variable holding an https token, if any
    line: int | None = None  # where ``url`` is written

    @property
    def lock_file(self) -> Path:
        """The lock a run holds while it uses the checkout (beside it, not in it)."""
        return self.checkout.with_name(f".{self.checkout.name}.lock")

    @property
    def project(self) -> Path:
        """The Astro project's directory in the checkout (the repo's ``path``)."""
        return self.checkout / self.directory if self.directory else self.checkout

    def token(self) -> str | None:
        """The token from ``token_env``, when one is named and set."""
        return os.environ.get(self.token_env) or None if self.token_env else None

    def secrets(self) -> tuple[str, ...]:
        """The token, for the redaction rule."""
        token = self.token()
        return (token,) if token else ()


def read_workdir(c: Checker, top: LMap, resolve: Callable[[str], Path],
                 journal_dir: Path) -> Path:
    """``workdir:``: where the tool keeps the checkouts of repos given by URL (relative to
    the inventory's directory); by default ``checkouts`` in the journal's directory."""
    text = c.string(top, "workdir", "")
    if text is None:
        return journal_dir / DEFAULT_WORKDIR
    if not text.strip():
        c.add(top.key_line("workdir"), "workdir", "must not be empty. Name a directory, e.g. "
              "workdir: .upgrade/checkouts, or remove the key.")
        return journal_dir / DEFAULT_WORKDIR
    return resolve(text)


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a repository URL this tool clones, or None."""
    if url != url.strip() or not url or any(ch.isspace() for ch in url):
        return "must not be empty or hold spaces"
    if url.startswith("-"):
        return "must not start with '-'"
    if "://" not in url:
        if _SCP.match(url) and not url.startswith("/"):
            return None
        return ("is neither a URL (https://, ssh://, file://) nor git's host:path form; a "
                "directory on this machine is a 'path', not a 'url'")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"does not parse ({exc})"
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        return f"scheme '{scheme}' is not one of {', '.join(_SCHEMES)}"
    if parts.password is not None:
        return ("holds a password. Never write a credential into the URL: name the variable "
                "holding the token in token_env, or let git's credential helper or the SSH "
                "agent supply it")
    if parts.query or parts.fragment:
        return "must not have a query or a fragment"
    if scheme == "file":
        return None if parts.path.startswith("/") and not parts.netloc else \
            "a file URL needs an absolute path and no host, e.g. file:///srv/git/dags.git"
    if not parts.hostname:
        return f"a {scheme} URL needs a host"
    return None


def read_managed(c: Checker, node: LMap, path: str, name: str, workdir: Path,
                 line: int) -> ManagedCheckout | None:
    """A repo entry's ``url`` (with ``directory`` and ``token_env``) validated, or None when
    it has no ``url``; ``path`` and ``url`` exclude each other (``line``: the repo's)."""
    has_path, has_url = "path" in node, "url" in node
    if has_path == has_url:
        c.add(line, path, "give exactly one of path (a checkout you keep on the runner) "
              "or url (a repository the tool clones and keeps under workdir).")
    for key in ("directory", "token_env"):
        if key in node and not has_url:
            c.add(node.key_line(key), join(path, key), "only applies to a repo given by url. "
                  "Remove it, or give the repo a url instead of a path.")
    if not has_url or has_path:
        return None
    url = c.string(node, "url", path)
    if url is None:
        return None
    url_line = node.key_line("url")
    problem = url_problem(url)
    if problem:
        c.add(url_line, join(path, "url"), f"{problem}.")
        return None
    directory = c.string(node, "directory", path, default="") or ""
    clean = posixpath.normpath(directory) if directory else ""
    if directory and (directory.startswith("/") or clean == ".." or clean.startswith("../")):
        c.add(node.key_line("directory"), join(path, "directory"),
              f"'{directory}' must be a relative path inside the repository, e.g. astro.")
        clean = ""
    token_env = c.string(node, "token_env", path)
    if token_env is not None:
        if not _ENV_NAME.match(token_env):
            c.add(node.key_line("token_env"), join(path, "token_env"),
                  f"'{token_env}' is not an environment variable name. Name the variable that "
                  "holds the token (letters, digits, '_').")
            token_env = None
        elif not _sends_token(url):
            c.add(node.key_line("token_env"), join(path, "token_env"),
                  "a token is only sent over https (http only to this machine). Over ssh the "
                  "SSH agent (or ~/.ssh) supplies the key; remove token_env, or give an https "
                  "url.")
            token_env = None
    return ManagedCheckout(url=url, checkout=workdir / name, directory="" if clean == "." else
                           clean, token_env=token_env, line=url_line)


def _sends_token(url: str) -> bool:
    """True when a token may travel to ``url``: https, or plain http to this machine."""
    parts = urlsplit(url) if "://" in url else None
    if parts is None:
        return False
    scheme = parts.scheme.lower()
    return scheme == "https" or (scheme == "http" and is_loopback(parts.hostname or ""))


def check_managed(c: Checker, managed: ManagedCheckout, path: str, *, mode: str,
                  runner_local: bool, check_env: bool) -> None:
    """What only the repo's layered settings tell: a managed checkout is the tool's own
    and temporary, so the remote must be the truth (``direct`` or ``pull-request``), and it
    lives on this machine; the token's variable must be set when the repos are used."""
    where = join(path, "url")
    if mode == "local":
        c.add(managed.line, where, "a repo the tool clones needs git.mode direct or "
              "pull-request (its checkout is temporary: a commit that stays local would be "
              "lost to the next run). Set git: {mode: direct} on it, a group or defaults.")
    if not runner_local:
        c.add(managed.line, where, "a repo given by url is cloned on this machine; its runner "
              "must be local. Give it a path on its runner instead, or runner: local.")
    if check_env and managed.token_env and not os.environ.get(managed.token_env):
        c.add(managed.line, join(path, "token_env"), f"environment variable "
              f"{managed.token_env} is not set (or empty). Export the token in it (a CI "
              "secret), or remove token_env to use git's credential helper.")
