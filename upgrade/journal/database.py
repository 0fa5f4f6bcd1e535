"""What the Journal needs of a database, whichever backend holds it.

The Journal's SQL is one text for both backends, written with ``?`` placeholders (the
PostgreSQL side turns them into ``%s``). A backend gives it one connection shared by the
worker threads behind a ``threading.Lock`` (SQLite serialises writers anyway, and a
PostgreSQL session is one stream), serialised write transactions committed before
:meth:`Database.write` returns, consistent read snapshots, and the key of an inserted row.
``sqlite.SqliteDatabase`` and ``postgres.PostgresDatabase`` are the two.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from upgrade.journal.records import Row, iso, whoami
from upgrade.journal.schema import (
    SCHEMA_VERSION,
    Dialect,
    create_statements,
    meta_rows,
    upgrade_statements,
)

Params = Sequence[Any]


class Database(ABC):
    """One connection to one journal; safe to share between threads."""

    dialect: Dialect
    # What the driver raises when the database refuses a statement (a constraint, a type).
    row_errors: tuple[type[Exception], ...]

    def __init__(self, where: str):
        self.where = where  # the file, or the URL without a password: for messages
        self._lock = threading.Lock()

    # -- what a backend provides ------------------------------------------------------------

    @abstractmethod
    def execute(self, sql: str, params: Params = ()) -> Any:
        """Run one statement on the connection; a DB-API cursor (fetchone, rowcount, ...)."""

    @abstractmethod
    def insert(self, sql: str, params: Params, key: str) -> int:
        """Run an INSERT of one row; the value of its generated ``key`` column."""

    @abstractmethod
    def _begin(self, write: bool, durable: bool = True) -> None:
        """Start a transaction: serialised with every other writer when ``write``; its
        commit waits for the disk unless not ``durable``."""

    @abstractmethod
    def _end(self, commit: bool) -> None:
        """Commit (as _begin said) or roll back the open transaction."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection; everything was already committed."""

    @abstractmethod
    def restart_ids(self) -> None:
        """After rows were inserted with explicit keys (an import), make the next generated
        keys follow them."""

    # -- what the Journal uses -----------------------------------------------------------------

    @contextmanager
    def write(self, durable: bool = True) -> Iterator[Database]:
        """One write transaction, committed before the ``with`` block is left: on disk, or
        (not ``durable``) safe from a killed process and on disk with the next durable one."""
        with self._lock:
            self._begin(write=True, durable=durable)
            try:
                yield self
            except BaseException:
                self._end(commit=False)
                raise
            self._end(commit=True)

    @contextmanager
    def snapshot(self) -> Iterator[Database]:
        """One read-only transaction: every read inside sees the same committed state."""
        with self._lock:
            self._begin(write=False)
            try:
                yield self
            finally:
                self._end(commit=False)

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        """The rows of one query, read outside any transaction of ours."""
        with self._lock:
            return self.execute(sql, params).fetchall()

    def columns(self, table: str) -> list[str]:
        """The columns of one of our tables, in order."""
        cursor = self.execute(f"SELECT * FROM {table} WHERE 1 = 0")
        return [d[0] for d in cursor.description]


def create_schema(db: Database) -> None:
    """Inside a write transaction: the tables and meta rows of a new journal."""
    for statement in create_statements(db.dialect):
        db.execute(statement)
    for key, value in meta_rows():
        db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))


def migrate(db: Database, found: int) -> None:
    """Inside a write transaction: from schema ``found`` to ours, recorded as an event."""
    for statement in upgrade_statements(db.dialect, found):
        db.execute(statement)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
    db.execute("INSERT INTO events (at, kind, message, actor) VALUES (?, ?, ?, ?)",
               (iso(datetime.now(UTC)), "schema_migrated",
                f"journal schema {found} → {SCHEMA_VERSION}", whoami()))
