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
environment variable does. The same values are read in five git runs rather than
astro-cli's seven (its two ``rev-parse`` and its two ``log`` runs each become one): each
git run costs a deploy about 2.5 ms of CPU.

Stdlib only, and only its cheapest parts: every ``astro-sim deploy`` imports this, and
``subprocess``, ``pathlib``, ``re``, ``json`` and ``urllib.parse`` would cost each deploy
about 25 ms of CPU to import (benchmarks/sim_cli.py); git runs through ``os.posix_spawnp``.
"""

from __future__ import annotations

import os

from upgrade.sim import jsoncodec

TYPE_CHECKING = False  # typing's own import would cost each deploy more than it saves
if TYPE_CHECKING:
    from collections.abc import Callable

AnyPath = str | os.PathLike[str]

MAX_MESSAGE_BYTES = 72
DIRTY_NOTE = "Local repository has uncommitted changes, skipping Git metadata retrieval"
# The JSON-shaped line astro-cli reads, then (after a NUL, which no name can hold) the message.
_FORMAT = '--pretty=format:{"sha":"%H","name":"%an","email":"%ae"}%x00%B'


class _Skip(Exception):
    """One step failed: astro-cli drops all the metadata (and logs it at debug level)."""


def _git(path: AnyPath, *args: str, trim: bool = True) -> str:
    """``git -C path args``, its output trimmed as astro-cli's runGitCommand trims it.

    stdout and stderr share one pipe, as Go's ``CombinedOutput`` makes them share one buffer.
    """
    read_end, write_end = os.pipe()
    try:
        try:
            pid = os.posix_spawnp("git", ["git", "-C", os.fspath(path), *args], os.environ,
                                  file_actions=[(os.POSIX_SPAWN_DUP2, write_end, 1),
                                                (os.POSIX_SPAWN_DUP2, write_end, 2)])
        except OSError as exc:
            raise _Skip(str(exc)) from exc
        finally:
            os.close(write_end)
        chunks = []
        while chunk := os.read(read_end, 65536):
            chunks.append(chunk)
    finally:
        os.close(read_end)
    _, status = os.waitpid(pid, 0)
    output = b"".join(chunks).decode("utf-8", errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise _Skip(output.strip())
    return output.strip() if trim else output


def is_git_repository(path: AnyPath) -> bool:
    """astro-cli's IsGitRepository: ``rev-parse`` succeeds inside a work tree."""
    try:
        _git(path, "rev-parse", "--is-inside-working-tree")
    except _Skip:
        return False
    return True


def has_uncommitted_changes(path: AnyPath) -> bool:
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
        netloc, path = _netloc_and_path(url)
        host = netloc.rsplit("@", 1)[-1]
    else:
        pieces = url.split(":")
        if len(pieces) != 2:
            raise _Skip(f"invalid Git URL: {url}")
        user_host = pieces[0].split("@")
        if len(user_host) > 2:
            raise _Skip("invalid user@host format")
        host, path = user_host[-1], pieces[1]
    return host, path.removesuffix(".git")


_C0_OR_SPACE = "".join(map(chr, range(0x21)))
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")


def _netloc_and_path(url: str) -> tuple[str, str]:
    """``urllib.parse.urlsplit(url)``'s netloc and path."""
    url = url.lstrip(_C0_OR_SPACE).replace("\t", "").replace("\r", "").replace("\n", "")
    rest = url
    colon = url.find(":")
    if colon > 0 and url[0].isascii() and url[0].isalpha() and _SCHEME_CHARS.issuperset(
            url[:colon]):
        rest = url[colon + 1:]
    netloc = ""
    if rest[:2] == "//":
        rest = rest[2:]
        end = min([i for i in (rest.find(c) for c in "/?#") if i >= 0], default=len(rest))
        netloc, rest = rest[:end], rest[end:]
    end = min([i for i in (rest.find(c) for c in "?#") if i >= 0], default=len(rest))
    return netloc, rest[:end]


def enabled(project: AnyPath, env: dict[str, str] | None = None) -> bool:
    """``deploy.git_metadata`` (default true): the project's config, else the global one."""
    env = dict(os.environ) if env is None else env
    home = env.get("ASTRO_HOME") or os.path.expanduser("~")
    for config in (os.path.join(project, ".astro", "config.yaml"),
                   os.path.join(home, ".astro", "config.yaml")):
        value = _deploy_git_metadata(config)
        if value is not None:
            return value.strip("'\"").lower() != "false"
    return True


def _deploy_git_metadata(config: str) -> str | None:
    """``deploy.git_metadata``'s raw value: the first non-blank token after the key, on an
    indented line of the top-level ``deploy:`` block (indented or blank lines)."""
    try:
        with open(config, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
    except OSError:
        return None
    blank = " \t"
    for i, line in enumerate(lines):
        if not (line.startswith("deploy:") and i + 1 < len(lines)
                and not line[len("deploy:"):].strip(blank)):
            continue
        for inner in lines[i + 1:]:
            if inner.strip(blank) and inner[:1] not in blank:
                break  # the block ends at the next line that starts in column 0
            key = inner.lstrip(blank)
            if key != inner and key.startswith("git_metadata:"):
                value = key[len("git_metadata:"):].lstrip(blank).split()
                if value:
                    return value[0]
        return None
    return None


def collect(path: AnyPath, say: Callable[[str], object] = print) -> tuple[dict | None, str]:
    """The deploy's ``git`` object (None when any step fails) and the commit message line."""
    if has_uncommitted_changes(path):
        say(DIRTY_NOTE)
        return None, ""
    try:
        remote = _git(path, "remote", "get-url", "origin")
        host, remote_path = parse_remote(remote)
        # Two lines, each trimmed as astro-cli trims the output of its own rev-parse run.
        prefix, _, branch = _git(path, "rev-parse", "--show-prefix", "--abbrev-ref", "HEAD",
                                 trim=False).partition("\n")
        prefix, branch = prefix.strip().removesuffix("/"), branch.strip()
        line, _, body = _git(path, "log", "-1", _FORMAT, "HEAD").partition("\x00")
        try:
            head = jsoncodec.loads(line)
        except ValueError as exc:
            raise _Skip("unreadable commit") from exc
        first = body.strip().split("\n")[0]
        message = first.encode()[:MAX_MESSAGE_BYTES].decode(errors="replace")
        meta: dict[str, str] = {"commitSha": str(head["sha"])}
        if host == "github.com":
            account, slash, repo = remote_path.lstrip("/").partition("/")
            if not slash:
                raise _Skip("no account/repo in the GitHub URL")
            meta.update(provider="GITHUB", account=account, repo=repo,
                        commitUrl=f"https://github.com/{account}/{repo}/commit/{meta['commitSha']}")
        else:
            meta.update(provider="GENERIC", remoteUrl=remote)
        if prefix:
            meta["path"] = prefix
        meta.update(branch=branch, authorName=str(head["name"]))
    except (_Skip, KeyError, TypeError):
        return None, ""
    return meta, message
