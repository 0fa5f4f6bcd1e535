"""The journal in a PostgreSQL database: connecting, opening only our own tables, and the
one connection (a session) a run writes through.

The journal's tables live in the connection's current schema (``public`` unless the URL
sets ``?options=-csearch_path%3Dname``), so one database can hold several journals. A
schema with no tables becomes a journal; one holding another application's tables, or a
journal of a newer schema, is refused before anything is written; an older schema is
migrated in one transaction. Each session asks the server for what the journal's
promises need, whatever the server's defaults:

* ``synchronous_commit = on``: a transition is on the server's disk before the method
  that made it returns (the step after one may be ``astro deploy``);
* ``idle_session_timeout = 0``: a run may be idle for many minutes between transitions,
  and ending its session would drop its run lock (``advisory``);
* TCP keepalives and a user time-out on both ends: a holder whose machine vanished loses
  its session (and so its lock) in about 30 s, and a run whose database vanished stops
  instead of hanging.

Every write transaction first takes a transaction-level advisory lock, so writers are
serialised as SQLite's ``BEGIN IMMEDIATE`` serialises them (a high-water mark is compared
in Python, by Runtime version, before it is raised) and event ``seq`` order is commit
order. A lost connection becomes :class:`JournalUnreachable` (exit 7): what was not
committed is not recorded, and the same command resumes once the database is back.
"""

from __future__ import annotations

import os
import zlib
from contextlib import suppress
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from upgrade.errors import JournalError, JournalUnreachable
from upgrade.journal.database import Database, Params, create_schema, migrate
from upgrade.journal.schema import APPLICATION_NAME, SCHEMA_VERSION
from upgrade.model.redact import Redactor

MIN_SERVER_VERSION = 120000  # PostgreSQL 12: identity columns, EXECUTE FUNCTION triggers
RUN_LOCK_CLASS = 0x41465552  # "AFUR": the run lock, held by a run's session (advisory.py)
WRITE_LOCK_CLASS = 0x41465557  # "AFUW": one write transaction at a time

# libpq settings, unless the URL gives its own.
CLIENT_DEFAULTS = {
    "application_name": APPLICATION_NAME,
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "15",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",  # ms: unacknowledged data for longer ends the connection
}
# The server's side of this session (see the module's docstring). Set through pg_settings
# so a setting an older server lacks (idle_session_timeout came in 14) is skipped.
SESSION_SETTINGS = {
    "synchronous_commit": "on",
    "idle_session_timeout": "0",
    "idle_in_transaction_session_timeout": "0",
    "default_transaction_isolation": "read committed",
    "default_transaction_read_only": "off",
    "tcp_keepalives_idle": "15",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "30000",
}
_UNREACHABLE = (psycopg.OperationalError, psycopg.InterfaceError)


@lru_cache(maxsize=256)
def _placeholders(sql: str) -> str:
    """The journal's ``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def schema_key(schema: str) -> int:
    """The second half of this journal's advisory lock keys: its schema, as a signed int4."""
    return zlib.crc32(schema.encode()) - 2**31


