"""A real OpenSSH server on 127.0.0.1 for the SSH runner tests, one per pytest worker.

``scripts/sshd-test-server.sh`` installs openssh-server if it is missing (as root, with
apt-get), generates a host key and a client key in a temp dir, and starts ``sshd -D`` on a
free loopback port that only the generated key can log in to. The tests are skipped only
when sshd is not installed and cannot be.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import ROOT

from upgrade.config.runners import Runner
from upgrade.hosts.ssh import SSHHost

SCRIPT = ROOT / "scripts" / "sshd-test-server.sh"


@dataclass
class SSHD:
    """The running test server and what a client needs to reach it."""

    dir: Path
    port: int
    user: str
    key: Path
    host_key_pub: Path
    pid: int

    @property
    def host_key_line(self) -> str:
        """The server's key as known_hosts has it: ``TYPE BASE64``."""
        return " ".join(self.host_key_pub.read_text().split()[:2])

    def known_hosts(self, path: Path, *, hostname: str = "127.0.0.1") -> Path:
        """Write a known_hosts file that knows this server (as ``hostname``)."""
        path.write_text(f"[{hostname}]:{self.port} {self.host_key_line}\n")
        return path

    def runner(self, name: str = "build-1", **settings: object) -> Runner:
        """An inventory Runner pointing at this server with the generated key."""
        values: dict[str, object] = {
            "host": "127.0.0.1", "port": self.port, "user": self.user, "key_file": self.key,
            "known_hosts": "strict",
        }
        values.update(settings)
        return Runner(name, **values)  # type: ignore[arg-type]

    def fingerprint(self, pub: Path | None = None) -> str:
        """OpenSSH's own SHA256 fingerprint of a public key file (this server's by default)."""
        out = subprocess.run(["ssh-keygen", "-lf", str(pub or self.host_key_pub)],
                             capture_output=True, text=True, check=True).stdout
        return out.split()[1]

    def session_pids(self) -> list[int]:
        """The per-connection sshd processes (every sshd below the listener)."""
        children: dict[int, list[int]] = {}
        names: dict[int, str] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                text = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # comm is in parentheses and may hold spaces; the fields after it are fixed.
            comm = text[text.index("(") + 1:text.rindex(")")]
            fields = text[text.rindex(")") + 2:].split()
            if fields[0] == "Z":
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
            names[int(entry)] = comm
        found, todo = [], list(children.get(self.pid, []))
        while todo:
            pid = todo.pop()
            if names.get(pid) == "sshd":
                found.append(pid)
                todo.extend(children.get(pid, []))
        return found

    @staticmethod
    def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
        """Poll ``predicate`` until it is true or ``timeout`` passes; its last answer (the
        time-out is generous: it only ends a wait for what never comes)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def drop_connections(self) -> int:
        """Kill every sshd process serving a connection (the listener stays): a network cut."""
        pids = self.session_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)


def _script(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHD]:
    """The loopback OpenSSH server of this pytest worker."""
    installed = _script("install")
    if installed.returncode != 0:
        pytest.skip(f"no OpenSSH server: {installed.stderr.strip()}")
    directory = tmp_path_factory.mktemp("sshd")
    started = _script("start", str(directory), timeout=60)
    if started.returncode != 0:
        log = directory / "sshd.log"
        pytest.fail(f"sshd did not start: {started.stderr}\n"
                    f"{log.read_text() if log.exists() else ''}")
    env = dict(line.split("=", 1) for line in started.stdout.split() if "=" in line)
    server = SSHD(
        dir=directory, port=int(env["SSHD_PORT"]), user=env["SSHD_USER"],
        key=Path(env["SSHD_KEY"]), host_key_pub=Path(env["SSHD_HOST_KEY_PUB"]),
        pid=int(env["SSHD_PID"]),
    )
    try:
        yield server
    finally:
        _script("stop", str(directory), timeout=30)


@pytest.fixture
def known_hosts(sshd: SSHD, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A known_hosts file (outside tmp_path) that knows the test server as 127.0.0.1."""
    return sshd.known_hosts(tmp_path_factory.mktemp("known-hosts") / "known_hosts")


@pytest.fixture
def ssh_host(sshd: SSHD, known_hosts: Path) -> Iterator[SSHHost]:
    """An SSHHost for the test server (strict host keys), closed after the test."""
    host = SSHHost(sshd.runner(), known_hosts_file=known_hosts)
    try:
        yield host
    finally:
        host.close()

