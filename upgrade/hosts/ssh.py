"""A build host reached over SSH: the :class:`~upgrade.hosts.Host` contract on Fabric.

One :class:`SSHHost` per runner holds one SSH connection (a ``fabric.Connection``), opened
on first use and shared by every thread: each command is its own channel on that
connection, as OpenSSH multiplexes them. A connection found dead is replaced once, under a
lock, so concurrent callers never open two.

How a command is built and run: ``upgrade.hosts.ssh_channel``; host keys:
``upgrade.hosts.known_hosts``.

Faults, and what the caller sees::

    UpgradeError
    └── RunnerUnreachable       cannot connect: refused, time-out, DNS, authentication
        ├── HostKeyRefused      unknown key under ``strict``, or a changed key (any policy
        │                       but ``ignore``); names the host and the key's fingerprint
        └── ConnectionLost      the connection dropped while a command ran that was not
                                safe to repeat (``idempotent=False``)

A connection that died before a command was sent is always reopened once (nothing ran, so
nothing can run twice). One that dies while a command runs is reopened and the command
repeated once only when the caller said ``idempotent=True``. After a failed connect, the
same error is raised at once for ``retry_after`` seconds, so a dead runner's Deployments
fail fast instead of each waiting for its own connect time-out.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import logging
import posixpath
import secrets
import shlex
import signal
import socket
import stat
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import fabric
import invoke
import paramiko
from paramiko.config import SSHConfig

from upgrade.config.runners import CONNECT_TIMEOUT, Runner
from upgrade.errors import ConnectionLost, HostKeyRefused, RunnerUnreachable
from upgrade.hosts.host import KILL_GRACE, CommandResult
from upgrade.hosts.known_hosts import (
    SYSTEM_KNOWN_HOSTS,
    USER_KNOWN_HOSTS,
    HostKeyPolicy,
    fingerprint,
    known_hosts_name,
)
from upgrade.hosts.ssh_channel import (
    LOCAL_MARGIN,
    TIMEOUT_KILL,
    TIMEOUT_TERM,
    ChannelRunner,
    Lost,
    env_payload,
    remote_command,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

IO_TIMEOUT = 60.0  # s an SFTP request or a channel open may take before the runner is deemed gone
KEEPALIVE = 30  # s between keepalives, so a silently dead peer is noticed
RETRY_AFTER = 30.0  # s a failed connect is remembered before the next attempt
# OpenSSH's default MaxSessions: channels one connection may have open at once. One is kept
# for SFTP; a runner whose sshd allows more can be given a larger max_sessions.
MAX_SESSIONS = 10


class _RetriedRefusals(logging.Filter):
    """Drops paramiko's ERROR line for a session open that sshd refused: SSHHost retries those
    (see ``SSHHost._open_session``) and counts them in ``sessions_refused``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Secsh channel") and "open FAILED" in message)


logging.getLogger("paramiko.transport").addFilter(_RetriedRefusals())


class _NotStarted(Exception):
    """The connection was dead before the command was sent: nothing ran."""


class _SessionRefused(Exception):
    """sshd kept refusing a new session on a live connection (its MaxSessions is reached)."""


