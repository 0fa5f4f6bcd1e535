"""One writer per journal: an advisory ``flock`` on ``<journal dir>/lock`` for a whole run.

The kernel releases a ``flock`` when its holder dies, however it dies, so the lock can
never outlive a killed run. The file also names the holder (user, host, pid, since,
command) so a refused run can say who to wait for; a clean exit empties it, and a
name left in a free lock means the holder died: the next run takes over and says so.

The file is never deleted: a run that opened the old file just before a delete would
lock a different inode than the next run creates, and both would "hold" the lock.

NFS: Linux maps ``flock`` to NFS byte-range locks, which the server enforces across
hosts, but a mount with ``nolock`` (or ``local_lock=flock``) keeps locks local to
each host. Keep the journal on a local disk, or make sure such a mount is not used.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from upgrade.errors import JournalError, LockHeld
from upgrade.journal.records import os_user
from upgrade.journal.sqlite import ensure_private_dir

LOCK_FILE = "lock"
_UNLOCK_HINT = "Wait for it, or if it is dead run `astro-fleet unlock`."
_WRITE_GRACE = 0.5  # seconds a new holder may take between flock() and writing its name


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) the lock, as written in the lock file."""

    user: str
    host: str
    pid: int
    since: datetime
    command: str

    def describe(self, now: datetime) -> str:
        """``<command> by <user> on <host>, pid <pid>, since <since> (<age> ago)``."""
        return (f"{self.command} by {self.user} on {self.host}, pid {self.pid}, "
                f"since {_utc(self.since)} ({_age((now - self.since).total_seconds())} ago)")

    def to_json(self) -> str:
        """The lock file's content."""
        return json.dumps({"user": self.user, "host": self.host, "pid": self.pid,
                           "since": _utc(self.since), "command": self.command}) + "\n"

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        """Read a lock file's content; None when it is empty or not ours."""
        try:
            d = json.loads(text)
            since = datetime.fromisoformat(d["since"].replace("Z", "+00:00"))
            return cls(str(d["user"]), str(d["host"]), int(d["pid"]), since, str(d["command"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


class RunLock:
    """Hold the journal's lock for the duration of a ``with`` block.

    ``note`` is set when the lock was taken over from a run that died; the caller
    prints it and records it as a journal event.
    """

    def __init__(self, journal_dir: str | Path, command: str, *,
                 clock: Callable[[], datetime] | None = None):
        """Prepare to lock ``<journal_dir>/lock`` for ``command`` ("invoke upgrade --wave 2")."""
        self.path = Path(journal_dir) / LOCK_FILE
        self.command = command
        self.note: str | None = None
        self._clock = clock or (lambda: datetime.now(UTC))
        self._fd: int | None = None

    def acquire(self) -> str | None:
        """Take the lock or raise LockHeld naming the holder; returns the takeover note."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this RunLock")
        ensure_private_dir(self.path.parent)
        fd = _open(self.path)
        try:
            if not _try_flock(fd, self.path):
                raise LockHeld(_held_message(_wait_for_holder(fd), self.path, self._clock()))
            left = _read(fd)
            now = self._clock()
            note = _takeover_note(left, now) if left.strip() else None
            me = Holder(os_user(), socket.gethostname(), os.getpid(), now, self.command)
            _overwrite(fd, me.to_json())
        except BaseException:
            os.close(fd)  # closing also drops the flock, if it was taken
            raise
        self._fd, self.note = fd, note
        return note

    def release(self) -> None:
        """Empty the lock file (a clean exit leaves no name behind) and drop the lock."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            _overwrite(fd, "")
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def force_unlock(journal_dir: str | Path, *, now: datetime | None = None) -> str | None:
    """Clear a lock left by a dead run (``astro-fleet unlock``); returns what was cleared.

    Refuses with LockHeld while a live run holds the lock. None when there was nothing
    to clear.
    """
    path = Path(journal_dir) / LOCK_FILE
    now = now or datetime.now(UTC)
    if not path.exists():
        return None
    fd = _open(path)
    try:
        if not _try_flock(fd, path):
            holder = _wait_for_holder(fd)
            who = holder.describe(now) if isinstance(holder, Holder) else holder
            raise LockHeld(f"a live run holds the journal lock: {who}. It is not stale, so it "
                           "was not cleared: wait for that run, or stop it first.")
        left = _read(fd)
        if not left.strip():
            return None
        _overwrite(fd, "")
        holder = Holder.parse(left)
        what = holder.describe(now) if holder else f"unreadable content {left.strip()[:200]!r}"
        return f"cleared the journal lock left by {what}."
    finally:
        os.close(fd)


def live_holder(journal_dir: str | Path) -> Holder | None:
    """The run holding the lock now, or None; takes no lock (``status`` reads it while a run
    may be starting). The lock file names its holder until a clean exit empties it; a name
    left by a process of this host that is gone is no holder. A holder on another host
    (a journal on NFS) cannot be checked from here and counts as live."""
    try:
        holder = Holder.parse((Path(journal_dir) / LOCK_FILE).read_text("utf-8", "replace"))
    except OSError:
        return None
    if holder is None or (holder.host == socket.gethostname() and not _pid_alive(holder.pid)):
        return None
    return holder


# -- helpers ------------------------------------------------------------------------------


def _open(path: Path) -> int:
    # O_CLOEXEC: a child (astro deploy, git) must not inherit the lock and keep it alive
    # after this run dies.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    with contextlib.suppress(OSError):
        if os.fstat(fd).st_uid == os.getuid():
            os.fchmod(fd, 0o600)
    return fd


def _try_flock(fd: int, path: Path) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        raise JournalError(f"{path}: cannot lock the journal ({exc.strerror}). Put the journal "
                           "directory on a filesystem that supports locks (a local disk).") from exc
    return True


def _read(fd: int) -> str:
    size = os.fstat(fd).st_size
    return os.pread(fd, size, 0).decode("utf-8", "replace") if size else ""


def _overwrite(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    if text:
        os.pwrite(fd, text.encode(), 0)
    os.fsync(fd)


def _wait_for_holder(fd: int) -> Holder | str:
    """The holder's details; a new holder may not have written them yet, so wait briefly."""
    deadline = time.monotonic() + _WRITE_GRACE
    while True:
        text = _read(fd)
        holder = Holder.parse(text)
        if holder is not None:
            return holder
        if time.monotonic() >= deadline:
            return (f"unreadable lock details {text.strip()[:200]!r}" if text.strip()
                    else "a run that has not written its details yet")
        time.sleep(0.05)


def _held_message(holder: Holder | str, path: Path, now: datetime) -> str:
    who = holder.describe(now) if isinstance(holder, Holder) else f"{holder} ({path})"
    return f"another run holds the journal lock: {who}. {_UNLOCK_HINT}"


def _takeover_note(left: str, now: datetime) -> str:
    holder = Holder.parse(left)
    if holder is None:
        return f"took over the journal lock; it held unreadable details {left.strip()[:200]!r}."
    who = holder.describe(now)
    if holder.host != socket.gethostname():
        return (f"took over the journal lock left by {who}: the lock was free, so that run "
                f"ended or died. If the journal is on NFS mounted without locking, make sure "
                f"no run is still going on {holder.host}.")
    if _pid_alive(holder.pid):
        return (f"took over the journal lock left by {who}: pid {holder.pid} is running but "
                "does not hold the lock (the pid was reused); that run ended without a clean exit.")
    return f"took over the journal lock left by {who}: that process is gone (killed or crashed)."


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _age(seconds: float) -> str:
    s = max(0, int(seconds))
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{s:02d}s"
    return f"{s}s"
