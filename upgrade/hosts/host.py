"""Where repositories live: one interface for running commands and touching files on a host.

Every step that touches a repo (read or write its Dockerfile, run git, run ``astro dev
parse``) goes through a :class:`Host`, so a repo can sit on this machine
(:class:`LocalHost`) or on a build host reached over SSH (a Fabric-backed host with the
same four methods). Nothing here knows about Dockerfiles or git.

Contract every implementation keeps:

* Commands are argument lists, never shell strings built from input.
* ``run`` never raises for a command that fails, times out or cannot be started: it
  returns a :class:`CommandResult` and lets the caller decide (``run_checked`` raises
  :class:`CommandFailed`). A command that cannot be found exits 127, one that cannot be
  executed 126, and a missing working directory exits 1, as a POSIX shell would; this keeps
  local and SSH hosts alike.
* Commands get no stdin unless given one and no controlling terminal, so nothing they
  start (git, ssh, astro) can stop to prompt; a time-out kills the whole process group.
* Text is UTF-8 and is read and written byte-exact (``newline=""``: CRLF survives).
  ``write_text`` is atomic (temp file in the same directory, then rename) and keeps the
  file's mode.

Hosts keep no per-call state, so one instance is shared by many worker threads.

For the SSH host: a remote command is necessarily one string, so it must be built as
``cd <quoted cwd> && exec <shlex.join(argv)>`` (every piece quoted, nothing interpolated),
and a time-out must kill the remote process group too, not just close the channel.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from upgrade.errors import CommandFailed
from upgrade.model.redact import Redactor

# After SIGTERM on time-out, how long the process group gets to exit before SIGKILL.
KILL_GRACE = 2.0
# How many trailing lines of stdout and stderr a CommandFailed message shows.
TAIL_LINES = 10


def _read_umask() -> int:
    # os.umask can only be read by setting it, which races with other threads creating
    # files; read it once, at import, while the program is still single-threaded.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@dataclass(frozen=True)
class CommandResult:
    """What one command did: its exit code, output and how long it took.

    ``exit_code`` is negative (``-signal``) when the process was killed, as on time-out.
    """

    argv: tuple[str, ...]
    cwd: str
    exit_code: int
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """True when the command exited 0 within its time-out."""
        return self.exit_code == 0 and not self.timed_out

    @property
    def command(self) -> str:
        """The command line, for messages (never run through a shell)."""
        return shlex.join(self.argv)


@runtime_checkable
class Host(Protocol):
    """A machine that holds repositories: run commands there, read and write its files."""

    name: str

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        timeout: float,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
    ) -> CommandResult:
        """Run ``argv`` in ``cwd``; the host's environment plus ``env``; never raises on failure."""
        ...

    def read_text(self, path: str) -> str:
        """The file's exact text (CRLF kept); FileNotFoundError if it is absent."""
        ...

    def write_text(self, path: str, text: str) -> None:
        """Replace the file atomically with ``text`` exactly, keeping its mode."""
        ...

    def exists(self, path: str) -> bool:
        """True if ``path`` exists (a file or a directory)."""
        ...


class LocalHost:
    """This machine: commands via subprocess, files via the local filesystem.

    ``kill_grace``: seconds a timed-out command's process group gets between SIGTERM and
    SIGKILL (``control_plane.kill_grace`` for the inventory's local runners).
    """

    def __init__(self, name: str = "local", *, kill_grace: float = KILL_GRACE) -> None:
        self.name = name
        self.kill_grace = kill_grace

    def __repr__(self) -> str:
        return f"LocalHost({self.name!r})"

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        timeout: float,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
    ) -> CommandResult:
        """Run ``argv`` in ``cwd`` in its own process group; kill the group on time-out."""
        args = check_argv(argv)
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        merged = dict(os.environ)
        if env:
            merged.update(env)
        started = time.monotonic()
        if not os.path.isdir(cwd):
            return _not_started(args, cwd, 1, f"cd: {cwd}: No such file or directory", started)
        try:
            proc = subprocess.Popen(
                args,
                cwd=cwd,
                env=merged,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                # A new session is a new process group (killable as one) with no
                # controlling terminal, so nothing below can prompt on the user's tty.
                start_new_session=True,
            )
        except FileNotFoundError:
            return _not_started(args, cwd, 127, f"{args[0]}: command not found", started)
        except PermissionError:
            return _not_started(args, cwd, 126, f"{args[0]}: Permission denied", started)
        data = stdin.encode("utf-8") if stdin is not None else None
        timed_out = False
        try:
            out, err = proc.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            out, err = _stop_group(proc, self.kill_grace)
        except BaseException:
            # Interrupted (Ctrl-C, a worker being torn down): never leave the group behind.
            _signal_group(proc.pid, signal.SIGKILL)
            _close_pipes(proc)
            proc.wait()
            raise
        return CommandResult(
            argv=args,
            cwd=cwd,
            exit_code=proc.returncode,
            stdout=_decode(out),
            stderr=_decode(err),
            duration=time.monotonic() - started,
            timed_out=timed_out,
        )

    def read_text(self, path: str) -> str:
        """The file's exact text (UTF-8, CRLF kept); FileNotFoundError if absent."""
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()

    def write_text(self, path: str, text: str) -> None:
        """Replace the file atomically (same-directory temp file, then rename), keeping its mode.

        A symlink is followed, so the link stays a link and its target gets the new text.
        A new file gets the usual mode for new files (0666 minus the umask).
        """
        target = os.path.realpath(path)
        directory, base = os.path.split(target)
        try:
            info: os.stat_result | None = os.stat(target)
        except FileNotFoundError:
            info = None
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, (info.st_mode & 0o7777) if info else (0o666 & ~_UMASK))
            if info is not None and (info.st_uid, info.st_gid) != _owner(tmp):
                # Only root may give a file away; otherwise keeping our ownership is fine.
                with contextlib.suppress(PermissionError):
                    os.chown(tmp, info.st_uid, info.st_gid)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(directory)

    def exists(self, path: str) -> bool:
        """True if ``path`` exists (a file or a directory; a dangling symlink does not)."""
        return os.path.exists(path)


