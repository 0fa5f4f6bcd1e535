"""Connecting to a runner: host key policies, unreachable runners, dropped connections."""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path

import pytest

from upgrade.errors import ConnectionLost, HostKeyRefused, RunnerUnreachable
from upgrade.hosts.ssh import SSHHost

pytestmark = pytest.mark.sshd


def _other_host_key(tmp_path: Path) -> Path:
    key = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key.with_suffix(".pub")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _accepted(listener: socket.socket) -> int:
    """How many connections wait in a non-blocking listener's queue (taken and closed)."""
    count = 0
    while True:
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            return count
        connection.close()
        count += 1


def _running(text: str) -> bool:
    """Whether a process whose command line holds ``text`` runs (here: the runner is local)."""
    return subprocess.run(["pgrep", "-f", text], capture_output=True).returncode == 0


# ------------------------------------------------------------------------ host keys


def test_strict_refuses_an_unknown_host_key_and_names_its_fingerprint(sshd, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    host = SSHHost(sshd.runner(known_hosts="strict"), known_hosts_file=empty)
    with pytest.raises(HostKeyRefused) as caught:
        host.run(["true"], cwd="/", timeout=5)
    message = str(caught.value)
    assert f"127.0.0.1:{sshd.port}" in message
    assert sshd.fingerprint() in message  # the fingerprint OpenSSH itself computes
    assert caught.value.fingerprint == sshd.fingerprint()
    assert "ssh-keyscan" in message
    assert empty.read_text() == ""  # never auto-accepted


def test_strict_without_a_known_hosts_file_says_so(sshd, tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "known_hosts"
    host = SSHHost(sshd.runner(known_hosts="strict"), known_hosts_file=missing)
    with pytest.raises(HostKeyRefused, match=rf"because {missing} does not exist"):
        host.run(["true"], cwd="/", timeout=5)
    assert not missing.exists()


def test_strict_accepts_a_hashed_known_hosts_entry(sshd, tmp_path: Path) -> None:
    # Debian's ssh client hashes host names (HashKnownHosts yes); such files must work.
    known = sshd.known_hosts(tmp_path / "known_hosts")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(known)], check=True, capture_output=True)
    assert "127.0.0.1" not in known.read_text()
    host = SSHHost(sshd.runner(known_hosts="strict"), known_hosts_file=known)
    try:
        assert host.run(["true"], cwd="/", timeout=5).ok
    finally:
        host.close()


def test_accept_new_records_an_unknown_key_then_strict_trusts_it(sshd, tmp_path: Path) -> None:
    known = tmp_path / "ssh" / "known_hosts"
    first = SSHHost(sshd.runner(known_hosts="accept-new"), known_hosts_file=known)
    try:
        assert first.run(["true"], cwd="/", timeout=5).ok
    finally:
        first.close()
    assert known.read_text() == f"[127.0.0.1]:{sshd.port} {sshd.host_key_line}\n"
    second = SSHHost(sshd.runner(known_hosts="strict"), known_hosts_file=known)
    try:
        assert second.run(["true"], cwd="/", timeout=5).ok
    finally:
        second.close()


@pytest.mark.parametrize("policy", ["strict", "accept-new"])
def test_a_changed_host_key_is_refused(policy: str, sshd, tmp_path: Path) -> None:
    other = _other_host_key(tmp_path)
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {' '.join(other.read_text().split()[:2])}\n")
    before = known.read_text()
    host = SSHHost(sshd.runner(known_hosts=policy), known_hosts_file=known)
    with pytest.raises(HostKeyRefused) as caught:
        host.run(["true"], cwd="/", timeout=5)
    message = str(caught.value)
    assert "DIFFERS" in message
    assert sshd.fingerprint() in message and sshd.fingerprint(other) in message
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}'" in message
    assert known.read_text() == before


def test_ignore_connects_whatever_the_key(sshd, tmp_path: Path) -> None:
    other = _other_host_key(tmp_path)
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {' '.join(other.read_text().split()[:2])}\n")
    host = SSHHost(sshd.runner(known_hosts="ignore"), known_hosts_file=known)
    try:
        assert host.run(["true"], cwd="/", timeout=5).ok
    finally:
        host.close()


# ---------------------------------------------------------------- unreachable runners


def test_a_closed_port_is_unreachable_quickly(sshd, known_hosts: Path) -> None:
    host = SSHHost(sshd.runner(port=_free_port()), known_hosts_file=known_hosts)
    with pytest.raises(RunnerUnreachable, match="connection was refused") as caught:
        host.run(["true"], cwd="/", timeout=5)
    assert caught.value.runner == "build-1"
    assert "Runner build-1" in str(caught.value)


