"""One writer per journal on PostgreSQL: a session-level advisory lock held for a whole run,
and the ``run_lock`` row that names its holder.

The lock belongs to the database session the run writes the journal through, so it cannot
outlive that session: a holder that is killed, crashes or is cut off loses its session (at
once when its process dies, within about 30 s when its machine vanishes: the session's TCP
keepalives, ``postgres``), and with it the lock, and it can write nothing more, because
every write goes through that same session. Two orchestrators on two machines therefore
never run the same journal's rollout at once. Its key is (``RUN_LOCK_CLASS``, the
journal's schema), so journals in two schemas of one database do not block each other.

The row names user, host, pid, since and command, and the session (``session_pid``) that
holds the lock, so a refused run says who to wait for. A clean exit deletes it; a row left
when the lock is free means its run ended without one, and the next run takes over and
says so (a journalled note).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime

from upgrade.errors import JournalUnreachable, LockHeld
from upgrade.journal.lock import Holder
from upgrade.journal.postgres import RUN_LOCK_CLASS, PostgresDatabase
from upgrade.journal.records import iso, os_user

_WRITE_GRACE = 0.5  # seconds a new holder may take between locking and writing its row
_WAIT_HINT = ("Wait for it. A run that died loses the lock with its database session (at "
              "once, or within about 30 s if its machine vanished).")


class PostgresRunLock:
    """Hold the journal's PostgreSQL run lock, in ``db``'s session, for a ``with`` block.

    ``note`` is set when the lock was taken over from a run that ended without releasing
    it; the caller prints it and records it as a journal event.
    """

    def __init__(self, db: PostgresDatabase, command: str, *,
                 clock: Callable[[], datetime] | None = None):
        """Prepare to lock ``db``'s journal for ``command`` ("invoke upgrade --wave 2")."""
        self.db = db
        self.command = command
        self.note: str | None = None
        self._clock = clock or (lambda: datetime.now(UTC))
        self._held = False

    def acquire(self) -> str | None:
        """Take the lock or raise LockHeld naming the holder; returns the takeover note."""
        if self._held:
            raise RuntimeError(f"{self.db.where}: the run lock is already held by this lock")
        _take_or_refuse(self.db, self._clock)
        self._held = True
        try:
            now = self._clock()
            with self.db.write() as db:
                left = _row(db)
                db.execute("DELETE FROM run_lock")
                db.execute("INSERT INTO run_lock (id, login, host, pid, since, command, "
                           "session_pid) VALUES (1, ?, ?, ?, ?, ?, ?)",
                           (os_user(), socket.gethostname(), os.getpid(), iso(now),
                            self.command, db.session_pid))
        except BaseException:
            self.release()
            raise
        self.note = None if left is None else _takeover_note(left, now)
        return self.note

    def release(self) -> None:
        """Delete our row and drop the lock. On a lost session both are gone already."""
        if not self._held:
            return
        self._held = False
        try:
            with self.db.write() as db:
                db.execute("DELETE FROM run_lock WHERE session_pid = ?", (db.session_pid,))
            self.db.execute("SELECT pg_advisory_unlock(?, ?)", (RUN_LOCK_CLASS, self.db.key))
        except JournalUnreachable:
            pass  # the server ended the session, and its lock with it

    def __enter__(self) -> PostgresRunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def force_unlock_postgres(db: PostgresDatabase, *, now: datetime | None = None) -> str | None:
    """Clear the holder row left by a run that ended without a clean exit (``invoke
    unlock``); what was cleared, or None. LockHeld while a live session holds the lock."""
    moment = now or datetime.now(UTC)
    _take_or_refuse(db, lambda: moment, live=True)
    try:
        with db.write() as tx:
            left = _row(tx)
            tx.execute("DELETE FROM run_lock")
    finally:
        db.execute("SELECT pg_advisory_unlock(?, ?)", (RUN_LOCK_CLASS, db.key))
    return None if left is None else f"cleared the journal lock left by {left.describe(moment)}."


def live_holder_postgres(db: PostgresDatabase) -> Holder | None:
    """The run holding the lock now (a live session holds it), or None; takes no lock."""
    return _holder(db)[0]


# -- helpers ------------------------------------------------------------------------------


def _try(db: PostgresDatabase) -> bool:
    return bool(db.execute("SELECT pg_try_advisory_lock(?, ?) AS got",
                           (RUN_LOCK_CLASS, db.key)).fetchone()["got"])


def _take_or_refuse(db: PostgresDatabase, clock: Callable[[], datetime], *,
                    live: bool = False) -> None:
    """Take the advisory lock, or raise LockHeld naming the session that holds it."""
    deadline = time.monotonic() + _WRITE_GRACE
    while not _try(db):
        holder, session = _holder(db)
        if holder is not None or (session is not None and time.monotonic() >= deadline):
            who = (holder.describe(clock()) if holder is not None
                   else f"a run that has not written its details yet (database session {session})")
            if live:
                raise LockHeld(f"a live run holds the journal lock: {who}. It is not stale, so "
                               "it was not cleared: wait for that run, or stop it first.")
            raise LockHeld(f"another run holds the journal lock: {who}. {_WAIT_HINT}")
        time.sleep(0.05)  # a holder still writing its row, or one that just let go


def _holder(db: PostgresDatabase) -> tuple[Holder | None, int | None]:
    """The holder's row and session while the lock is held (None, None when it is free)."""
    rows = db.rows(
        "SELECT l.pid AS session, r.login, r.host, r.pid, r.since, r.command "
        "FROM pg_locks l LEFT JOIN run_lock r ON r.session_pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
        "AND l.classid::bigint = ? AND l.objid::bigint = ? "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        (RUN_LOCK_CLASS, db.key & 0xFFFFFFFF))
    if not rows:
        return None, None
    r = rows[0]
    if r["login"] is None:
        return None, r["session"]
    return Holder(r["login"], r["host"], r["pid"], datetime.fromisoformat(r["since"]),
                  r["command"]), r["session"]


def _row(db: PostgresDatabase) -> Holder | None:
    r = db.execute("SELECT login, host, pid, since, command FROM run_lock").fetchone()
    if r is None:
        return None
    return Holder(r["login"], r["host"], r["pid"], datetime.fromisoformat(r["since"]),
                  r["command"])


def _takeover_note(left: Holder, now: datetime) -> str:
    return (f"took over the journal lock left by {left.describe(now)}: its database session "
            "ended, so that run was killed, crashed or lost the database. If it lost the "
            f"database, steps it had in flight on {left.host} may still be finishing.")
