"""Durable simulator state: one SQLite file (WAL) in the state directory.

The server keeps everything in memory and writes through on every mutation,
so reads never touch the disk and a restart re-reads exactly what was there.
Each Deployment is one JSON document; config and counters live in ``meta``.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Store:
    """Write-through persistence for the simulator's documents."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # autocommit: every statement is its own transaction, committed at once.
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def load_deployments(self) -> dict[str, dict]:
        """Every stored Deployment document, by id."""
        rows = self._db.execute("SELECT id, doc FROM deployments").fetchall()
        return {row[0]: json.loads(row[1]) for row in rows}

    def load_meta(self, key: str, default: object = None) -> object:
        """One JSON value from ``meta``."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def save_meta(self, key: str, value: object) -> None:
        """Store one JSON value in ``meta``."""
        self._db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value))
        )

    def save_deployment(self, doc: dict) -> None:
        """Insert or replace one Deployment document."""
        self._db.execute(
            "INSERT OR REPLACE INTO deployments (id, doc) VALUES (?, ?)",
            (doc["id"], json.dumps(doc, separators=(",", ":"))),
        )

    def delete_deployment(self, deployment_id: str) -> None:
        """Forget one Deployment."""
        self._db.execute("DELETE FROM deployments WHERE id = ?", (deployment_id,))

    def clear(self) -> None:
        """Forget every Deployment and every meta value."""
        self._db.execute("DELETE FROM deployments")
        self._db.execute("DELETE FROM meta")

    def close(self) -> None:
        """Checkpoint and close the database."""
        self._db.close()
