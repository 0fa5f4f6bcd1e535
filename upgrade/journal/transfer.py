"""Moving a journal between backends: ``journal.export`` and ``journal.import`` (JSON lines).

The first line says what the file is::

    {"format": "astro-fleet-upgrade journal", "schema_version": 2, "rows": 1234,
     "exported_at": "...", "exported_from": "postgresql://ops@db/fleet"}

and every other line is one row, tables in the order their references need (rollouts,
waves, deployments, events, high_water)::

    {"table": "rollouts", "row": {"id": 1, "target_spec": "12.4", ...}}

Values are exactly what the journal stores (text, integers, null: times and JSON are
text), so an import is the same journal: the same ids, event numbers and times. The
export is one consistent snapshot, taken while a run may be writing. An import goes into
an empty journal only, in one transaction: the whole file or nothing. The lock holder
and the journal's own ``meta`` are not moved: they belong to the database.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from upgrade.config.settings import JournalSettings
from upgrade.errors import InputError, JournalError
from upgrade.journal.configured import existing_journal, locked_journal
from upgrade.journal.database import Database
from upgrade.journal.records import iso
from upgrade.journal.schema import SCHEMA_VERSION, TABLES
from upgrade.model.redact import Redactor

FORMAT = "astro-fleet-upgrade journal"


@dataclass(frozen=True)
class Transfer:
    """What one export or import moved: rows per table, and where."""

    journal: str  # the journal's location, for messages
    file: Path
    rows: Mapping[str, int]

    def summary(self) -> str:
        """``3 rollouts, 9 waves, 120 deployments, 2,310 events, 120 high-water marks``."""
        names = {"high_water": "high-water marks", "repo_changes": "repo changes"}
        # Repo changes exist only in git modes: a journal without any does not mention them.
        return ", ".join(f"{self.rows.get(t, 0):,} {names.get(t, t)}" for t in TABLES
                         if t != "repo_changes" or self.rows.get(t))


def export_journal(settings: JournalSettings, file: Path) -> Transfer:
    """Write the configured journal to ``file`` (created 0600, replaced whole)."""
    journal = existing_journal(settings)
    if journal is None:
        raise InputError(f"no journal yet ({settings.where}): there is nothing to export.")
    with journal:
        db = journal.database
        with db.snapshot():
            tables = {t: (db.columns(t), db.execute(f"SELECT * FROM {t} ORDER BY 1, 2")
                          .fetchall()) for t in TABLES}
    header = {"format": FORMAT, "schema_version": SCHEMA_VERSION,
              "rows": sum(len(rows) for _, rows in tables.values()),
              "exported_at": iso(datetime.now(UTC)), "exported_from": settings.where}
    lines = [json.dumps(header, ensure_ascii=False)]
    for table, (columns, rows) in tables.items():
        for row in rows:
            lines.append(json.dumps({"table": table, "row": {c: row[c] for c in columns}},
                                    ensure_ascii=False))
    _write_private(file, "\n".join(lines) + "\n")
    return Transfer(settings.where, file, {t: len(rows) for t, (_, rows) in tables.items()})


def import_journal(settings: JournalSettings, file: Path, *, command: str) -> Transfer:
    """Load ``file`` (written by :func:`export_journal`) into the configured journal, which
    must be empty; under the run lock (its holder named ``command``), in one transaction."""
    try:
        text = file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{file}: cannot read the export ({exc}).") from exc
    lines = list(_lines(file, text))
    with locked_journal(settings, command) as (journal, _):
        db = journal.database
        columns = {t: db.columns(t) for t in TABLES}
        rows = _parse(file, lines, columns)
        redact = Redactor.from_env(os.environ)  # the one rule, on what the journal stores
        with db.write():
            _refuse_unless_empty(db, settings.where)
            for table in TABLES:  # references first, whatever order the file has
                for line, row in rows[table]:
                    values = [redact(v) if isinstance(v, str) else v
                              for v in (row[c] for c in columns[table])]
                    try:
                        db.execute(f"INSERT INTO {table} ({', '.join(columns[table])}) "
                                   f"VALUES ({', '.join('?' * len(values))})", values)
                    except db.row_errors as exc:
                        raise InputError(
                            f"{file}:{line}: the journal refused this {table} row ({exc}). "
                            "Nothing was imported.") from exc
            db.restart_ids()
    return Transfer(settings.where, file, {t: len(rows[t]) for t in TABLES})


# -- helpers ------------------------------------------------------------------------------


def _write_private(file: Path, text: str) -> None:
    """``file`` replaced whole by ``text``, owner-only: a journal names people and times."""
    temp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise InputError(f"{file}: cannot write the export ({exc.strerror}).") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, file)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _lines(file: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{file}:{number}: not a JSON line ({exc.msg}). Nothing was "
                             "imported.") from None
        if not isinstance(doc, dict):
            raise InputError(f"{file}:{number}: expected a JSON object. Nothing was imported.")
        yield number, doc


def _parse(file: Path, lines: list[tuple[int, dict[str, Any]]],
           columns: Mapping[str, list[str]]) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Every row, checked before anything is written: InputError naming file:line."""
    if not lines or lines[0][1].get("format") != FORMAT:
        raise InputError(f"{file}:1: not a journal export (its first line must name the "
                         f"format '{FORMAT}'). Nothing was imported.")
    header = lines[0][1]
    version = header.get("schema_version")
    if version != SCHEMA_VERSION:
        what = ("upgrade the tool to import it" if isinstance(version, int)
                and version > SCHEMA_VERSION else "export it again with this version (opening "
                "a journal migrates it first)")
        raise InputError(f"{file}:1: the export is of journal schema {version}; this version "
                         f"imports schema {SCHEMA_VERSION}: {what}. Nothing was imported.")
    rows: dict[str, list[tuple[int, dict[str, Any]]]] = {t: [] for t in TABLES}
    for number, doc in lines[1:]:
        table, row = doc.get("table"), doc.get("row")
        if table not in rows or not isinstance(row, dict):
            raise InputError(f"{file}:{number}: expected {{\"table\": one of "
                             f"{', '.join(TABLES)}, \"row\": {{...}}}}. Nothing was imported.")
        if set(row) != set(columns[table]):
            missing, extra = set(columns[table]) - set(row), set(row) - set(columns[table])
            raise InputError(f"{file}:{number}: a {table} row must have exactly the journal's "
                             f"columns (missing: {', '.join(sorted(missing)) or 'none'}; "
                             f"unknown: {', '.join(sorted(extra)) or 'none'}). Nothing was "
                             "imported.")
        bad = [c for c, v in row.items()
               if not (v is None or isinstance(v, str) or type(v) is int)]
        if bad:
            raise InputError(f"{file}:{number}: {table}.{bad[0]} must be text, a whole number "
                             "or null. Nothing was imported.")
        rows[table].append((number, row))
    found = sum(len(r) for r in rows.values())
    if header.get("rows") != found:
        raise InputError(f"{file}: the export says {header.get('rows')} rows but holds {found} "
                         "(cut short?). Nothing was imported.")
    return rows


def _refuse_unless_empty(db: Database, where: str) -> None:
    counts = {t: db.execute(f"SELECT count(*) AS n FROM {t}").fetchone()["n"] for t in TABLES}
    if any(counts.values()):
        held = ", ".join(f"{n} {t}" for t, n in counts.items() if n)
        raise JournalError(f"{where} is not empty ({held}): a journal is imported only into a "
                           "new, empty one. Nothing was imported: point the inventory's "
                           "journal at an empty database (or schema, or directory).")
