"""Runners: where each repo's image is built, this machine or a build host over SSH."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from upgrade.config.checker import Checker
from upgrade.config.located import LMap, join

LOCAL = "local"  # the implicit runner: this machine
DEFAULT_PARALLEL = 4  # builds at once per runner when the inventory does not say
KNOWN_HOSTS = ("strict", "accept-new", "ignore")
CONNECT_TIMEOUT = 10.0  # s for TCP connect, SSH banner and authentication, each
RUNNER_KEYS = ("host", "port", "user", "key_file", "known_hosts", "known_hosts_file", "parallel")


@dataclass(frozen=True)
class Runner:
    """Where a repo's image is built: this machine, or a build host over SSH."""

    name: str
    host: str | None = None  # None for the local runner
    port: int = 22
    user: str | None = None
    key_file: Path | None = None
    known_hosts: str = "strict"
    known_hosts_file: Path | None = None  # None: ~/.ssh/known_hosts
    parallel: int = DEFAULT_PARALLEL

    @property
    def is_local(self) -> bool:
        """True for the implicit ``local`` runner."""
        return self.host is None


def read_runners(c: Checker, top: LMap, resolve: Callable[[str], Path],
                 name_ok: Callable[[object, str, int], bool]) -> dict[str, Runner]:
    """The ``runners:`` section, plus the implicit ``local`` runner."""
    runners = {LOCAL: Runner(LOCAL)}
    m = c.mapping(top, "runners", "")
    for name, node in (m.items() if m else ()):
        path, line = join("runners", name), m.key_line(name)  # type: ignore[union-attr]
        if not name_ok(name, path, line) or not c.expect(node, LMap, path, line):
            continue
        assert isinstance(node, LMap)
        if name == LOCAL:
            # The local runner is this machine; only its parallelism can be tuned.
            c.keys(node, ("parallel",), path)
            parallel = c.integer(node, "parallel", path, default=DEFAULT_PARALLEL, minimum=1)
            runners[LOCAL] = Runner(LOCAL, parallel=parallel or DEFAULT_PARALLEL)
            continue
        c.keys(node, RUNNER_KEYS, path, required=("host",))
        known = c.string(node, "known_hosts", path, default="strict") or "strict"
        if known not in KNOWN_HOSTS:
            c.add(node.key_line("known_hosts"), join(path, "known_hosts"),
                  f"must be one of {', '.join(KNOWN_HOSTS)}, got '{known}'.")
        key_file = c.string(node, "key_file", path)
        known_file = c.string(node, "known_hosts_file", path)
        runners[name] = Runner(
            name=name,
            host=c.string(node, "host", path) or "",
            port=c.integer(node, "port", path, default=22, minimum=1, maximum=65535) or 22,
            user=c.string(node, "user", path),
            key_file=resolve(key_file) if key_file else None,
            known_hosts=known,
            known_hosts_file=resolve(known_file) if known_file else None,
            parallel=c.integer(node, "parallel", path, default=DEFAULT_PARALLEL, minimum=1)
            or DEFAULT_PARALLEL,
        )
    return runners
