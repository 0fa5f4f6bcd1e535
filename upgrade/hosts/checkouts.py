"""The checkouts the tool keeps of repos given by URL (``repos.X.url``), under ``workdir``.

Before a command reads a managed repo, :meth:`Checkouts.ready` makes its checkout what
the remote says, once per command::

    lock <workdir>/.<name>.lock ─▶ clone (blob-less) when missing, else fetch
      ─▶ <default> checked out at <remote>/<default>, clean (nothing untracked, nothing staged)

* **Blob-less** (``--filter=blob:none``): every commit and tree, so rebasing, merge bases
  and "which commit last changed the Dockerfile" work as in a full clone, while file
  contents come on demand; a fleet repo's history of DAG data files stays on the remote.
* **Clean**: the remote's default branch is the truth in ``direct`` and ``pull-request``
  modes (the only modes a managed repo may use), so whatever an earlier run left in the
  checkout is dropped. A killed run's pushed work is in the journal and on the remote;
  its unpushed rewrite is made again by the next render.
* **One run per checkout**: an advisory ``flock`` beside it, held until the command ends
  (the kernel releases it when the holder dies); a second run is refused (exit 6) naming
  the repo, the holder and its workdir, instead of two runs moving one checkout's HEAD.
* **Credentials**: git's own (credential helpers, the SSH agent, ``~/.ssh``), or the
  inventory's ``token_env`` through :mod:`upgrade.hosts.credential_helper`; the URL holds
  none (refused at load), ``GIT_TERMINAL_PROMPT=0`` makes a missing one fail at once, and
  a clone or fetch that fails is :class:`~upgrade.errors.CheckoutFailed` (exit 7) naming the
  repo, redacted by the one rule.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import socket
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from upgrade.config.inventory import Repo
from upgrade.config.repos import ManagedCheckout
from upgrade.errors import CheckoutFailed, CommandFailed, LockHeld, RepoError
from upgrade.hosts import git, git_history
from upgrade.hosts.host import CommandResult, LocalHost
from upgrade.model.redact import redact

# Cloning crosses the network and may move a large history.
CLONE_TIMEOUT = 900.0
# Checkouts made ready at once: each mostly waits on the network.
WORKERS = 8


class Checkouts:
    """The managed checkouts one command uses: each made ready once, locked until :meth:`close`."""

    def __init__(self, host: LocalHost | None = None) -> None:
        self.host = host or LocalHost()
        self._ready: dict[str, threading.Lock] = {}
        self._done: set[str] = set()
        self._locks: dict[str, int] = {}  # repo name -> the lock file's descriptor
        self._guard = threading.Lock()

    def __enter__(self) -> Checkouts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def prepare(self, repos: Iterable[Repo]) -> None:
        """:meth:`ready` for every managed repo of ``repos``, several at once; raises the
        first repo's error (in the order given) once all have been tried."""
        managed = [r for r in dict.fromkeys(repos) if r.managed is not None]
        if len(managed) <= 1:
            for repo in managed:
                self.ready(repo)
            return
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(managed))) as workers:
            futures = [workers.submit(self.ready, repo) for repo in managed]
        for future in futures:
            future.result()

    def ready(self, repo: Repo) -> None:
        """Lock, clone or fetch, and check out ``repo``'s default branch clean (once)."""
        managed = repo.managed
        if managed is None or repo.name in self._done:
            return
        with self._guard:
            gate = self._ready.setdefault(repo.name, threading.Lock())
        with gate:
            if repo.name in self._done:
                return
            self._lock(repo.name, managed)
            self._sync(repo, managed)
            self._done.add(repo.name)

    def close(self) -> None:
        """Release every checkout's lock."""
        with self._guard:
            for fd in self._locks.values():
                os.close(fd)  # closing the descriptor releases its flock
            self._locks.clear()
            self._done.clear()

    # -- the lock ---------------------------------------------------------------------

    def _lock(self, name: str, managed: ManagedCheckout) -> None:
        os.makedirs(managed.checkout.parent, mode=0o700, exist_ok=True)
        path = str(managed.lock_file)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd) or "another run"
            os.close(fd)
            raise LockHeld(f"repos.{name}: its checkout {managed.checkout} is in use by "
                           f"{holder}. Wait for that run to end, or give this run a workdir "
                           "of its own (workdir: in the inventory).") from None
        except BaseException:
            os.close(fd)
            raise
        since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {since}".encode(), 0)
        with self._guard:
            self._locks[name] = fd

    # -- clone, fetch, check out --------------------------------------------------------

    def _sync(self, repo: Repo, managed: ManagedCheckout) -> None:
        host, d, remote = self.host, str(managed.checkout), repo.git.remote
        helper = _helper_options(managed)
        if not os.path.isdir(os.path.join(d, ".git")):
            if os.path.exists(d) and os.listdir(d):
                raise RepoError(f"repos.{repo.name}: {d} exists and is not a checkout of "
                                f"{managed.url}. Remove it (the tool keeps its checkouts "
                                "there), or set workdir to another directory.")
            self._run(repo, ["git", *helper, "clone", "--quiet", "--filter=blob:none",
                             "--no-checkout", "--origin", remote, "--", managed.url, d],
                      str(managed.checkout.parent), "clone")
        else:
            found = git.remote_url(host, d, remote)
            if found != managed.url:  # the inventory's url changed since the clone
                verb = "add" if found is None else "set-url"
                self._run(repo, ["git", "remote", verb, remote, managed.url], d, "configure")
            self._run(repo, ["git", *helper, "fetch", "--quiet", "--prune", "--no-tags",
                             remote], d, "fetch")
        self._configure_helper(repo, managed)
        default = repo.git.default_branch or self._remote_default(repo, d, remote)
        start = f"refs/remotes/{remote}/{default}"
        if git_history.rev(host, d, start) is None:
            raise RepoError(f"repos.{repo.name}: {managed.url} has no branch {default!r}. Set "
                            "git.default_branch to the branch Deployments are built from.")
        self._run(repo, ["git", "checkout", "--quiet", "--force", "--no-track", "-B", default,
                         start], d, "check out")
        self._run(repo, ["git", "clean", "--quiet", "-ffdx"], d, "clean")

    def _remote_default(self, repo: Repo, d: str, remote: str) -> str:
        """The branch the remote's HEAD names, as the clone recorded it (else asked)."""
        found = git_history.symbolic_ref(self.host, d, f"refs/remotes/{remote}/HEAD")
        prefix = f"refs/remotes/{remote}/"
        if found and found.startswith(prefix):
            return found[len(prefix):]
        try:
            return git.remote_head(self.host, d, remote)
        except CommandFailed as exc:
            raise _failed(repo, "ask", str(exc)) from None

    def _configure_helper(self, repo: Repo, managed: ManagedCheckout) -> None:
        """The checkout's own ``credential.helper`` list: only the token's helper with
        ``token_env``; otherwise git's configured helpers (nothing set here)."""
        d = str(managed.checkout)
        self.host.run(["git", "config", "--local", "--unset-all", "credential.helper"],
                      cwd=d, timeout=git.GIT_TIMEOUT, env=git.GIT_ENV)
        for value in _helpers(managed):
            self._run(repo, ["git", "config", "--local", "--add", "credential.helper", value],
                      d, "configure")

    def _run(self, repo: Repo, argv: list[str], cwd: str, what: str) -> CommandResult:
        timeout = CLONE_TIMEOUT if what in ("clone", "fetch") else git.GIT_TIMEOUT
        result = self.host.run(argv, cwd=cwd, timeout=timeout, env=git.GIT_ENV)
        if not result.ok:
            said = result.stderr.strip() or result.stdout.strip() or "it printed nothing"
            if result.timed_out:
                said = f"timed out after {result.duration:.0f}s"
            raise _failed(repo, what, said)
        return result


