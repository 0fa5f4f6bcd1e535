"""Every secret the configuration names is hidden in every output, end to end.

The sources: the journal's database password, from ``journal.url_env`` (a URL holding the
password) or ``journal.password_env``; a forge token from ``git.token_env``; the Airflow
token from ``control_plane.token_env``; a webhook URL from ``notifications…url_env``. None
of those variable names says "secret" (the rule for names would not catch them): the
configuration does. A deploy fails with Astro's message quoting every one of them (the
simulator's ``deploy_error`` fault), and each output is read back: stdout and stderr, the
``--log-file``, the journal's rows in the real PostgreSQL, ``journal.export``, ``status``,
and the Markdown and HTML reports.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
import yaml
from pg_server import PostgresServer
from simulators import SimHandle
from support import ASTRO_FLEET

from tests.rollout.helpers import GIT_IDENTITY, make_fleet
from upgrade.model.redact import REDACTED

FORGE_TOKEN = "forge-pat-6fa1c0ffee27"
AIRFLOW_TOKEN = "airflow-bearer-51d3c0de27"


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the block ends: nobody listens there


def _astro_fleet(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ASTRO_FLEET, *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=180, check=False)


@pytest.mark.parametrize("source", ["url_env", "password_env"])
def test_each_configured_secret_is_hidden_in_every_output(
        tmp_path: Path, sim: SimHandle, postgres: PostgresServer, source: str) -> None:
    fleet = make_fleet(tmp_path, sim, repos=1)
    schema = postgres.new_schema()
    base = postgres.url(schema)
    hook = f"http://127.0.0.1:{_dead_port()}/services/T0427/B0427/hooksecret0427"
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    env.update(GIT_IDENTITY, COLUMNS="200", FORGE_PAT=FORGE_TOKEN, AIRFLOW_BEARER=AIRFLOW_TOKEN,
               FLEET_HOOK=hook)
    if source == "url_env":
        env["FLEET_DB"] = base.replace(f"{postgres.user}@",
                                       f"{postgres.user}:{postgres.password}@")
        journal = {"url_env": "FLEET_DB"}
    else:
        env["FLEET_DB_PW"] = postgres.password
        journal = {"url": base, "password_env": "FLEET_DB_PW"}
    doc = yaml.safe_load(fleet.inventory.read_text("utf-8"))
    doc["journal"] = journal
    doc["control_plane"]["token_env"] = "AIRFLOW_BEARER"
    doc["defaults"] = {"git": {"token_env": "FORGE_PAT"}}
    doc["notifications"] = {"webhook": {"url_env": "FLEET_HOOK", "timeout": 1}}
    fleet.inventory.write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    secrets = {"database password": postgres.password, "forge token": FORGE_TOKEN,
               "airflow token": AIRFLOW_TOKEN, "webhook URL": hook}
    (dep,) = fleet.deps
    sim.set_fault(dep.id, deploy_error="could not log in with " + " and ".join(
        f"{what} {value}" for what, value in secrets.items()))

    log = tmp_path / "ci" / "run.jsonl"
    run = _astro_fleet(fleet.root, env, "-v", "--log-file", str(log), "upgrade", "--wave", "1")
    assert run.returncode == 4, run.stdout + run.stderr
    status = _astro_fleet(fleet.root, env, "status", "--json")
    exported = _astro_fleet(fleet.root, env, "journal.export", "--file", "journal.jsonl")
    assert status.returncode == exported.returncode == 0, status.stderr + exported.stderr
    with postgres.admin() as conn:
        rows = {table: "\n".join(str(r) for r in conn.execute(
            f"SELECT * FROM {schema}.{table}").fetchall())
            for table in ("deployments", "events", "waves", "rollouts")}
    reports = fleet.root / ".upgrade" / "reports"
    outputs = {
        "stdout": run.stdout, "stderr": run.stderr, "--log-file": log.read_text("utf-8"),
        "deployments.error": rows["deployments"], "events": rows["events"],
        "waves and rollouts": rows["waves"] + rows["rollouts"],
        "journal.export": (fleet.root / "journal.jsonl").read_text("utf-8"),
        "status --json": status.stdout,
        "Markdown report": (reports / "rollout-1-wave-1.md").read_text("utf-8"),
        "HTML report": (reports / "rollout-1.html").read_text("utf-8"),
    }
    # Each output really carries the failure (the message, redacted), so a missing secret
    # means it was hidden, not that the text never got there.
    for where in ("stderr", "--log-file", "deployments.error", "events", "journal.export",
                  "Markdown report", "HTML report"):
        assert "could not log in with database password" in outputs[where], where
    leaks = [(what, where) for what, value in secrets.items()
             for where, text in outputs.items() if value in text]
    assert leaks == []
    assert f"database password {REDACTED} and forge token {REDACTED}" in outputs["--log-file"]
