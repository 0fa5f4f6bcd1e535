"""The journal file: created private, reopened intact, and anything not ours left untouched."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from tests.journal.helpers import TARGET, V, entries, sha256
from upgrade.errors import EXIT_INPUT, InputError, JournalError
from upgrade.journal.sqlite import APPLICATION_ID, SCHEMA_VERSION
from upgrade.journal.store import Journal


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def snapshot(directory: Path) -> dict[str, str]:
    """Every file in ``directory`` with its hash: proves nothing was created or changed."""
    return {p.name: sha256(p) for p in sorted(directory.iterdir()) if p.is_file()}


def test_new_journal_is_owner_only_even_with_a_permissive_umask(tmp_path: Path) -> None:
    journal_dir = tmp_path / "fleet" / ".upgrade"
    old = os.umask(0o002)
    try:
        with Journal.open(journal_dir / "journal.db") as j:
            rollout = j.start_rollout("12.4", TARGET, "inventory.yaml")
            j.ensure_deployments(rollout.id, 1, entries(["d1"]))
            files = {p.name: mode(p) for p in journal_dir.iterdir()}
    finally:
        os.umask(old)
    assert mode(journal_dir) == 0o700
    # The WAL and shared-memory files exist while the journal is open and must be private too.
    assert files == {"journal.db": 0o600, "journal.db-wal": 0o600, "journal.db-shm": 0o600}


def test_journal_is_wal_full_sync_with_foreign_keys_and_our_identity(journal_path: Path) -> None:
    # Per-connection settings are only visible on the journal's own connection.
    with Journal.open(journal_path) as journal:
        conn = journal.database.conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    other = sqlite3.connect(journal_path)
    try:
        assert other.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        meta = dict(other.execute("SELECT key, value FROM meta").fetchall())
    finally:
        other.close()
    assert meta["application"] == "astro-fleet-upgrade"
    assert meta["schema_version"] == str(SCHEMA_VERSION)


def test_reopen_keeps_everything(journal_path: Path) -> None:
    with Journal.open(journal_path, actor="bob@ci") as j:
        r = j.start_rollout("3.1", V("3.1-12"), "fleet/inventory.yaml")
        j.ensure_deployments(r.id, 1, entries(["a", "b"], to=V("3.1-12")))
        j.start_wave(r.id, 1, soak_seconds=600, budget={"max_failures": 1})
        j.transition(r.id, "a", "deploying", count_deploy=True)
        j.transition(r.id, "a", "deployed")
        j.transition(r.id, "b", "failed", error="astro deploy exited 1")
        j.set_baseline(r.id, "a", {"import_errors": 0})
        j.finish_wave(r.id, 1, "halted", reason="1 failure > budget 0", budget={"failed": 1})
        j.record_approval(r.id, 2, "carol@laptop", "canary looked fine")
        j.event("note", rollout_id=r.id, message="paused for the weekend")
        before = (j.rollouts(), j.waves(r.id), j.deployments(r.id), j.events(None), j.high_water())

    with Journal.open(journal_path) as j:
        after = (j.rollouts(), j.waves(r.id), j.deployments(r.id), j.events(None), j.high_water())
        assert j.active_rollout() == before[0][0]
    assert after == before
    assert after[4] == {"a": V("3.1-12")}
    assert after[2][0].baseline == {"import_errors": 0}
    assert after[1][0].budget == {"failed": 1}


def test_empty_file_becomes_a_journal(journal_path: Path) -> None:
    journal_path.parent.mkdir(parents=True)
    journal_path.touch()
    with Journal.open(journal_path) as j:
        assert j.rollouts() == []
        j.start_rollout("12.4", TARGET, "inventory.yaml")
    with Journal.open(journal_path) as j:
        assert len(j.rollouts()) == 1


def test_interrupted_creation_is_finished_on_next_open(journal_path: Path) -> None:
    # A run killed after SQLite wrote its header but before our schema committed.
    journal_path.parent.mkdir(parents=True)
    raw = sqlite3.connect(journal_path)
    raw.execute("PRAGMA journal_mode = WAL")
    raw.close()
    with Journal.open(journal_path) as j:
        assert j.start_rollout("12.4", TARGET, "inventory.yaml").id == 1


def make_foreign_db(path: Path, *, wal: bool, app_id: int) -> None:
    db = sqlite3.connect(path)
    if wal:
        db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA application_id = {app_id}")
    db.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, title TEXT)")
    db.execute("INSERT INTO photos (title) VALUES ('holiday')")
    db.commit()
    db.close()


@pytest.mark.parametrize(("wal", "app_id"), [(False, 0), (True, 0), (False, 0x0F055173), (True, 7)])
def test_another_applications_database_is_refused_and_untouched(
        tmp_path: Path, wal: bool, app_id: int) -> None:
    path = tmp_path / "journal.db"
    make_foreign_db(path, wal=wal, app_id=app_id)
    before = snapshot(tmp_path)

    with pytest.raises(JournalError) as err:
        Journal.open(path)

    message = str(err.value)
    assert str(path) in message
    assert "another application" in message
    assert "left untouched" in message
    assert snapshot(tmp_path) == before  # same bytes, and no -wal/-shm files left beside it
    assert err.value.exit_code == EXIT_INPUT
    assert isinstance(err.value, InputError)


@pytest.mark.parametrize("content", [
    os.urandom(4096),
    b"target: 12.4\nrepos: {}\n",  # someone pointed the journal at a YAML file
    b"SQLite format 3\x00 but cut short",
], ids=["random-bytes", "text", "truncated-header"])
def test_a_file_that_is_not_sqlite_is_refused_and_untouched(tmp_path: Path,
                                                             content: bytes) -> None:
    path = tmp_path / "journal.db"
    path.write_bytes(content)
    before = snapshot(tmp_path)

    with pytest.raises(JournalError, match="is not a SQLite database") as err:
        Journal.open(path)

    assert str(path) in str(err.value)
    assert "move it aside" in str(err.value)
    assert snapshot(tmp_path) == before


def test_a_damaged_journal_is_refused_and_untouched(journal_path: Path) -> None:
    with Journal.open(journal_path) as j:
        r = j.start_rollout("12.4", TARGET, "inventory.yaml")
        j.ensure_deployments(r.id, 1, entries([f"d{i}" for i in range(200)]))
    data = journal_path.read_bytes()
    assert len(data) > 8192
    journal_path.write_bytes(data[:100] + os.urandom(len(data) - 100))  # header kept, pages gone
    before = snapshot(journal_path.parent)

    with pytest.raises(JournalError) as err:
        Journal.open(journal_path)

    assert str(journal_path) in str(err.value)
    assert snapshot(journal_path.parent) == before


def test_a_journal_from_a_newer_version_is_refused_and_untouched(journal_path: Path) -> None:
    with Journal.open(journal_path) as j:
        j.start_rollout("12.4", TARGET, "inventory.yaml")
    raw = sqlite3.connect(journal_path)
    raw.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    raw.commit()
    raw.close()
    before = snapshot(journal_path.parent)

    with pytest.raises(JournalError, match="newer version") as err:
        Journal.open(journal_path)

    assert f"schema {SCHEMA_VERSION + 1}" in str(err.value)
    assert "upgrade the tool" in str(err.value)
    assert snapshot(journal_path.parent) == before


def test_a_directory_in_place_of_the_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "journal.db").mkdir()
    with pytest.raises(JournalError, match="not a regular file"):
        Journal.open(tmp_path / "journal.db")


def test_open_while_another_process_has_it_open_reads_committed_wal(journal_path: Path) -> None:
    # The writer keeps its connection (so the -wal file exists, not yet checkpointed) while a
    # second Journal opens the same file, as `invoke status` would during a run.
    with Journal.open(journal_path) as writer:
        r = writer.start_rollout("12.4", TARGET, "inventory.yaml")
        writer.ensure_deployments(r.id, 1, entries(["d1"]))
        writer.transition(r.id, "d1", "rendered")
        assert Path(f"{journal_path}-wal").stat().st_size > 0
        with Journal.open(journal_path) as reader:
            assert [d.state for d in reader.deployments(r.id)] == ["rendered"]