def _failed(repo: Repo, what: str, said: str) -> CheckoutFailed:
    managed = repo.managed
    assert managed is not None
    lines = [line.removeprefix("fatal: ").strip() for line in said.splitlines() if line.strip()]
    words = "; ".join(lines[-3:])
    how = (f"the token in ${managed.token_env}" if managed.token_env else
           "git's credential helper or the SSH agent")
    return CheckoutFailed(repo.name, redact(
        f"repos.{repo.name}: could not {what} {managed.url} ({words}). Check that the URL is "
        f"right and reachable from here and that {how} may read it, then run again."))


def _helpers(managed: ManagedCheckout) -> list[str]:
    """``credential.helper`` values for ``managed``: none of its own without ``token_env``;
    with it, an empty one (dropping the user's helpers) and then the token's helper."""
    if managed.token_env is None:
        return []
    command = shlex.join([sys.executable, "-m", "upgrade.hosts.credential_helper",
                          managed.token_env])
    return ["", f"!{command}"]


def _helper_options(managed: ManagedCheckout) -> list[str]:
    """``-c credential.helper=...`` for a git command run before the checkout has its config."""
    return [arg for value in _helpers(managed) for arg in ("-c", f"credential.helper={value}")]


def _read(fd: int) -> str:
    with contextlib.suppress(OSError):
        return os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
    return ""
