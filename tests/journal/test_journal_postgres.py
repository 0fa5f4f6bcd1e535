"""The PostgreSQL journal: only our own tables, the session's promises, writers serialised,
a lost database reported as exit 7 without its password."""

from __future__ import annotations

import threading

import psycopg
import pytest
from pg_server import PostgresServer

from tests.journal.helpers import TARGET, entries
from upgrade.config.settings import JournalSettings
from upgrade.errors import EXIT_INPUT, EXIT_SERVICE, IllegalTransition, JournalError
from upgrade.journal.configured import existing_journal, open_journal
from upgrade.journal.postgres import PostgresDatabase


def settings_for(url: str) -> JournalSettings:
    from pathlib import Path

    return JournalSettings(Path(".upgrade"), url)


def test_an_empty_schema_is_not_a_journal_until_a_command_writes(pg_url: str) -> None:
    settings = settings_for(pg_url)
    assert existing_journal(settings) is None  # `status` creates nothing
    with psycopg.connect(pg_url) as raw:
        assert raw.execute("SELECT count(*) FROM information_schema.tables "
                           "WHERE table_schema = current_schema()").fetchone()[0] == 0
    with open_journal(settings) as j:
        j.start_rollout("12.4", TARGET, "inventory.yaml")
    reader = existing_journal(settings)
    assert reader is not None
    with reader:
        assert reader.active_rollout() is not None


def test_another_applications_tables_are_refused_and_untouched(pg_url: str) -> None:
    with psycopg.connect(pg_url) as raw:
        raw.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, title TEXT)")
        raw.execute("INSERT INTO photos VALUES (1, 'holiday')")
    with pytest.raises(JournalError) as err:
        open_journal(settings_for(pg_url))
    message = str(err.value)
    assert "another application" in message and "left untouched" in message
    assert err.value.exit_code == EXIT_INPUT
    with psycopg.connect(pg_url) as raw:
        tables = {r[0] for r in raw.execute("SELECT table_name FROM information_schema.tables "
                                            "WHERE table_schema = current_schema()")}
        assert tables == {"photos"}
        assert raw.execute("SELECT title FROM photos").fetchall() == [("holiday",)]


def test_the_session_is_durable_and_keeps_its_lock_whatever_the_server_defaults(
        postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", postgres.password)
    # A server (or role) that defaults to asynchronous commits and ends idle sessions.
    url = (postgres.url(postgres.new_schema()) + "%20-csynchronous_commit%3Doff"
           "%20-cidle_session_timeout%3D1000%20-cdefault_transaction_isolation%3Dserializable")
    with open_journal(settings_for(url)) as j:
        db = j.database
        assert isinstance(db, PostgresDatabase)
        shown = {name: db.rows(f"SHOW {name}")[0][name] for name in (
            "synchronous_commit", "idle_session_timeout", "default_transaction_isolation",
            "tcp_keepalives_idle")}
        assert shown == {"synchronous_commit": "on", "idle_session_timeout": "0",
                         "default_transaction_isolation": "read committed",
                         "tcp_keepalives_idle": "15"}
        assert db.rows("SELECT application_name FROM pg_stat_activity "
                       "WHERE pid = pg_backend_pid()")[0]["application_name"] == \
            "astro-fleet-upgrade"


def test_two_sessions_racing_for_one_move_make_it_once(pg_url: str) -> None:
    settings = settings_for(pg_url)
    with open_journal(settings) as first:
        r = first.start_rollout("12.4", TARGET, "inventory.yaml")
        first.ensure_deployments(r.id, 1, entries(["d1"]))
    journals = [open_journal(settings) for _ in range(6)]  # six sessions, six "machines"
    start = threading.Barrier(len(journals))
    outcomes: list[str] = []

    def worker(j) -> None:  # type: ignore[no-untyped-def]
        start.wait()
        try:
            j.transition(r.id, "d1", "rendered")
            outcomes.append("moved")
        except IllegalTransition:
            outcomes.append("refused")

    threads = [threading.Thread(target=worker, args=(j,)) for j in journals]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for j in journals:
        j.close()
    assert sorted(outcomes) == ["moved"] + ["refused"] * 5
    with open_journal(settings) as j:
        assert [e.kind for e in j.events(r.id)].count("transition") == 1


def test_an_unreachable_database_is_exit_7_and_never_shows_the_password(
        postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cret-pw-never-shown"
    monkeypatch.setenv("UPGRADE_JOURNAL_PASSWORD", secret)
    # Nothing listens there (the port was free a moment ago).
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = JournalSettings(settings_for("x").dir,
                               f"postgresql://upgrade@127.0.0.1:{port}/postgres",
                               "UPGRADE_JOURNAL_PASSWORD")
    with pytest.raises(Exception) as err:
        open_journal(settings)
    assert err.value.exit_code == EXIT_SERVICE  # type: ignore[attr-defined]
    assert "cannot connect to the journal database postgresql://upgrade@127.0.0.1:" in str(
        err.value)
    assert secret not in str(err.value)

    # A wrong password: refused by the server, still exit 7, still not shown.
    settings = JournalSettings(settings.dir, postgres.url(), "UPGRADE_JOURNAL_PASSWORD")
    with pytest.raises(Exception) as err:
        open_journal(settings)
    assert err.value.exit_code == EXIT_SERVICE  # type: ignore[attr-defined]
    assert "password authentication failed" in str(err.value)
    assert secret not in str(err.value) and secret not in repr(settings)


def test_the_password_from_password_env_opens_the_journal(
        postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("TEAM_DB_PASSWORD", postgres.password)
    settings = JournalSettings(settings_for("x").dir, postgres.url(postgres.new_schema()),
                               "TEAM_DB_PASSWORD")
    with open_journal(settings) as j:
        assert j.start_rollout("12.4", TARGET, "inventory.yaml").id == 1
