"""The inventory's small top-level settings: where the release catalog and the journal are."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from upgrade.config.checker import Checker, did_you_mean
from upgrade.config.located import LMap

CATALOG_KEYS = ("feed", "mode")
CATALOG_MODES = ("extend", "replace")
DEFAULT_JOURNAL = ".upgrade"
JOURNAL_FILE = "journal.db"
_URL = re.compile(r"^https?://", re.IGNORECASE)


@dataclass(frozen=True)
class CatalogSettings:
    """Where the runtime catalog comes from: the packaged snapshot, extended or replaced."""

    feed: str | None = None  # absolute file path or http(s) URL
    mode: str = "extend"  # extend | replace

@dataclass(frozen=True)
class JournalSettings:
    """Where the journal lives: a directory holding ``journal.db``, the lock and reports."""

    dir: Path

    @property
    def file(self) -> Path:
        """The SQLite journal file."""
        return self.dir / JOURNAL_FILE

    @property
    def reports(self) -> Path:
        """Where wave reports are written."""
        return self.dir / "reports"


def read_catalog(c: Checker, top: LMap, resolve: Callable[[str], Path]) -> CatalogSettings:
    """The ``catalog:`` section."""
    m = c.mapping(top, "catalog", "")
    if m is None:
        return CatalogSettings()
    c.keys(m, CATALOG_KEYS, "catalog")
    feed = c.string(m, "feed", "catalog")
    mode = c.string(m, "mode", "catalog", default="extend") or "extend"
    if mode not in CATALOG_MODES:
        hint = did_you_mean(mode, CATALOG_MODES)
        c.add(m.key_line("mode"), "catalog.mode",
              f"must be 'extend' or 'replace', got '{mode}'.{hint}")
    if feed is None:
        if mode == "replace":
            c.add(m.key_line("mode"), "catalog.mode",
                  "'replace' needs a feed to replace the packaged catalog with. "
                  "Set catalog.feed or use mode: extend.")
        return CatalogSettings(None, mode)
    if _URL.match(feed):
        return CatalogSettings(feed, mode)
    if "://" in feed:
        c.add(m.key_line("feed"), "catalog.feed",
              f"'{feed}' is not supported. Use an http(s) URL or a file path.")
        return CatalogSettings(None, mode)
    local = resolve(feed)
    if not local.is_file():
        c.add(m.key_line("feed"), "catalog.feed",
              f"file '{local}' does not exist. Fix the path (relative paths start at the "
              "inventory's directory) or use an http(s) URL.")
    return CatalogSettings(str(local), mode)


def read_journal(c: Checker, top: LMap, resolve: Callable[[str], Path]) -> JournalSettings:
    """The ``journal:`` setting: a directory, relative to the inventory's."""
    return JournalSettings(resolve(c.string(top, "journal", "", default=DEFAULT_JOURNAL)
                                   or DEFAULT_JOURNAL))