class PostgresDatabase(Database):
    """One session with the journal's database (autocommit; transactions are explicit)."""

    dialect = "postgresql"
    row_errors = (psycopg.Error,)  # a lost connection is JournalUnreachable by then

    def __init__(self, conn: psycopg.Connection[Any], where: str, redact: Redactor):
        super().__init__(where)
        self.conn = conn
        self._redact = redact
        self.schema = ""  # the journal's schema, once known (_identify)
        self.key = 0

    # -- the Database interface -------------------------------------------------------------

    def execute(self, sql: str, params: Params = ()) -> Any:
        try:
            if not params:
                return self.conn.execute(sql)  # type: ignore[arg-type]  # our own SQL text
            return self.conn.execute(_placeholders(sql), tuple(params))  # type: ignore[arg-type]
        except _UNREACHABLE as exc:
            raise self.lost(exc) from exc
        except psycopg.errors.InsufficientPrivilege as exc:
            raise JournalError(
                f"{self.where}: the database refused this user ({self._reason(exc)}). Grant "
                f"it the use of schema {self.schema or 'public'} (CREATE, to make the journal "
                "the first time; SELECT, INSERT, UPDATE, DELETE on its tables after that), or "
                "point the journal at a database it owns.") from exc

    def insert(self, sql: str, params: Params, key: str) -> int:
        return int(self.execute(f"{sql} RETURNING {key}", params).fetchone()[key])

    def restart_ids(self) -> None:
        for table, column in (("rollouts", "id"), ("events", "seq")):
            self.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                         f"coalesce(max({column}), 0) + 1, false) FROM {table}")

    def _begin(self, write: bool, durable: bool = True) -> None:
        if write:
            # One statement (no parameters: simple protocol), so one round trip. Not durable:
            # this commit does not wait for the server's WAL flush (for this transaction
            # only); the next durable commit flushes it with everything before it.
            relax = "" if durable else "; SET LOCAL synchronous_commit = off"
            self.execute(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK_CLASS}, {self.key})"
                         + relax)
        else:
            self.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def _end(self, commit: bool) -> None:
        if commit:
            self.execute("COMMIT")
            return
        # After a lost connection there is nothing to roll back: the server already did.
        with suppress(psycopg.Error):
            if not self.conn.closed:
                self.conn.execute("ROLLBACK")

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    # -- what the run lock uses ---------------------------------------------------------------

    @property
    def session_pid(self) -> int:
        """The server process of this session (``pg_backend_pid()``)."""
        return int(self.conn.info.backend_pid)

    def lost(self, exc: BaseException) -> JournalUnreachable:
        """The error a lost or failed connection is reported as (exit 7)."""
        return JournalUnreachable(
            f"the journal database {self.where} failed or cannot be reached "
            f"({self._reason(exc)}). Nothing after its last committed change was recorded. "
            "Once it is back, run the same command again: it resumes from the journal.")

    def _reason(self, exc: BaseException) -> str:
        lines = str(exc).strip().splitlines()
        return self._redact(lines[0] if lines else type(exc).__name__)

    # -- opening --------------------------------------------------------------------------------

    def _identify(self) -> int | None:
        """None for a schema with no tables, else our journal's schema version; raise
        JournalError unless it is our journal at a schema we can read."""
        row = self.execute("SELECT current_schema() AS schema, pg_is_in_recovery() AS standby, "
                           "current_setting('server_version_num')::int AS version").fetchone()
        if row["schema"] is None:
            raise JournalError(f"{self.where}: no schema of the search_path exists, so there "
                               "is nowhere to keep the journal. Create the schema, or fix "
                               "the URL's search_path.")
        if row["version"] < MIN_SERVER_VERSION:
            raise JournalError(f"{self.where}: PostgreSQL {row['version'] // 10000} is too old "
                               "for the journal; it needs PostgreSQL 12 or newer.")
        if row["standby"]:
            raise JournalError(f"{self.where} is a read-only standby. Point the journal at "
                               "the primary.")
        self.schema, self.key = row["schema"], schema_key(row["schema"])
        tables = {r["table_name"] for r in self.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
            (self.schema,)).fetchall()}
        if not tables:
            return None
        where = f"{self.where} (schema {self.schema})"
        if "meta" not in tables:
            raise _foreign(where)
        meta = {r["key"]: r["value"] for r in self.execute("SELECT key, value FROM meta")}
        if meta.get("application") != APPLICATION_NAME:
            raise _foreign(where)
        try:
            version = int(meta.get("schema_version", ""))
        except ValueError:
            raise JournalError(f"{where}: the journal's schema version is missing. It was "
                               "left untouched.") from None
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"{where} was written by a newer version of this tool (journal schema "
                f"{version}; this version reads schema {SCHEMA_VERSION}). It was left "
                "untouched: upgrade the tool to continue this journal.")
        return version


def _foreign(where: str) -> JournalError:
    return JournalError(
        f"{where} holds tables of another application, not an upgrade journal. It was left "
        "untouched: point the journal at a database (or a schema, with "
        "?options=-csearch_path%3Dname) of its own.")


def connect(url: str, where: str, password: str | None = None) -> PostgresDatabase:
    """A session with the journal's database, set up for the journal's promises."""
    redact = Redactor.from_env(os.environ).also(password)  # PGPASSWORD is secret-named
    params: dict[str, Any] = {**CLIENT_DEFAULTS, **conninfo_to_dict(url)}
    if password:
        params["password"] = password
    try:
        conn = psycopg.connect(autocommit=True, row_factory=dict_row, **params)
    except psycopg.Error as exc:
        lines = str(exc).strip().splitlines()
        reason = redact(lines[0] if lines else type(exc).__name__)
        raise JournalUnreachable(
            f"cannot connect to the journal database {where} ({reason}). Check that it is up "
            "and reachable from here, and the password (PGPASSWORD, ~/.pgpass, or the "
            "variable named by journal.password_env).") from exc
    db = PostgresDatabase(conn, where, redact)
    try:
        db.execute("SELECT set_config(s.name, s.value, false) FROM (VALUES "
                   + ", ".join("(?, ?)" for _ in SESSION_SETTINGS)
                   + ") AS s (name, value) WHERE s.name IN (SELECT name FROM pg_settings)",
                   [v for pair in SESSION_SETTINGS.items() for v in pair])
    except BaseException:
        db.close()
        raise
    return db


def _settle(db: PostgresDatabase) -> None:
    """Create or migrate in one transaction, which leaves nothing changed if it fails."""
    found: int | None = None
    try:
        with db.write():
            # Another run may have created or migrated it since we looked.
            found = db._identify()
            if found is None:
                create_schema(db)
            elif found < SCHEMA_VERSION:
                migrate(db, found)
    except psycopg.Error as exc:  # not a lost connection: execute() maps those
        what = "create the journal in" if not found else (
            f"migrate the journal from schema {found} to {SCHEMA_VERSION} in")
        raise JournalError(f"could not {what} {db.where} (schema {db.schema}): "
                           f"{db._reason(exc)}. Nothing was changed.") from exc


def open_database(url: str, where: str, *, password: str | None = None,
                  create: bool = True) -> PostgresDatabase | None:
    """The journal at ``url``: created in an empty schema (None instead unless ``create``),
    migrated from an older schema; anything else that is not our journal is refused."""
    db = connect(url, where, password)
    try:
        found = db._identify()
        if found is None and not create:
            db.close()
            return None
        if found is None or found < SCHEMA_VERSION:
            _settle(db)
    except BaseException:
        db.close()
        raise
    return db
