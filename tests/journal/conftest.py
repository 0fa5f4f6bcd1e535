"""Fixtures: a fresh journal in a tmp dir, with a controllable clock and one active rollout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.journal.helpers import TARGET, FakeClock
from upgrade.journal.records import Rollout
from upgrade.journal.store import Journal


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "fleet" / ".upgrade" / "journal.db"


@pytest.fixture
def journal(journal_path: Path, clock: FakeClock) -> Iterator[Journal]:
    with Journal.open(journal_path, clock=clock, actor="alice@laptop") as j:
        yield j


@pytest.fixture
def rollout(journal: Journal) -> Rollout:
    return journal.start_rollout("12.4", TARGET, "inventory.yaml", "alice@laptop")
