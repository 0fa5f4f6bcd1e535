"""One redaction rule on every path that prints or stores text: the same secret, in each path,
comes out the same way (``***``), never in clear.

The paths: the astro CLI's output, the Airflow API's and the platform API's error bodies,
a command on a host, a verification check, a webhook's answer, the journal's notes and the
console. (A command over SSH is the same check in tests/ssh/test_ssh_redaction.py.)
"""

from __future__ import annotations

import io
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from upgrade.config.notifications import WebhookSettings
from upgrade.config.verify import merge_verify_config
from upgrade.controlplane.airflow import AirflowAPI, AirflowEndpoint
from upgrade.controlplane.astro import AstroCLI
from upgrade.controlplane.http import RetryPolicy
from upgrade.controlplane.platform import PlatformReader
from upgrade.errors import AirflowAPIError, AstroError, CommandFailed, PlatformError
from upgrade.hosts.host import LocalHost, run_checked
from upgrade.journal.records import DeploymentEntry
from upgrade.journal.store import Journal
from upgrade.model.redact import REDACTED
from upgrade.model.versions import parse_version
from upgrade.report import console
from upgrade.run.rollout.notify import Notifier

SECRET = "s3cr3t-d4t4b4se-pw-0427"  # the value of FLEET_DB_PASSWORD in every test below
ONE_TRY = RetryPolicy(attempts=1, backoff=0.01, backoff_max=0.01, total=5)


@pytest.fixture(autouse=True)
def secret_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_DB_PASSWORD", SECRET)


def redacted(text: str) -> None:
    assert SECRET not in text, text
    assert f"pw={REDACTED}" in text, text


class _Echo(BaseHTTPRequestHandler):
    """Answers every request 500 with a body that repeats the secret."""

    def _answer(self) -> None:
        body = json.dumps({"message": f"db said no: pw={SECRET}",
                           "detail": f"db said no: pw={SECRET}"}).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_astro_cli_output(tmp_path: Path):
    fake = tmp_path / "astro"
    fake.write_text(f"#!{sys.executable}\nimport os, sys\n"
                    "print('Error: db said no: pw=' + os.environ['FLEET_DB_PASSWORD'])\n"
                    "sys.exit(1)\n")
    fake.chmod(0o755)
    with pytest.raises(AstroError) as caught:
        AstroCLI(str(fake)).inspect("dep-1", "ws-1")
    redacted(str(caught.value) + caught.value.output + caught.value.astro_message)


def test_airflow_api_error_body(echo: str):
    endpoint = AirflowEndpoint.from_api_url(f"{echo}/d/dep-1/api/v1", deployment_id="dep-1")
    with AirflowAPI(retry=ONE_TRY) as api, pytest.raises(AirflowAPIError) as caught:
        api.health(endpoint)
    redacted(str(caught.value))


def test_platform_api_error_body(echo: str):
    with PlatformReader(f"{echo}/v1", "tok-0123456789", organization="org-1",
                        retry=ONE_TRY) as reader, pytest.raises(PlatformError) as caught:
        reader.deployment("dep-1")
    redacted(str(caught.value))


def test_a_command_on_a_host(tmp_path: Path):
    with pytest.raises(CommandFailed) as caught:
        run_checked(LocalHost(), ["sh", "-c", 'echo "db said no: pw=$FLEET_DB_PASSWORD"; exit 3'],
                    cwd=str(tmp_path), timeout=10)
    redacted(str(caught.value) + caught.value.stdout_tail)


def test_a_verification_command_check(tmp_path: Path):
    from upgrade.config.inventory import Deployment
    from upgrade.run.verify.verify import run_checks

    config = merge_verify_config({"checks": [{"name": "command", "argv": [
        "sh", "-c", 'echo "db said no: pw=$FLEET_DB_PASSWORD" >&2; exit 1']}],
        "timeout": 2, "poll_interval": 1}, None, None)
    dep = Deployment(id="dep-1", name="one", workspace_id="ws", repo="r", wave=1,
                     groups=frozenset(), vars={}, own_vars={})
    verdict = run_checks(None, config, dep, parse_version("12.4.0"), None,  # type: ignore[arg-type]
                         baseline=None, host=LocalHost(), repo_dir=str(tmp_path),
                         stop=threading.Event())
    redacted(verdict.summary)


def test_a_webhook_answer(echo: str):
    warning = Notifier(WebhookSettings(f"{echo}/hooks/T0")).send("wave_started", {"wave": 1})
    assert warning is not None
    redacted(warning)


def test_journal_notes_errors_and_reasons(tmp_path: Path):
    with Journal.open(tmp_path / "journal.db") as journal:
        rollout = journal.start_rollout("12.4", parse_version("12.4.0"), "inventory.yaml")
        journal.ensure_deployments(rollout.id, 1, [
            DeploymentEntry("dep-1", "one", "repo", parse_version("12.4.0"))])
        journal.event("note", rollout_id=rollout.id, message=f"db said no: pw={SECRET}",
                      data={"said": f"pw={SECRET}"})
        journal.transition(rollout.id, "dep-1", "failed", error=f"db said no: pw={SECRET}")
        journal.record_approval(rollout.id, 2, "ann@host", f"approved with pw={SECRET}")
    stored = (tmp_path / "journal.db").read_bytes().decode("utf-8", "replace")
    assert SECRET not in stored
    with Journal.open(tmp_path / "journal.db") as journal:
        texts = [e.message or "" for e in journal.events(None)]
        assert any(f"pw={REDACTED}" in t for t in texts)


def test_the_console(monkeypatch: pytest.MonkeyPatch):
    out = io.StringIO()
    monkeypatch.setattr(console.stderr, "file", out)
    console.error(f"db said no: pw={SECRET}")
    redacted(out.getvalue())
