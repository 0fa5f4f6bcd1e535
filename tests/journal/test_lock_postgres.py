"""The PostgreSQL run lock: real processes hold it, die holding it, and the next run takes over."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.journal.helpers import python_child, wait_line
from upgrade.config.settings import JournalSettings
from upgrade.errors import EXIT_LOCKED, LockHeld
from upgrade.journal.configured import TAKEOVER_EVENT, locked_journal, open_journal, unlock
from upgrade.journal.records import os_user

# Holds the lock for a minute, as a run in another working copy would.
HOLDER = """
import sys, time
from pathlib import Path
from upgrade.config.settings import JournalSettings
from upgrade.journal.configured import locked_journal
with locked_journal(JournalSettings(Path(sys.argv[2]), sys.argv[1]), "invoke upgrade --wave 1"):
    print("locked", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def settings(pg_url: str, tmp_path: Path) -> JournalSettings:
    return JournalSettings(tmp_path / "laptop-b" / ".upgrade", pg_url)


@pytest.fixture
def holder(settings: JournalSettings, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = python_child(HOLDER, str(settings.url), str(tmp_path / "laptop-a" / ".upgrade"))
    try:
        wait_line(proc, "locked")
        yield proc
    finally:
        proc.kill()
        proc.wait()


def sigkill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def test_a_second_run_is_refused_naming_the_holder(settings: JournalSettings,
                                                   holder: subprocess.Popen[str]) -> None:
    with pytest.raises(LockHeld) as err, locked_journal(settings, "invoke upgrade --wave 2"):
        pytest.fail("a second run got the lock")
    message = str(err.value)
    assert err.value.exit_code == EXIT_LOCKED
    assert (f"another run holds the journal lock: invoke upgrade --wave 1 by {os_user()} on "
            f"{socket.gethostname()}, pid {holder.pid}, since ") in message
    assert "loses the lock with its database session" in message


def test_the_holder_row_names_the_run_and_its_session(settings: JournalSettings,
                                                      holder: subprocess.Popen[str]) -> None:
    assert settings.url
    with psycopg.connect(settings.url) as raw:
        row = raw.execute("SELECT login, host, pid, command, session_pid FROM run_lock").fetchone()
        sessions = {r[0] for r in raw.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted")}
    assert row[:4] == (os_user(), socket.gethostname(), holder.pid, "invoke upgrade --wave 1")
    assert row[4] in sessions


def test_kill_9_of_the_holder_frees_the_lock_and_the_next_run_says_so(
        settings: JournalSettings, holder: subprocess.Popen[str]) -> None:
    sigkill(holder)

    with locked_journal(settings, "invoke upgrade --wave 1") as (journal, note):
        events = [e for e in journal.events(None) if e.kind == TAKEOVER_EVENT]

    assert note is not None
    assert note.startswith(f"took over the journal lock left by invoke upgrade --wave 1 by "
                           f"{os_user()} on {socket.gethostname()}, pid {holder.pid}, since ")
    assert "its database session ended" in note
    assert [e.message for e in events] == [note]
    # That run released the lock cleanly: the one after it takes no note.
    with locked_journal(settings, "invoke status") as (_, again):
        assert again is None


def test_unlock_refuses_a_live_holder_and_clears_a_dead_ones_name(
        settings: JournalSettings, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(LockHeld, match="a live run holds the journal lock: invoke upgrade "
                                       f"--wave 1 by .* pid {holder.pid}"):
        unlock(settings)
    sigkill(holder)
    cleared = unlock(settings)
    assert cleared is not None and f"pid {holder.pid}" in cleared
    assert unlock(settings) is None  # nothing left to clear
    with locked_journal(settings, "invoke upgrade --wave 1") as (_, note):
        assert note is None


def test_journals_in_two_schemas_of_one_database_do_not_block_each_other(
        settings: JournalSettings, holder: subprocess.Popen[str], postgres) -> None:  # type: ignore[no-untyped-def]
    other = JournalSettings(settings.dir, postgres.url(postgres.new_schema()))
    with locked_journal(other, "invoke upgrade --wave 1") as (journal, note):
        assert note is None and journal.active_rollout() is None


def test_a_clean_exit_leaves_no_holder(settings: JournalSettings) -> None:
    with locked_journal(settings, "invoke approve --wave 2"):
        pass
    with open_journal(settings) as j:
        assert j.database.rows("SELECT * FROM run_lock") == []


def test_the_lock_cannot_outlive_its_session(settings: JournalSettings) -> None:
    """The lock is the writing session's: when the server ends that session (a DBA, a
    restart), the run can write nothing more and another run may take over at once."""
    assert settings.url
    with locked_journal(settings, "invoke upgrade --wave 1") as (journal, _):
        session = journal.database.session_pid  # type: ignore[attr-defined]
        with psycopg.connect(settings.url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (session,))
        with locked_journal(settings, "invoke upgrade --wave 1") as (_, note):
            assert note is not None and "its database session ended" in note
        with pytest.raises(Exception) as err:
            journal.event("note", message="written after the lock was gone")
        assert err.value.exit_code == 7  # type: ignore[attr-defined]
    with open_journal(settings) as j:
        assert "written after the lock was gone" not in [e.message for e in j.events(None)]
