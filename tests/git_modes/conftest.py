"""A forge simulator per test (loopback, its own port)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.git_modes.helpers import TOKEN
from upgrade.sim.forge import ForgeServer


@pytest.fixture
def forge() -> Iterator[ForgeServer]:
    server = ForgeServer(TOKEN).start()
    try:
        yield server
    finally:
        server.stop()
