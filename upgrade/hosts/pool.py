"""Where each repo's work runs: one Host per runner of the inventory, and their health check.

The orchestrator keeps the plan, the gate and the journal; everything that touches a repo
(its Dockerfile, git, ``astro deploy``) runs on the repo's runner, through the Host
:meth:`HostPool.host_for` returns: :class:`~upgrade.hosts.LocalHost` for ``local``, an
:class:`~upgrade.ssh.SSHHost` for every other runner. SSH hosts connect on first use, so a
pool costs nothing for runners a run does not touch.

``check_runners`` is what ``invoke runners`` shows: every runner reachable, ``git`` and
the astro CLI present on it, every repo path on it there; all problems at once.

A repo given by ``url`` lives in a checkout the tool keeps on this machine
(:mod:`upgrade.hosts.checkouts`): the pool makes it ready (locked, fetched, clean) the first
time the repo's host is asked for, or all at once with :meth:`HostPool.prepare`, and
releases the locks when it is closed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from upgrade.config.inventory import Inventory, Repo
from upgrade.config.runners import CONNECT_TIMEOUT, Runner
from upgrade.errors import RunnerUnreachable
from upgrade.hosts.checkouts import Checkouts
from upgrade.hosts.host import CommandResult, Host, LocalHost

# Checking a runner is a handful of `command -v` and stat calls; anything slower is broken.
CHECK_TIMEOUT = 30.0
# Runners checked at once: each check mostly waits on the network.
CHECK_WORKERS = 32


class HostPool:
    """The Host of every runner in the inventory; SSH runners connect lazily, once each."""

    def __init__(
        self,
        inventory: Inventory,
        *,
        known_hosts_file: str | Path | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
    ):
        self._repos: Mapping[str, Repo] = inventory.repos
        self._runners: Mapping[str, Runner] = inventory.runners
        self._hosts: dict[str, Host] = {}
        for name, runner in inventory.runners.items():
            if runner.is_local:
                self._hosts[name] = LocalHost(name, kill_grace=inventory.control_plane.kill_grace)
                continue
            # Fabric and paramiko are a large part of a command's start-up: only a fleet
            # with SSH runners imports them.
            from upgrade.hosts.ssh import SSHHost

            self._hosts[name] = SSHHost(
                runner, known_hosts_file=runner.known_hosts_file or known_hosts_file,
                connect_timeout=connect_timeout)
        self._lock = threading.Lock()
        self.checkouts = Checkouts()

    def __enter__(self) -> HostPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def host(self, runner: str) -> Host:
        """The Host of the runner named ``runner`` (KeyError if the inventory has none)."""
        return self._hosts[runner]

    def host_for(self, repo: Repo | str) -> Host:
        """The Host of the runner that holds ``repo`` (a Repo or its name); a repo given by
        url has its checkout made ready first (once per pool)."""
        found = self._repos[repo] if isinstance(repo, str) else repo
        if found.managed is not None:
            self.checkouts.ready(found)
        return self._hosts[found.runner]

    def prepare(self, repos: Iterable[Repo]) -> None:
        """Make the checkouts of the repos given by url among ``repos`` ready, several at
        once (cloning ten repos one after another is ten times the wait)."""
        self.checkouts.prepare(repos)

    def runner(self, name: str) -> Runner:
        """The inventory's settings for runner ``name``."""
        return self._runners[name]

    def close(self) -> None:
        """Close every SSH connection the pool opened; release the checkouts' locks."""
        self.checkouts.close()
        with self._lock:
            for host in self._hosts.values():
                if not isinstance(host, LocalHost):
                    host.close()  # type: ignore[attr-defined]


@dataclass(frozen=True, order=True)
class RunnerProblem:
    """One thing wrong with a runner (or with a repo on it), and what to do about it."""

    runner: str
    repo: str  # "" when the problem is the runner's own
    message: str

    def __str__(self) -> str:
        where = f"runner {self.runner}" + (f", repo {self.repo}" if self.repo else "")
        return f"{where}: {self.message}"


def check_runners(
    inventory: Inventory,
    pool: HostPool,
    *,
    astro_bin: str = "astro",
    timeout: float = CHECK_TIMEOUT,
) -> list[RunnerProblem]:
    """Check every SSH runner, and ``local`` if a repo uses it; return every problem found.

    Per runner: it is reachable; ``git`` and ``astro_bin`` (and, over SSH, ``timeout``,
    which bounds every remote command) are on its PATH; each of its repos' directories
    exists, and so does the Dockerfile of a repo that is not template-managed.
    """
    repos_by_runner: dict[str, list[Repo]] = {}
    for repo in inventory.repos.values():
        repos_by_runner.setdefault(repo.runner, []).append(repo)
    names = [name for name, runner in inventory.runners.items()
             if not runner.is_local or name in repos_by_runner]
    if not names:
        return []
    with ThreadPoolExecutor(max_workers=min(CHECK_WORKERS, len(names))) as workers:
        found = workers.map(
            lambda name: _check_one(pool.host(name), repos_by_runner.get(name, []),
                                    astro_bin, timeout),
            names,
        )
        return sorted(problem for problems in found for problem in problems)


def _check_one(
    host: Host, repos: list[Repo], astro_bin: str, timeout: float
) -> list[RunnerProblem]:
    name = host.name
    tools = ["git", astro_bin] + ([] if isinstance(host, LocalHost) else ["timeout"])
    problems: list[RunnerProblem] = []
    try:
        for tool in tools:
            # The name is an argument of a constant script, never part of it.
            found = host.run(["sh", "-c", 'command -v "$1"', "sh", tool], cwd="/",
                             timeout=timeout)
            if not found.ok:
                problems.append(RunnerProblem(name, "", _missing_tool(tool, astro_bin, found)))
        for repo in repos:
            if repo.managed is not None:
                continue  # cloned here when a command first uses it
            path = str(repo.path)
            if not host.exists(path):
                problems.append(RunnerProblem(
                    name, repo.name, f"the repo directory {path} does not exist there. Clone "
                    f"the repo there, or fix repos.{repo.name}.path in the inventory."))
            elif repo.template is None and not host.exists(str(repo.dockerfile_path)):
                problems.append(RunnerProblem(
                    name, repo.name, f"{repo.dockerfile_path} does not exist there. Fix "
                    f"repos.{repo.name}.dockerfile, or make the repo template-managed."))
    except RunnerUnreachable as exc:
        return [RunnerProblem(name, "", str(exc))]
    return problems


def _missing_tool(tool: str, astro_bin: str, result: CommandResult) -> str:
    if result.timed_out:
        return f"looking for {tool} took longer than {result.duration:.0f}s."
    if tool == astro_bin:
        return (f"the astro CLI {tool!r} was not found. Install it there, or set "
                "control_plane.astro_bin to its path.")
    if tool == "timeout":
        return ("timeout (GNU coreutils) was not found; every remote command runs under it. "
                "Install coreutils there.")
    return f"{tool} was not found on the PATH of a non-interactive SSH session. Install it there."
