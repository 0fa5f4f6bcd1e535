"""The `journal:` setting: a directory, or a PostgreSQL database validated at load, whose
password never comes from the inventory and is never shown."""

from __future__ import annotations

import pytest

from .conftest import FleetDir

REPOS = """
repos:
  app:
    path: repos/app
    deployments: [{id: d1, name: a, workspace_id: w, wave: 1}]
"""


def inventory(journal: str) -> str:
    return f'target: "12.4"\n{journal}\n{REPOS}'


def test_a_postgresql_url_selects_the_team_journal(fleet: FleetDir) -> None:
    inv = fleet.load(inventory("journal: postgresql://upgrade@db.internal:5432/fleet"))
    assert inv.journal.backend == "postgresql"
    assert inv.journal.url == "postgresql://upgrade@db.internal:5432/fleet"
    assert inv.journal.where == "postgresql://upgrade@db.internal:5432/fleet"
    assert inv.journal.reports == fleet.root / ".upgrade" / "reports"  # reports stay local


def test_the_mapping_form_with_a_password_variable(fleet: FleetDir,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_DB_PASSWORD", "hunter2-long")
    inv = fleet.load(inventory(
        "journal:\n  url: postgres://ops@db/fleet?sslmode=require\n"
        "  password_env: TEAM_DB_PASSWORD"))
    assert (inv.journal.url, inv.journal.password()) == (
        "postgres://ops@db/fleet?sslmode=require", "hunter2-long")
    assert "hunter2" not in repr(inv.journal)


def test_the_url_from_a_variable_may_carry_its_password_and_is_never_shown(
        fleet: FleetDir, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNAL_URL", "postgresql://ci:from-a-secret@db.internal/fleet")
    inv = fleet.load(inventory("journal: {url_env: JOURNAL_URL}"))
    assert inv.journal.url == "postgresql://ci:from-a-secret@db.internal/fleet"
    assert inv.journal.where == "postgresql://ci@db.internal/fleet"
    assert "from-a-secret" not in repr(inv.journal) and "from-a-secret" not in repr(inv)


def test_a_directory_is_still_a_local_journal(fleet: FleetDir) -> None:
    inv = fleet.load(inventory("journal: state/journal"))
    assert inv.journal.backend == "sqlite" and inv.journal.url is None
    assert inv.journal.file == fleet.root / "state" / "journal" / "journal.db"


@pytest.mark.parametrize(("journal", "expected"), [
    ("journal: postgresql://ops:hunter2-pw@db/fleet",
     "2: journal: it holds a password. Remove it: the password comes from PGPASSWORD or "
     "~/.pgpass, or from the variable named by journal.password_env, never from the "
     "inventory."),
    ("journal: postgresql://ops@db/fleet?password=hunter2-pw",
     "2: journal: it holds a password."),
    ("journal: {url: 'postgresql://ops@db/fleet?sslmod=require'}",
     "2: journal.url: it is not a URL libpq accepts (invalid URI query parameter: \"sslmod\")."),
    ("journal: mysql://ops@db/fleet",
     "2: journal: it is not a postgresql:// URL."),
    ("journal: {url: postgresql://db/fleet, url_env: X}",
     "2: journal: give exactly one of url (postgresql://user@host/db) or url_env"),
    ("journal: {url_env: NOT_SET_ANYWHERE_17}",
     "2: journal.url_env: environment variable NOT_SET_ANYWHERE_17 is not set (or empty)."),
    ("journal: {url: postgresql://db/fleet, password_env: 'not a name'}",
     "2: journal.password_env: is not an environment variable name"),
    ("journal: {url: postgresql://db/fleet, pasword_env: X}",
     "2: journal.pasword_env: unknown key"),
], ids=["password-in-url", "password-in-query", "unknown-parameter", "not-postgresql",
        "url-and-url-env", "url-env-unset", "bad-variable-name", "typo"])
def test_a_bad_journal_setting_is_refused_at_load_without_echoing_secrets(
        fleet: FleetDir, journal: str, expected: str) -> None:
    problems = fleet.problems(inventory(journal))
    shown = [f"{p.line}: {p.key}: {p.message}" for p in problems]
    assert any(s.startswith(expected) for s in shown), shown
    assert all("hunter2" not in s for s in shown)
