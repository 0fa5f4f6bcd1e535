"""The configured journal: the one place a command opens it, and takes its run lock.

``journal: <dir>`` (the default, ``.upgrade``) is a SQLite file, ``<dir>/journal.db``,
locked by a ``flock`` on ``<dir>/lock`` (``sqlite``, ``lock``): one engineer, one
machine. ``journal: postgresql://...`` is a database a team shares (``postgres``,
``advisory``): the run lock is held by the very session the run writes through, so a run
that loses its session loses its lock and its ability to write at the same moment.
Callers never branch on which one it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from upgrade.config.settings import JournalSettings
from upgrade.journal.lock import Holder, RunLock, force_unlock
from upgrade.journal.lock import live_holder as lock_holder
from upgrade.journal.store import Journal

Clock = Callable[[], datetime]
TAKEOVER_EVENT = "lock_taken_over"


def open_journal(settings: JournalSettings, *, clock: Clock | None = None,
                 actor: str | None = None) -> Journal:
    """The journal, created if there is none yet (without taking the run lock)."""
    if settings.url is None:
        return Journal.open(settings.file, clock=clock, actor=actor)
    from upgrade.journal.postgres import open_database

    db = open_database(settings.url, settings.where, password=settings.password())
    assert db is not None  # create=True
    return Journal(db, clock=clock, actor=actor)


def existing_journal(settings: JournalSettings) -> Journal | None:
    """The journal if one was made already (to read it), else None; creates nothing."""
    if settings.url is None:
        return Journal.existing(settings.file)
    from upgrade.journal.postgres import open_database

    db = open_database(settings.url, settings.where, password=settings.password(),
                       create=False)
    return None if db is None else Journal(db)


class Locked:
    """One command's hold on the run lock: read the journal first, open it for writing
    only once the command has decided to write (a refused command changes nothing)."""

    def __init__(self, note: str | None, read: Callable[[], Journal | None],
                 write: Callable[[], Journal]):
        self.note = note  # the lock was taken over from a run that ended without releasing it
        self._read, self._write = read, write
        self._journal: Journal | None = None
        self._noted = False

    def existing(self) -> Journal | None:
        """The journal to read, under the lock; None when there is none yet (nothing made)."""
        if self._journal is None:
            self._journal = self._read()
        return self._journal

    def journal(self) -> Journal:
        """The journal to write (made if there is none yet), the takeover note recorded."""
        if self._journal is None:
            self._journal = self._write()
        if self.note and not self._noted:
            self._journal.event(TAKEOVER_EVENT, message=self.note)
            self._noted = True
        return self._journal

    def close(self) -> None:
        """Close whatever was opened."""
        if self._journal is not None:
            self._journal.close()


@contextmanager
def run_lock(settings: JournalSettings, command: str, *,
             clock: Clock | None = None) -> Iterator[Locked]:
    """The run lock (its holder named ``command``) for one command that may write."""
    if settings.url is None:
        with RunLock(settings.dir, command) as lock:
            held = Locked(lock.note,
                          lambda: (Journal.open(settings.file, clock=clock)
                                   if settings.file.exists() else None),
                          lambda: Journal.open(settings.file, clock=clock))
            try:
                yield held
            finally:
                held.close()
        return
    from upgrade.journal.advisory import PostgresRunLock
    from upgrade.journal.postgres import PostgresDatabase

    # The advisory lock lives in the session the run writes through, so that session is
    # opened (and the schema made, if new) before anything else.
    with open_journal(settings, clock=clock) as journal:
        db = journal.database
        assert isinstance(db, PostgresDatabase)
        with PostgresRunLock(db, command) as lock:
            yield Locked(lock.note, lambda: journal, lambda: journal)


@contextmanager
def locked_journal(settings: JournalSettings, command: str, *,
                   clock: Clock | None = None) -> Iterator[tuple[Journal, str | None]]:
    """The run lock (its holder named ``command``) and the journal, for one command that
    writes. Yields (journal, note): the note says the lock was taken over from a run that
    ended without releasing it, and is already recorded as a ``lock_taken_over`` event."""
    with run_lock(settings, command, clock=clock) as held:
        yield held.journal(), held.note


def live_holder(settings: JournalSettings, journal: Journal) -> Holder | None:
    """The run holding ``journal``'s run lock now, or None; takes no lock."""
    if settings.url is None:
        return lock_holder(settings.dir)
    from upgrade.journal.advisory import live_holder_postgres
    from upgrade.journal.postgres import PostgresDatabase

    db = journal.database
    assert isinstance(db, PostgresDatabase)
    return live_holder_postgres(db)


def unlock(settings: JournalSettings) -> str | None:
    """Clear the lock's holder left by a run that died (``invoke unlock``); what was
    cleared, or None. LockHeld while a live run holds the lock."""
    if settings.url is None:
        return force_unlock(settings.dir)
    from upgrade.journal.advisory import force_unlock_postgres
    from upgrade.journal.postgres import PostgresDatabase

    journal = existing_journal(settings)
    if journal is None:
        return None
    with journal:
        db = journal.database
        assert isinstance(db, PostgresDatabase)
        return force_unlock_postgres(db)