class SSHHost:
    """A runner over SSH: commands on channels of one shared connection, files via SFTP."""

    def __init__(
        self,
        runner: Runner,
        *,
        known_hosts_file: str | Path | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        max_sessions: int = MAX_SESSIONS,
        retry_after: float = RETRY_AFTER,
    ):
        if runner.is_local or not runner.host:
            raise ValueError(f"runner {runner.name!r} has no host; use LocalHost for it")
        if max_sessions < 2:
            raise ValueError("max_sessions must be at least 2 (one is kept for SFTP)")
        self.name = runner.name
        self.hostname = runner.host
        self.port = runner.port
        self.user = runner.user
        self.key_file = runner.key_file
        self.known_hosts = runner.known_hosts
        self.known_hosts_file = Path(known_hosts_file or USER_KNOWN_HOSTS).expanduser()
        self.connect_timeout = connect_timeout
        self.retry_after = retry_after
        #: SSH connections opened so far (1 for a healthy runner, +1 per reconnect).
        self.connections_opened = 0
        #: Commands and file operations repeated after the connection was reopened.
        self.retries = 0
        #: Session opens sshd refused (its MaxSessions, momentarily) and that were retried.
        self.sessions_refused = 0
        self._lock = threading.Lock()  # guards _conn and _failure
        self._conn: fabric.Connection | None = None
        self._failure: tuple[float, RunnerUnreachable] | None = None
        self._sftp_lock = threading.Lock()  # paramiko's SFTPClient is not thread-safe
        self._sftp: tuple[fabric.Connection, paramiko.SFTPClient] | None = None
        self._channels = threading.BoundedSemaphore(max_sessions - 1)

    @property
    def address(self) -> str:
        """``user@host:port`` as shown in messages."""
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self.hostname}:{self.port}"

    def __repr__(self) -> str:
        return f"SSHHost({self.name!r}, {self.address!r})"

    # ------------------------------------------------------------------ commands

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        timeout: float,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
        idempotent: bool = False,
    ) -> CommandResult:
        """Run ``argv`` in ``cwd`` on the runner; the runner kills its process group on time-out.

        Never raises for a command that fails or times out. Raises RunnerUnreachable when
        the runner cannot be reached, and ConnectionLost when the connection drops mid-command
        and ``idempotent`` is false (when true, the command is run once more on a new connection).
        """
        command = remote_command(argv, cwd, timeout, stdin)
        payload = env_payload(env, stdin)
        args = tuple(argv)
        for attempt in (1, 2):
            conn = self._connection()
            try:
                with self._channels:  # waiting for a free session is not the command's time
                    started = time.monotonic()
                    result, local_timeout = self._exec(conn, command, payload, timeout)
                    duration = time.monotonic() - started
            except _SessionRefused as exc:
                raise self._unreachable(str(exc)) from None
            except _NotStarted as exc:
                if attempt == 2:
                    raise self._unreachable(f"the connection failed again: {exc}") from None
                log.warning("runner %s: connection closed before `%s` started (%s); reconnecting",
                            self.name, shlex.join(args), exc)
            except Lost as exc:
                if not idempotent or attempt == 2:
                    raise self._lost(args, cwd, str(exc), repeated=attempt == 2) from None
                log.warning("runner %s: connection dropped while `%s` ran (%s); running it again",
                            self.name, shlex.join(args), exc)
            else:
                return self._result(args, cwd, timeout, result, local_timeout, duration)
            self._discard(conn)
            self._count_retry()
        raise AssertionError("unreachable")

    def _exec(
        self, conn: fabric.Connection, command: str, payload: str, timeout: float
    ) -> tuple[invoke.Result, bool]:
        runner = ChannelRunner(context=conn, inline_env=False, channel=self._open_session(conn))
        deadline = timeout + KILL_GRACE + LOCAL_MARGIN
        started = time.monotonic()
        try:
            result = runner.run(
                command, hide=True, warn=True, pty=False, echo=False, encoding="utf-8",
                in_stream=io.StringIO(payload), timeout=deadline,
            )
        except invoke.CommandTimedOut as exc:
            # Our own deadline passed although the runner's timeout(1) should have ended the
            # command: the channel is closed; the runner's kill still applies there.
            return exc.result, True
        except invoke.ThreadException as exc:
            raise Lost(f"reading the command's output failed: {exc}") from exc
        if result.exited == -1:
            if not conn.is_connected:
                raise Lost("the connection closed before the command's exit status arrived")
            if time.monotonic() - started >= deadline:
                # Invoke's timer closed the channel but was still running when the wait
                # ended, so invoke did not call it a time-out: it is ours all the same.
                return result, True
        return result, False

    def _open_session(self, conn: fabric.Connection) -> paramiko.Channel:
        """A new session channel; waits out sshd's session limit for up to IO_TIMEOUT."""
        # sshd frees a session slot only after the close handshake of a finished command, so
        # under churn it may briefly refuse one even below MaxSessions: wait, never reconnect
        # (that would cut every other command on the connection). paramiko hands a refusal
        # to whichever thread asks first, so one may surface as a bare "Unable to open
        # channel."; a live transport is what tells a refusal from a dead connection.
        transport = conn.transport
        if transport is None or not transport.is_active():
            raise _NotStarted("the connection is closed")
        deadline = time.monotonic() + IO_TIMEOUT
        delay = 0.01
        while True:
            try:
                return transport.open_session(timeout=IO_TIMEOUT)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                if not transport.is_active():
                    raise _NotStarted(str(exc) or type(exc).__name__) from exc
                if time.monotonic() + delay > deadline:
                    raise _SessionRefused(
                        f"sshd refused new sessions for {IO_TIMEOUT:g}s ({exc}); is its "
                        "MaxSessions lower than max_sessions for this runner?") from exc
            with self._lock:
                self.sessions_refused += 1
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _result(
        self, argv: tuple[str, ...], cwd: str, timeout: float, result: invoke.Result,
        local_timeout: bool, duration: float,
    ) -> CommandResult:
        code = result.exited
        timed_out = local_timeout or (
            code in (TIMEOUT_TERM, TIMEOUT_KILL) and duration >= timeout)
        if timed_out:
            # The same convention as LocalHost: killed means -signal.
            code = -signal.SIGKILL if code != TIMEOUT_TERM else -signal.SIGTERM
        return CommandResult(argv, cwd, code, result.stdout, result.stderr, duration, timed_out)

    # --------------------------------------------------------------------- files

    def read_text(self, path: str) -> str:
        """The file's exact text (UTF-8, CRLF kept); FileNotFoundError if absent."""

        def read(sftp: paramiko.SFTPClient) -> bytes:
            with sftp.open(path, "rb") as handle:
                handle.prefetch()
                return handle.read()

        return self._sftp_call(read).decode("utf-8")

    def write_text(self, path: str, text: str) -> None:
        """Replace the file atomically (temp file beside it, then posix-rename), keeping its mode.

        A symlink is followed; a new file gets the runner's usual mode for new files.
        """
        data = text.encode("utf-8")

        def write(sftp: paramiko.SFTPClient) -> None:
            target = _resolve(sftp, path)
            directory, base = posixpath.split(target)
            try:
                info: paramiko.SFTPAttributes | None = sftp.stat(target)
            except FileNotFoundError:
                info = None
            tmp = posixpath.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
            try:
                with sftp.open(tmp, "wbx") as handle:
                    handle.set_pipelined(True)
                    handle.write(data)
                if info is not None and info.st_mode is not None:
                    sftp.chmod(tmp, stat.S_IMODE(info.st_mode))
                    mine = sftp.stat(tmp)
                    if (info.st_uid, info.st_gid) != (mine.st_uid, mine.st_gid):
                        # Only root may give a file away; otherwise keeping ours is fine.
                        with contextlib.suppress(PermissionError):
                            sftp.chown(tmp, info.st_uid, info.st_gid)
                sftp.posix_rename(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                    sftp.remove(tmp)
                raise

        self._sftp_call(write)

    def exists(self, path: str) -> bool:
        """True if ``path`` exists (a file or a directory; a dangling symlink does not)."""

        def probe(sftp: paramiko.SFTPClient) -> bool:
            try:
                sftp.stat(path)
            except (FileNotFoundError, PermissionError):
                return False
            return True

        return self._sftp_call(probe)

    def _sftp_call(self, op: Callable[[paramiko.SFTPClient], T]) -> T:
        # File operations are safe to repeat (reads, and a write that renames into place),
        # so one whose session or connection broke is always tried once more.
        for attempt in (1, 2):
            conn = self._connection()
            with self._sftp_lock:
                try:
                    sftp = self._sftp_for(conn)
                    return op(sftp)
                except (EOFError, paramiko.SSHException, OSError) as exc:
                    broken = (isinstance(exc, EOFError | paramiko.SSHException | TimeoutError)
                              or not conn.is_connected
                              or (self._sftp is not None and self._sftp[1].get_channel().closed))
                    if not broken:
                        raise  # the runner's own answer: no such file, permission denied
                    if self._sftp is not None:
                        _close_quietly(self._sftp[1])
                    self._sftp = None
                    error = exc
            if attempt == 2:
                raise self._unreachable(f"SFTP failed again: {error}") from None
            log.warning("runner %s: SFTP failed (%s); trying once more", self.name, error)
            if not conn.is_connected:
                self._discard(conn)
            self._count_retry()
        raise AssertionError("unreachable")

    def _sftp_for(self, conn: fabric.Connection) -> paramiko.SFTPClient:
        # One SFTP session per connection, outside the command sessions' semaphore (it is
        # the one session max_sessions keeps back).
        if self._sftp is None or self._sftp[0] is not conn:
            client = conn.client.open_sftp()
            client.get_channel().settimeout(IO_TIMEOUT)
            self._sftp = (conn, client)
        return self._sftp[1]

    # ---------------------------------------------------------------- connection

    def _connection(self) -> fabric.Connection:
        conn = self._conn
        if conn is not None and conn.is_connected:
            return conn
        with self._lock:
            conn = self._conn
            if conn is not None and conn.is_connected:
                return conn
            if self._failure is not None:
                failed_at, error = self._failure
                ago = time.monotonic() - failed_at
                if ago < self.retry_after:
                    raise error.remembered(f"(Remembered from {ago:.0f}s ago; the next "
                                           f"attempt is made after {self.retry_after:g}s.)")
            if conn is not None:
                _close_quietly(conn)
            try:
                self._conn = self._open()
            except RunnerUnreachable as exc:
                self._conn = None
                self._failure = (time.monotonic(), exc)
                raise
            self._failure = None
            self.connections_opened += 1
            return self._conn

    def _open(self) -> fabric.Connection:
        kwargs: dict[str, Any] = {
            "timeout": self.connect_timeout,
            "banner_timeout": self.connect_timeout,
            "auth_timeout": self.connect_timeout,
            "channel_timeout": IO_TIMEOUT,
        }
        if self.key_file is not None:
            if not Path(self.key_file).is_file():
                raise self._unreachable(
                    f"its key_file {self.key_file} does not exist. Fix runners.{self.name}."
                    "key_file in the inventory, or remove it to use ssh-agent and ~/.ssh keys")
            kwargs.update(key_filename=str(self.key_file), allow_agent=False, look_for_keys=False)
        # No ssh_config and no Fabric config files: the inventory alone decides where and how.
        config = fabric.Config(ssh_config=SSHConfig(), lazy=True)
        conn = fabric.Connection(
            self.hostname, user=self.user, port=self.port, config=config, connect_kwargs=kwargs
        )
        client = conn.client
        client.set_missing_host_key_policy(HostKeyPolicy(self))
        if self.known_hosts != "ignore":
            for file, load in ((SYSTEM_KNOWN_HOSTS, client.load_system_host_keys),
                               (self.known_hosts_file, client.load_host_keys)):
                try:
                    with open(file, "rb") as handle:
                        # Shared lock: another runner may be appending under accept-new.
                        fcntl.flock(handle, fcntl.LOCK_SH)
                        load(str(file))
                except FileNotFoundError:
                    continue
                except (OSError, paramiko.SSHException, ValueError) as exc:
                    raise self._unreachable(
                        f"its known_hosts file {file} cannot be read: {exc}") from None
        try:
            conn.open()
        except BaseException as exc:
            # paramiko reports some failures (no SSH banner in time) as a vague "No existing
            # session"; the transport keeps the real cause.
            transport = conn.client.get_transport()
            cause = transport.get_exception() if transport is not None else None
            _close_quietly(conn)
            if isinstance(exc, RunnerUnreachable):
                raise
            if isinstance(exc, Exception):
                raise self._connect_error(cause or exc) from None
            raise
        conn.transport.set_keepalive(KEEPALIVE)
        # Each command is a few small packets (open, exec, stdin, EOF); with Nagle on, each
        # waits for the peer's delayed ACK, which costs ~40 ms per packet pair.
        with contextlib.suppress(OSError, AttributeError):
            conn.transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        log.debug("runner %s: connected to %s", self.name, self.address)
        return conn

    def _discard(self, conn: fabric.Connection) -> None:
        """Forget ``conn`` (if still current) so the next call opens a fresh connection."""
        with self._lock:
            if self._conn is conn:
                self._conn = None
        with self._sftp_lock:
            if self._sftp is not None and self._sftp[0] is conn:
                self._sftp = None
        _close_quietly(conn)

    def _count_retry(self) -> None:
        with self._lock:
            self.retries += 1

    def close(self) -> None:
        """Close the connection (and its SFTP session); the next call reconnects."""
        with self._lock:
            conn, self._conn = self._conn, None
        with self._sftp_lock:
            if self._sftp is not None:
                _close_quietly(self._sftp[1])
            self._sftp = None
        if conn is not None:
            _close_quietly(conn)

    # ---------------------------------------------------------------- host keys

    def remember_host_key(self, hostname: str, key: paramiko.PKey) -> None:
        """Append a first-seen host key to known_hosts (the accept-new policy)."""
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        self.known_hosts_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.known_hosts_file, "a", encoding="ascii") as out:
            fcntl.flock(out, fcntl.LOCK_EX)
            out.write(line)
        log.warning("runner %s: accepted its new host key %s %s and added it to %s",
                    self.name, key.get_name(), fingerprint(key), self.known_hosts_file)

    # ------------------------------------------------------------------- errors

    def _unreachable(self, reason: str) -> RunnerUnreachable:
        return RunnerUnreachable(
            self.name,
            f"Runner {self.name} ({self.address}) is unreachable: {reason}. Its Deployments "
            "fail; other runners go on. `astro-fleet runners` checks every runner.",
        )

    def _connect_error(self, exc: Exception) -> RunnerUnreachable:
        if isinstance(exc, paramiko.BadHostKeyException):
            found, known = fingerprint(exc.key), fingerprint(exc.expected_key)
            return HostKeyRefused(
                self.name,
                f"Runner {self.name} ({self.address}) presented a host key that DIFFERS from "
                f"the one in known_hosts: it presented {exc.key.get_name()} {found}, "
                f"known_hosts has {exc.expected_key.get_name()} {known}. The connection was "
                "refused: someone may be intercepting it. If the runner was re-installed, "
                "verify the new fingerprint on it, then remove the old key with "
                f"`ssh-keygen -R '{known_hosts_name(self.hostname, self.port)}' "
                f"-f {self.known_hosts_file}`.",
                fingerprint=found,
            )
        if isinstance(exc, paramiko.PasswordRequiredException):
            reason = (f"its key file {self.key_file} is encrypted; load it into ssh-agent and "
                      "remove key_file, or use an unencrypted deploy key")
        elif isinstance(exc, paramiko.AuthenticationException):
            key = f"the key {self.key_file}" if self.key_file else "ssh-agent and ~/.ssh keys"
            reason = f"authentication as {self.user or 'the local user'} with {key} failed ({exc})"
        elif isinstance(exc, socket.gaierror):
            reason = f"the host name {self.hostname!r} does not resolve ({exc.strerror})"
        elif isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
            reason = "the connection was refused (is sshd running, and is the port right?)"
        elif isinstance(exc, TimeoutError | socket.timeout):
            reason = f"no answer within the connect time-out of {self.connect_timeout:g}s"
        elif isinstance(exc, paramiko.SSHException) and (
                "banner" in str(exc) or "No existing session" in str(exc)):
            # The latter is what paramiko says when the handshake outlives the time-out.
            reason = f"it did not complete an SSH handshake within {self.connect_timeout:g}s"
        elif isinstance(exc, OSError) and exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH,
                                                         errno.ENETUNREACH):
            reason = exc.strerror or str(exc)
        else:
            reason = f"{type(exc).__name__}: {exc}"
        return self._unreachable(reason)

    def _lost(self, argv: tuple[str, ...], cwd: str, why: str, *, repeated: bool) -> ConnectionLost:
        what = "again after it was repeated once" if repeated else (
            "and it was not repeated because it is not safe to repeat")
        return ConnectionLost(
            self.name,
            f"The connection to runner {self.name} ({self.address}) dropped while "
            f"`{shlex.join(argv)}` ran in {cwd} ({why}), {what}. Whether it finished is "
            "unknown: check the repo on the runner, then run again.",
        )


def _resolve(sftp: paramiko.SFTPClient, path: str) -> str:
    """``path`` with symlinks resolved by the runner; a missing file resolves its directory."""
    try:
        return sftp.normalize(path)
    except FileNotFoundError:
        directory, base = posixpath.split(path)
        return posixpath.join(sftp.normalize(directory or "."), base)


def _close_quietly(conn: fabric.Connection | paramiko.SFTPClient) -> None:
    with contextlib.suppress(Exception):
        conn.close()
