"""Fixtures: a fresh journal on each backend (SQLite file, PostgreSQL schema), with a
controllable clock and one active rollout.

Every test that asks for ``journal`` (or ``open_journal``) runs twice: on a SQLite file in
a tmp dir and on a schema of its own in the worker's real PostgreSQL (``pg_server``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.journal.helpers import TARGET, FakeClock
from upgrade.config.settings import JournalSettings
from upgrade.journal.configured import open_journal as open_configured
from upgrade.journal.records import Rollout
from upgrade.journal.store import Journal

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "fleet" / ".upgrade" / "journal.db"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def settings(backend: str, journal_path: Path, request: pytest.FixtureRequest) -> JournalSettings:
    """The journal setting of this test: the SQLite directory, or a PostgreSQL schema."""
    if backend == "sqlite":
        return JournalSettings(journal_path.parent)
    return JournalSettings(journal_path.parent, request.getfixturevalue("pg_url"))


@pytest.fixture
def open_journal(settings: JournalSettings) -> Callable[..., Journal]:
    """Open (again) this test's journal, through the one place commands open it."""
    return lambda **kw: open_configured(settings, **kw)


@pytest.fixture
def journal(open_journal: Callable[..., Journal], clock: FakeClock) -> Iterator[Journal]:
    with open_journal(clock=clock, actor="alice@laptop") as j:
        yield j


@pytest.fixture
def rollout(journal: Journal) -> Rollout:
    return journal.start_rollout("12.4", TARGET, "inventory.yaml", "alice@laptop")