def test_a_server_that_never_speaks_ssh_hits_the_connect_timeout_and_is_remembered(sshd, known_hosts: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel accepts; nobody ever sends a banner
        silent.setblocking(False)
        runner = sshd.runner(port=silent.getsockname()[1])
        host = SSHHost(runner, known_hosts_file=known_hosts, connect_timeout=0.5)
        with pytest.raises(RunnerUnreachable, match="did not complete an SSH handshake within 0.5s"):
            host.run(["true"], cwd="/", timeout=5)
        assert _accepted(silent) == 1
        # Every further step on this runner fails at once instead of connecting and waiting again.
        with pytest.raises(RunnerUnreachable, match="Remembered from"):
            host.exists("/")
        assert _accepted(silent) == 0


def test_a_key_the_runner_does_not_authorize_is_an_authentication_failure(sshd, known_hosts: Path, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    host = SSHHost(sshd.runner(key_file=stranger), known_hosts_file=known_hosts)
    with pytest.raises(RunnerUnreachable, match=rf"authentication as {sshd.user} with the key {stranger} failed"):
        host.run(["true"], cwd="/", timeout=5)


def test_a_missing_key_file_is_named(sshd, known_hosts: Path, tmp_path: Path) -> None:
    host = SSHHost(sshd.runner(key_file=tmp_path / "no-key"), known_hosts_file=known_hosts)
    with pytest.raises(RunnerUnreachable, match="key_file .*no-key does not exist"):
        host.read_text("/etc/hostname")


# ------------------------------------------------------------ dropped connections


def _run_and_drop(host: SSHHost, sshd, log: Path, *, idempotent: bool):  # type: ignore[no-untyped-def]
    """Run a command that appends to ``log``; cut the connection once it has started. The
    command waits for the cut (a file) before it ends: it is in flight whatever the speed."""
    release = log.with_name("cut")

    def cut() -> None:
        try:
            assert sshd.wait_until(lambda: log.exists() and log.read_text().count("ran") >= 1)
            assert sshd.drop_connections() > 0
        finally:
            release.touch()

    cutter = threading.Thread(target=cut)
    cutter.start()
    wait = 'echo ran >> "$1"; while [ ! -e "$2" ]; do sleep 0.05; done; echo done'
    try:
        return host.run(["sh", "-c", wait, "sh", str(log), str(release)],
                        cwd="/", timeout=120, idempotent=idempotent)
    finally:
        cutter.join()


def test_a_connection_dropped_mid_command_is_retried_once_when_idempotent(ssh_host: SSHHost, sshd, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    result = _run_and_drop(ssh_host, sshd, log, idempotent=True)
    assert result.ok and result.stdout == "done\n"
    assert log.read_text() == "ran\nran\n"  # it really ran twice, on a new connection
    assert (ssh_host.connections_opened, ssh_host.retries) == (2, 1)


def test_a_connection_dropped_mid_command_is_not_repeated_otherwise(ssh_host: SSHHost, sshd, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    with pytest.raises(ConnectionLost) as caught:
        _run_and_drop(ssh_host, sshd, log, idempotent=False)
    assert "not safe to repeat" in str(caught.value)
    assert isinstance(caught.value, RunnerUnreachable)  # the rollout catches one type
    # Once the orphaned first run has ended, nothing ran it again.
    assert sshd.wait_until(lambda: not _running(str(log)))
    assert log.read_text() == "ran\n"
    # The runner is fine again for the next step.
    assert ssh_host.run(["true"], cwd="/", timeout=5).ok
    assert ssh_host.connections_opened == 2


def test_a_connection_that_died_while_idle_is_reopened_transparently(ssh_host: SSHHost, sshd) -> None:
    assert ssh_host.run(["true"], cwd="/", timeout=5).ok
    assert sshd.drop_connections() > 0
    # Not idempotent, yet safe: nothing had started on the dead connection.
    assert ssh_host.run(["echo", "again"], cwd="/", timeout=5).stdout == "again\n"
    assert ssh_host.exists("/etc")
    assert ssh_host.connections_opened == 2


def test_an_unreachable_runner_does_not_hold_up_a_reachable_one(sshd, known_hosts: Path) -> None:
    good = SSHHost(sshd.runner("good"), known_hosts_file=known_hosts)
    bad = SSHHost(sshd.runner("bad", port=_free_port()), known_hosts_file=known_hosts)
    try:
        with pytest.raises(RunnerUnreachable, match="Runner bad"):
            bad.run(["true"], cwd="/", timeout=5)
        assert good.run(["true"], cwd="/", timeout=5).ok
    finally:
        good.close()
