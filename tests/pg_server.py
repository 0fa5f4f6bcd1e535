"""A real PostgreSQL for the journal tests: one throw-away cluster per pytest worker.

``scripts/postgres-test-server.sh`` installs Debian's postgresql if it is missing (as root,
with apt-get), runs initdb in a temp dir and starts the cluster on a free loopback port,
reachable over TCP with a random password only. Each test that asks for ``pg_url`` gets a
schema of its own (the journal lives in the URL's search_path), so tests never share a
journal or a lock. The tests are skipped only when PostgreSQL is not installed and cannot be.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "postgres-test-server.sh"


def script(*args: str, timeout: float = 600,
           fsync: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the server script; its completed process (never raises on a non-zero exit)."""
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False,
                          env={**os.environ, "PG_FSYNC": "on" if fsync else "off"})


@dataclass
class PostgresServer:
    """One running test cluster and how to reach it."""

    dir: Path
    port: int
    user: str
    password: str

    def url(self, schema: str | None = None, database: str = "postgres") -> str:
        """A URL without the password (it comes from PGPASSWORD), in ``schema`` if given."""
        options = f"?options=-csearch_path%3D{schema}" if schema else ""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}{options}"

    def admin(self) -> psycopg.Connection:
        """A superuser connection (autocommit) to set things up or look behind the tool."""
        return psycopg.connect(host="127.0.0.1", port=self.port, user=self.user,
                               password=self.password, dbname="postgres", autocommit=True)

    def new_schema(self) -> str:
        """An empty schema of its own for one test."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self.admin() as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return name

    def halt(self) -> None:
        """Stop the server, keeping its data: the database is down."""
        done = script("halt", str(self.dir), timeout=120)
        assert done.returncode == 0, done.stderr

    def restart(self) -> None:
        """Start it again after :meth:`halt`, on the same port."""
        done = script("restart", str(self.dir), timeout=120)
        assert done.returncode == 0, done.stderr


def start_server(directory: Path, *, fsync: bool = False) -> PostgresServer:
    """Install (if needed) and start a cluster with its state in ``directory``; without
    fsync unless asked (the tests check the tool, not the disk)."""
    installed = script("install")
    if installed.returncode != 0:
        pytest.skip(f"no PostgreSQL: {installed.stderr.strip()}")
    started = script("start", str(directory), timeout=120, fsync=fsync)
    if started.returncode != 0:
        pytest.fail(f"PostgreSQL did not start: {started.stderr}")
    env = dict(line.split("=", 1) for line in started.stdout.split() if "=" in line)
    return PostgresServer(directory, int(env["PG_PORT"]), env["PG_USER"], env["PG_PASSWORD"])


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """This pytest worker's PostgreSQL cluster."""
    server = start_server(tmp_path_factory.mktemp("postgres"))
    try:
        yield server
    finally:
        script("stop", str(server.dir), timeout=120)


@pytest.fixture
def pg_url(postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """The URL of an empty schema of this test's own; PGPASSWORD is set (as in CI)."""
    monkeypatch.setenv("PGPASSWORD", postgres.password)
    return postgres.url(postgres.new_schema())


@pytest.fixture
def pg_env(postgres: PostgresServer) -> dict[str, str]:
    """The environment for a child process that uses the test cluster."""
    return {**os.environ, "PGPASSWORD": postgres.password}
