"""The inventory's small top-level settings: the release catalog, the journal, the playbook
and the templates.

The journal is a directory (a SQLite file, its lock and the wave reports) or a PostgreSQL
database shared by a team: ``journal: postgresql://user@host/db`` or ``journal: {url: ...}``
(``url_env`` names a variable holding the URL, ``password_env`` one holding the password).
A password is never read from the inventory: libpq takes it from ``PGPASSWORD`` or
``~/.pgpass``, or it comes from ``password_env``.

The package carries a default playbook and default Dockerfile templates
(``upgrade/config/data/``). An inventory uses, in this order: its ``playbook:`` /
``templates:`` key (relative to its directory); else ``playbooks/upgrade.yaml`` /
``templates/`` beside it when they exist (what ``astro-fleet init`` scaffolds); else the
packaged defaults. ``Inventory.playbook.source`` says which, so commands can tell.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from upgrade.config.checker import Checker, did_you_mean, http_url_problem
from upgrade.config.located import LMap, join
from upgrade.model.redact import Redactor

CATALOG_KEYS = ("feed", "mode")
CATALOG_MODES = ("extend", "replace")
DEFAULT_JOURNAL = ".upgrade"
JOURNAL_FILE = "journal.db"
JOURNAL_KEYS = ("url", "url_env", "password_env")
POSTGRES_SCHEMES = ("postgresql", "postgres")
_URL = re.compile(r"^https?://", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NO_PASSWORD = ("Remove it: the password comes from PGPASSWORD or ~/.pgpass, or from the "
                "variable named by journal.password_env, never from the inventory.")
PACKAGED = Path(__file__).resolve().parent / "data"
PACKAGED_PLAYBOOK = PACKAGED / "playbooks" / "upgrade.yaml"
PACKAGED_TEMPLATES = PACKAGED / "templates"
BESIDE_PLAYBOOK = "playbooks/upgrade.yaml"
BESIDE_TEMPLATES = "templates"


@dataclass(frozen=True)
class CatalogSettings:
    """Where the runtime catalog comes from: the packaged snapshot, extended or replaced."""

    feed: str | None = None  # absolute file path or http(s) URL
    mode: str = "extend"  # extend | replace

@dataclass(frozen=True)
class JournalSettings:
    """Where the journal lives: a directory holding ``journal.db``, the lock and reports;
    or, with ``url``, a PostgreSQL database (reports still go to the directory)."""

    dir: Path
    url: str | None = None  # postgresql://...: the team's journal and lock
    password_env: str | None = None  # the variable holding the database password

    @property
    def backend(self) -> Literal["sqlite", "postgresql"]:
        """Which database holds the journal."""
        return "sqlite" if self.url is None else "postgresql"

    @property
    def file(self) -> Path:
        """The SQLite journal file (unused with a PostgreSQL journal)."""
        return self.dir / JOURNAL_FILE

    @property
    def reports(self) -> Path:
        """Where wave reports are written."""
        return self.dir / "reports"

    @property
    def where(self) -> str:
        """The journal for messages: its file, or its URL without any password."""
        return str(self.file) if self.url is None else display_postgres_url(self.url)

    def password(self) -> str | None:
        """The database password from ``password_env``, if one is named and set."""
        return os.environ.get(self.password_env) or None if self.password_env else None

    def secrets(self) -> tuple[str, ...]:
        """The database password, wherever it comes from here: ``password_env`` and the
        password part of the URL (one from ``url_env`` may hold it)."""
        found = [self.password()]
        if self.url is not None:
            from psycopg.conninfo import conninfo_to_dict  # only a PostgreSQL journal needs it

            found.append(str(conninfo_to_dict(self.url).get("password") or ""))
        return tuple(s for s in found if s)

    def __repr__(self) -> str:  # a URL from url_env may hold a password: never show it
        return (f"JournalSettings(dir={self.dir!r}, url={self.url and self.where!r}, "
                f"password_env={self.password_env!r})")


def display_postgres_url(url: str) -> str:
    """``postgresql://user@host:port/db``: never a password, nor the query."""
    try:
        from psycopg.conninfo import conninfo_to_dict  # only a PostgreSQL journal needs it

        parts = conninfo_to_dict(url)
    except Exception:  # a URL that does not parse is shown without any of its parts
        return "postgresql://(an unreadable URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = str(parts.get("host") or "")
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}"


@dataclass(frozen=True)
class PathSetting:
    """A file or directory the inventory uses, and where that choice came from."""

    path: Path
    source: str  # "inventory key playbook", "beside the inventory", "packaged default"

    @property
    def packaged(self) -> bool:
        """True when it is the default the package carries."""
        return self.source == "packaged default"


def read_playbook(c: Checker, top: LMap, resolve: Callable[[str], Path]) -> PathSetting:
    """The ``playbook:`` setting: a file, relative to the inventory's directory."""
    return _file_setting(c, top, resolve, "playbook", BESIDE_PLAYBOOK, PACKAGED_PLAYBOOK,
                         directory=False)


def read_templates(c: Checker, top: LMap, resolve: Callable[[str], Path]) -> PathSetting:
    """The ``templates:`` setting: a directory, relative to the inventory's directory."""
    return _file_setting(c, top, resolve, "templates", BESIDE_TEMPLATES, PACKAGED_TEMPLATES,
                         directory=True)


