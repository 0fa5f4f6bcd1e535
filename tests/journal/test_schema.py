"""One schema on both backends, and schema 1 (in users' hands) migrated in place.

The tables are compared as each database describes them (SQLite's PRAGMAs, PostgreSQL's
catalog), never as the statements that made them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.journal.helpers import TARGET, V, entries, sha256
from upgrade.config.settings import JournalSettings
from upgrade.errors import JournalError
from upgrade.journal.schema import SCHEMA_VERSION, TABLES, create_statements, meta_rows
from upgrade.journal.sqlite import APPLICATION_ID
from upgrade.journal.store import Journal

ALL_TABLES = {"meta", "run_lock", *TABLES}


# -- how each database describes its tables ------------------------------------------------


def describe_sqlite(path: Path) -> dict[str, Any]:
    db = sqlite3.connect(path)
    try:
        tables = sorted(r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"))
        return {
            "columns": {t: [(c[1], c[2].upper(), bool(c[3] or c[5]), c[4], c[5])
                            for c in db.execute(f"PRAGMA table_info({t})")] for t in tables},
            "indexes": sorted(r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")),
            "triggers": sorted(r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'")),
        }
    finally:
        db.close()


def describe_postgres(url: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as db:
        schema = db.execute("SELECT current_schema()").fetchone()[0]
        columns: dict[str, list[tuple[Any, ...]]] = {}
        pk = {(r[0], r[1]): r[2] for r in db.execute(
            "SELECT c.relname, a.attname, array_position(i.indkey::int2[], a.attnum) + 1 "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indisprimary AND n.nspname = %s", (schema,))}
        for table, name, type_, nullable, default, identity in db.execute(
                "SELECT table_name, column_name, data_type, is_nullable, column_default, "
                "is_identity FROM information_schema.columns WHERE table_schema = %s "
                "ORDER BY table_name, ordinal_position", (schema,)):
            key = pk.get((table, name), 0)
            default = None if default is None else default.split("::")[0]
            columns.setdefault(table, []).append(
                (name, type_.upper(), nullable == "NO", default, key, identity == "YES"))
        indexes = sorted(r[0] for r in db.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND indexname NOT LIKE "
            "'%%_pkey'", (schema,)))
        triggers = sorted({r[0] for r in db.execute(
            "SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = %s",
            (schema,))} | {r[0] for r in db.execute(
                "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND NOT t.tgisinternal", (schema,))})
        return {"columns": dict(sorted(columns.items())), "indexes": indexes,
                "triggers": triggers}


def describe(settings: JournalSettings) -> dict[str, Any]:
    return describe_sqlite(settings.file) if settings.url is None else describe_postgres(
        settings.url)


# -- a journal written by the first release ----------------------------------------------


@contextmanager
def raw(settings: JournalSettings) -> Iterator[Callable[..., Any]]:
    """An execute() on the journal's database behind the tool's back, committed at the end."""
    if settings.url is None:
        settings.file.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(settings.file)
        try:
            yield lambda sql, params=(): db.execute(sql, params)
            db.commit()
        finally:
            db.close()
    else:
        with psycopg.connect(settings.url) as conn:  # one transaction, committed on exit
            yield lambda sql, params=(): conn.execute(
                sql.replace("?", "%s"), params or None)


def write_schema_1_journal(settings: JournalSettings) -> None:
    """Schema 1 with a rollout, three Deployments registered in the order c, a, b, and
    their events: what the first release left in users' hands."""
    dialect = "sqlite" if settings.url is None else "postgresql"
    at = "2026-03-01T12:00:00.000000+00:00"
    with raw(settings) as run:
        for statement in create_statements(dialect, 1):
            run(statement)
        if settings.url is None:
            run(f"PRAGMA application_id = {APPLICATION_ID}")
        for key, value in meta_rows(1):
            run("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
        run("INSERT INTO rollouts (id, target_spec, target_version, inventory, created_at, "
            "created_by, status) VALUES (1, '12.4', '12.4.2', 'inventory.yaml', ?, 'old@ci', "
            "'active')", (at,))
        run("INSERT INTO waves (rollout_id, number) VALUES (1, 1)")
        for seq, dep in enumerate(("c", "a", "b"), start=1):
            run("INSERT INTO deployments (rollout_id, deployment_id, name, repo, wave, "
                "to_version, updated_at) VALUES (1, ?, ?, 'repo', 1, '12.4.2', ?)",
                (dep, f"name-{dep}", at))
            run("INSERT INTO events (seq, at, rollout_id, wave, deployment_id, kind, "
                "to_state, actor) VALUES (?, ?, 1, 1, ?, 'registered', 'pending', 'old@ci')",
                (seq, at, dep))
        if settings.url is not None:  # as a generated key would have left them
            run("SELECT setval(pg_get_serial_sequence('rollouts', 'id'), 1)")
            run("SELECT setval(pg_get_serial_sequence('events', 'seq'), 3)")


def schema_version(settings: JournalSettings) -> int:
    with raw(settings) as run:
        return int(run("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])


# -- the tests ------------------------------------------------------------------------------


def test_both_backends_make_the_same_tables(open_journal: Callable[..., Journal],
                                            settings: JournalSettings, tmp_path: Path) -> None:
    with open_journal():
        pass
    with Journal.open(tmp_path / "other" / "journal.db"):
        pass
    sqlite_side = describe_sqlite(tmp_path / "other" / "journal.db")
    other = describe(settings)
    assert set(sqlite_side["columns"]) == set(other["columns"]) == ALL_TABLES
    for table, columns in sqlite_side["columns"].items():
        # Same names, order, NOT NULL and primary key; the types are each dialect's own
        # spelling of integer and text (checked by what the journal reads back).
        assert [(c[0], c[2], c[4]) for c in columns] == [
            (c[0], c[2], c[4]) for c in other["columns"][table]], table
    assert sqlite_side["indexes"] == other["indexes"]
    assert {"events_no_update", "events_no_delete"} <= set(other["triggers"])


def test_a_schema_1_journal_is_migrated_in_place(settings: JournalSettings,
                                                 open_journal: Callable[..., Journal],
                                                 tmp_path: Path) -> None:
    write_schema_1_journal(settings)

    with open_journal() as j:
        rollout = j.active_rollout()
        assert rollout is not None
        # A rollout from schema 1 follows one spec: its pins are that spec's version.
        assert rollout.pins == {"12.4": TARGET}
        rows = j.deployments(rollout.id)
        assert [r.deployment_id for r in rows] == ["c", "a", "b"]  # registration order kept
        assert {r.target_spec for r in rows} == {None}
        migrated = [e for e in j.events(None) if e.kind == "schema_migrated"]
        assert [e.message for e in migrated] == [f"journal schema 1 → {SCHEMA_VERSION}"]
        # And it goes on as any journal: a new Deployment comes after the others.
        j.ensure_deployments(rollout.id, 1, entries(["0-first-by-name"]))
        assert [r.deployment_id for r in j.deployments(rollout.id)] == ["c", "a", "b",
                                                                         "0-first-by-name"]
    assert schema_version(settings) == SCHEMA_VERSION

    with Journal.open(tmp_path / "fresh" / "journal.db"):
        pass
    fresh = describe(JournalSettings(tmp_path / "fresh") if settings.url is None
                     else settings)
    if settings.url is None:
        assert describe(settings) == fresh  # the migrated file has a new file's tables
    else:
        assert set(describe(settings)["columns"]) == ALL_TABLES


def test_a_failed_migration_changes_nothing(settings: JournalSettings,
                                            open_journal: Callable[..., Journal]) -> None:
    write_schema_1_journal(settings)
    with raw(settings) as run:  # something in the way of the last migration step
        run("CREATE TABLE run_lock (note TEXT)")
    before = describe(settings)

    with pytest.raises(JournalError) as err:
        open_journal()

    assert "Nothing was changed" in str(err.value) or "cannot open the journal" in str(err.value)
    assert describe(settings) == before  # no column added, nothing half-done
    assert schema_version(settings) == 1


def test_a_journal_of_a_newer_schema_is_refused_untouched(
        settings: JournalSettings, open_journal: Callable[..., Journal]) -> None:
    with open_journal() as j:
        r = j.start_rollout("12.4", TARGET, "inventory.yaml")
        j.ensure_deployments(r.id, 1, entries(["d1"]))
    with raw(settings) as run:
        run("UPDATE meta SET value = ? WHERE key = 'schema_version'",
            (str(SCHEMA_VERSION + 1),))
    before = (describe(settings), dump(settings))

    with pytest.raises(JournalError, match="newer version") as err:
        open_journal()

    assert f"schema {SCHEMA_VERSION + 1}" in str(err.value)
    assert (describe(settings), dump(settings)) == before


def dump(settings: JournalSettings) -> Any:
    if settings.url is None:
        return sha256(settings.file)
    with raw(settings) as run:
        return {t: sorted(map(tuple, run(f"SELECT * FROM {t}").fetchall()), key=repr)
                for t in ("meta", *TABLES)}


def test_pins_of_a_rollout_with_several_targets(journal: Journal) -> None:
    pins = {"12.4": V("12.4.2"), "3.1": V("3.1-12")}
    r = journal.start_rollout("12.4", V("12.4.2"), "inventory.yaml", pins=pins)
    assert journal.get_rollout(r.id).pins == pins  # type: ignore[union-attr]
    assert journal.events(r.id)[0].data["pins"] == {"12.4": "12.4.2", "3.1": "3.1-12"}
    journal.ensure_deployments(r.id, 1, [*entries(["d1"]),
                                         *[e.__class__(**{**e.__dict__, "target_spec": "3.1"})
                                           for e in entries(["d2"], to=V("3.1-12"))]])
    assert {d.deployment_id: d.target_spec for d in journal.deployments(r.id)} == {
        "d1": None, "d2": "3.1"}


def test_the_documented_schema_is_this_one(tmp_path: Path) -> None:
    """docs/journal.md's schema block names this schema version and every table and
    column a journal has (as SQLite describes a new one)."""
    import re

    doc = (Path(__file__).resolve().parents[2] / "docs" / "journal.md").read_text("utf-8")
    heading = re.search(r"^## Schema \(version (\d+)\)\n(.*?)^## ", doc, re.M | re.S)
    assert heading is not None and int(heading.group(1)) == SCHEMA_VERSION
    block = re.search(r"```sql\n(.*?)```", heading.group(2), re.S)
    assert block is not None
    words = set(re.findall(r"\w+", block.group(1)))
    with Journal.open(tmp_path / "journal.db"):
        pass
    described = describe_sqlite(tmp_path / "journal.db")["columns"]
    assert set(described) == ALL_TABLES
    undocumented = sorted(f"{table}.{column[0]}" for table, columns in described.items()
                          for column in columns if column[0] not in words)
    assert [t for t in sorted(described) if t not in words] == []
    assert undocumented == []
    assert f"schema_version = {SCHEMA_VERSION}" in doc