def write_leftover(relpath: str) -> str:
    """The pattern of the temp file ``write_text`` leaves beside ``relpath`` when killed
    mid-write (``.Dockerfile.<random>.tmp``): our own litter, never the user's change."""
    folder, name = posixpath.split(relpath)
    return posixpath.join(folder, f".{name}.*.tmp")


def command_failed(
    host: str,
    result: CommandResult,
    *,
    env: Mapping[str, str] | None = None,
    action: str | None = None,
    kind: type[CommandFailed] = CommandFailed,
) -> CommandFailed:
    """The error for a failed ``result``: host, command, exit code and output tails.

    Values of secret-named environment variables (this process's and the command's own
    ``env``) and passwords in URLs are redacted from everything it carries.
    """
    redact = Redactor.from_env(os.environ, env or {})
    argv = tuple(redact(arg) for arg in result.argv)
    stdout_tail, stderr_tail = redact(_tail(result.stdout)), redact(_tail(result.stderr))
    if result.timed_out:
        what = f"timed out after {result.duration:.1f}s and was killed"
    else:
        what = f"exited with code {result.exit_code}"
    lines = [f"{action}." if action else "A command failed."]
    lines.append(f"On host {host}, in {result.cwd}: `{shlex.join(argv)}` {what}.")
    for label, tail in (("stdout", stdout_tail), ("stderr", stderr_tail)):
        if tail:
            lines.append(f"--- {label} (last {TAIL_LINES} lines) ---")
            lines.append(tail)
    if not (stdout_tail or stderr_tail):
        lines.append("It printed nothing.")
    return kind(
        "\n".join(lines), host=host, argv=argv, cwd=result.cwd, exit_code=result.exit_code,
        timed_out=result.timed_out, duration=result.duration, stdout_tail=stdout_tail,
        stderr_tail=stderr_tail, action=action,
    )


def run_checked(
    host: Host,
    argv: Sequence[str],
    *,
    cwd: str,
    timeout: float,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    action: str | None = None,
) -> CommandResult:
    """Run a command on ``host``; raise CommandFailed on a non-zero exit or a time-out.

    ``action`` is the first line of the error, saying what was being attempted
    ("Could not push branch ... of repo ...").
    """
    result = host.run(argv, cwd=cwd, timeout=timeout, env=env, stdin=stdin)
    if not result.ok:
        raise command_failed(host.name, result, env=env, action=action)
    return result


def check_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """``argv`` as a tuple of strings; TypeError/ValueError for a string or an empty list."""
    # A bare string is a Sequence[str] too; running it would run its first character.
    if isinstance(argv, str | bytes):
        raise TypeError(f"argv must be a list of arguments, not a string: {argv!r}")
    args = tuple(argv)
    if not args:
        raise ValueError("argv must not be empty")
    for arg in args:
        if not isinstance(arg, str):
            raise TypeError(f"every argument must be a str, got {type(arg).__name__}: {arg!r}")
    return args


def _not_started(
    args: tuple[str, ...], cwd: str, code: int, message: str, started: float
) -> CommandResult:
    return CommandResult(args, cwd, code, "", message + "\n", time.monotonic() - started)


def _stop_group(proc: subprocess.Popen[bytes], grace: float) -> tuple[bytes, bytes]:
    """TERM the process group, then KILL it; return whatever output was captured."""
    # Popen.communicate keeps what it has read across calls, so each call below returns
    # everything captured so far, not just the new part.
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
        try:
            out, err = proc.communicate(timeout=grace)
        except subprocess.TimeoutExpired as still:
            # Only something that left our group (its own setsid) can still hold the pipes.
            out, err = still.output, still.stderr
            _close_pipes(proc)
            proc.wait()
    else:
        # The leader exited, but members that ignored TERM may live on: kill them all.
        _signal_group(proc.pid, signal.SIGKILL)
    return out or b"", err or b""


def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    # ESRCH/EPERM: the whole group is already gone (or its pid now belongs to someone else).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _decode(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")


def _tail(text: str) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-TAIL_LINES:])


def _owner(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_uid, info.st_gid


def _fsync_dir(directory: str) -> None:
    # Makes the rename itself durable; some filesystems refuse, and that is not an error.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