def _file_setting(c: Checker, top: LMap, resolve: Callable[[str], Path], key: str,
                  beside: str, packaged: Path, *, directory: bool) -> PathSetting:
    text = c.string(top, key, "")
    kind = "directory" if directory else "file"
    if text is not None:
        path = resolve(text)
        # os.path's tests: a name too long for the filesystem is "not there", not an OSError.
        if not (os.path.isdir(path) if directory else os.path.isfile(path)):
            c.add(top.key_line(key), key,
                  f"{kind} '{path}' does not exist. Fix the path (relative paths start at the "
                  f"inventory's directory), or remove the key to use the packaged default.")
        return PathSetting(path, f"inventory key {key}")
    near = resolve(beside)
    if os.path.isdir(near) if directory else os.path.isfile(near):
        return PathSetting(near, "beside the inventory")
    return PathSetting(packaged, "packaged default")


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
        problem = http_url_problem(feed)
        if problem:
            c.add(m.key_line("feed"), "catalog.feed",
                  f"'{feed}' is not a URL the feed can be read from: {problem}. Give an "
                  "http(s) URL with a host, or a file path.")
            return CatalogSettings(None, mode)
        return CatalogSettings(feed, mode)
    if "://" in feed:
        c.add(m.key_line("feed"), "catalog.feed",
              f"'{feed}' is not supported. Use an http(s) URL or a file path.")
        return CatalogSettings(None, mode)
    local = resolve(feed)
    if not os.path.isfile(local):
        c.add(m.key_line("feed"), "catalog.feed",
              f"file '{local}' does not exist. Fix the path (relative paths start at the "
              "inventory's directory) or use an http(s) URL.")
    return CatalogSettings(str(local), mode)


def read_journal(c: Checker, top: LMap, resolve: Callable[[str], Path]) -> JournalSettings:
    """The ``journal:`` setting: a directory relative to the inventory's, or a PostgreSQL
    database (a URL, or a mapping with ``url``/``url_env`` and ``password_env``)."""
    local = resolve(DEFAULT_JOURNAL)
    node = top.get("journal")
    if isinstance(node, LMap):
        return _journal_database(c, node, local)
    text = c.string(top, "journal", "", default=DEFAULT_JOURNAL) or DEFAULT_JOURNAL
    if "://" not in text:
        return JournalSettings(resolve(text))
    url = _postgres_url(c, text, top.key_line("journal"), "journal", "it", in_inventory=True)
    return JournalSettings(local, url)


def _journal_database(c: Checker, m: LMap, local: Path) -> JournalSettings:
    c.keys(m, JOURNAL_KEYS, "journal")
    line = m.line
    has_url, has_env = "url" in m, "url_env" in m
    password_env = _env_name(c, m, "password_env")
    if has_url == has_env:
        c.add(line, "journal", "give exactly one of url (postgresql://user@host/db) or url_env "
              "(the name of an environment variable holding it).")
        return JournalSettings(local)
    if has_url:
        text = c.string(m, "url", "journal")
        url = text and _postgres_url(c, text, m.key_line("url"), "journal.url", "it",
                                     in_inventory=True)
        return JournalSettings(local, url or None, password_env)
    name = _env_name(c, m, "url_env")
    if name is None:
        return JournalSettings(local)
    value = os.environ.get(name, "").strip()
    if not value:
        c.add(m.key_line("url_env"), "journal.url_env", f"environment variable {name} is not "
              "set (or empty). Export the journal's postgresql:// URL in it.")
        return JournalSettings(local)
    url = _postgres_url(c, value, m.key_line("url_env"), "journal.url_env",
                        f"the value of {name}", in_inventory=False)
    return JournalSettings(local, url, password_env)


def _env_name(c: Checker, m: LMap, key: str) -> str | None:
    name = c.string(m, key, "journal")
    if name is not None and not _ENV_NAME.match(name):
        c.add(m.key_line(key), join("journal", key), "is not an environment variable name "
              "(letters, digits and _, not starting with a digit).")
        return None
    return name


def _postgres_url(c: Checker, url: str, line: int, path: str, what: str, *,
                  in_inventory: bool) -> str | None:
    """``url`` if it is a PostgreSQL URL that libpq accepts, holding no password when it is
    written in the inventory; else a problem (which never repeats the value: it may hold a
    secret pasted in the wrong place)."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in POSTGRES_SCHEMES:
        c.add(line, path, f"{what} is not a postgresql:// URL. Give a directory for a local "
              "journal, or postgresql://user@host:port/database for a shared one.")
        return None
    try:
        from psycopg.conninfo import conninfo_to_dict  # only a PostgreSQL journal needs it

        parts = conninfo_to_dict(url)
    except Exception as exc:  # psycopg's ProgrammingError: libpq could not parse it
        reason = Redactor([url.split("@", 1)[0]])(str(exc).strip().splitlines()[0])
        c.add(line, path, f"{what} is not a URL libpq accepts ({reason}). See "
              "docs/journal.md for the form.")
        return None
    if in_inventory and parts.get("password"):
        c.add(line, path, f"{what} holds a password. {_NO_PASSWORD}")
        return None
    return url
