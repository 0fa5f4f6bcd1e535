"""Fixtures of the hostile-input tests: the catalog, loaded once (it never changes)."""

from __future__ import annotations

import pytest

from upgrade.model.catalog import Catalog, load_catalog


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The bundled snapshot, as ``plan`` loads it when the inventory names no feed.

    Also imports what ``plan`` imports on first use, so no case is timed (or traced by
    tracemalloc) importing modules.
    """

    return load_catalog(None)
