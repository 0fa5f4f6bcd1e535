"""The command check (real processes on a LocalHost) and the http check (a real server)."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.verify.helpers import check, config
from upgrade.hosts.host import LocalHost

PY = sys.executable
# A check's time-out where the first answer must come in it, even on a loaded machine (the
# checks below fail or are inconclusive for what they are, not for running out of time).
LOADED = 3.0


class _Handler(BaseHTTPRequestHandler):
    release = threading.Event()

    def do_GET(self) -> None:
        if self.path.startswith("/slow"):
            self.release.wait(600)  # until the test ends: only the time-out helps
        code, body = {"/ok": (200, "scheduler says all good"), "/created": (201, "made"),
                      }.get(self.path.split("?")[0], (503, "upstream unavailable"))
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        _Handler.release.set()
        httpd.shutdown()
        httpd.server_close()
        _Handler.release.clear()


# --------------------------------------------------------------------------- command


def test_a_failing_command_fails_with_its_output(cp, catalog, tmp_path: Path):
    argv = [PY, "-c", "import sys; print('smoke: 2 of 9 DAG runs failed'); sys.exit(3)"]

    verdict = check(cp, catalog, config({"name": "command", "argv": argv, "timeout": LOADED}),
                    host=LocalHost(), repo_dir=str(tmp_path))

    result = verdict.results[0]
    assert result.status == "fail"
    assert result.attempts > 1  # a smoke test may pass once the Deployment has warmed up
    assert "exited 3, expected 0: smoke: 2 of 9 DAG runs failed" in result.message
    assert f"on local in {tmp_path}" in result.message
    assert not verdict.ok


def test_a_command_runs_in_the_repo_and_may_expect_another_code(cp, catalog, tmp_path: Path):
    (tmp_path / "marker").write_text("here")
    argv = [PY, "-c", "import os, sys; sys.exit(4 if os.path.exists('marker') else 9)"]

    verdict = check(cp, catalog, config({"name": "command", "argv": argv, "expect_exit": 4}),
                    host=LocalHost(), repo_dir=str(tmp_path))

    assert verdict.ok
    assert f"on local in {tmp_path} exited 4 in " in verdict.results[0].message


def test_a_command_is_retried_until_it_passes(cp, catalog, tmp_path: Path):
    script = ("import pathlib, sys; p = pathlib.Path('tries'); n = int(p.read_text() or 0) "
              "if p.exists() else 0; p.write_text(str(n + 1)); sys.exit(0 if n >= 2 else 1)")

    verdict = check(cp, catalog, config({"name": "command", "argv": [PY, "-c", script]}),
                    host=LocalHost(), repo_dir=str(tmp_path))

    assert verdict.ok
    assert verdict.results[0].attempts == 3
    assert (tmp_path / "tries").read_text() == "3"


def test_a_command_that_does_not_exist_fails_at_once(cp, catalog, tmp_path: Path):
    verdict = check(cp, catalog, config({"name": "command", "argv": ["no-such-smoke-test"],
                                         "timeout": 30}),
                    host=LocalHost(), repo_dir=str(tmp_path))

    assert verdict.results[0].attempts == 1  # final: it did not try again for 30 s
    assert verdict.results[0].status == "fail"
    assert "exited 127" in verdict.results[0].message


def test_a_command_past_its_time_out_is_killed_and_fails(cp, catalog, tmp_path: Path):
    verdict = check(cp, catalog, config({"name": "command", "timeout": 0.5,
                                         "argv": [PY, "-c", "import time; time.sleep(600)"]}),
                    host=LocalHost(), repo_dir=str(tmp_path))

    result = verdict.results[0]
    assert result.status == "fail"
    assert "did not finish within" in result.message and "was killed" in result.message


def test_command_env_values_that_are_secrets_are_not_shown(cp, catalog, tmp_path: Path):
    secret = "s3cr3t-value-123"
    argv = [PY, "-c", "import os, sys; print('token', os.environ['SMOKE_TOKEN']); sys.exit(1)"]

    verdict = check(cp, catalog, config({"name": "command", "argv": argv, "timeout": 0.3,
                                         "env": {"SMOKE_TOKEN": secret}}),
                    host=LocalHost(), repo_dir=str(tmp_path))

    assert verdict.results[0].status == "fail"
    assert secret not in verdict.results[0].message
    assert "token ***" in verdict.results[0].message


def test_a_command_without_a_host_is_inconclusive(cp, catalog):
    verdict = check(cp, catalog, config({"name": "command", "argv": ["true"]}))
    assert verdict.results[0].status == "inconclusive"
    assert "no repo host and directory were given" in verdict.results[0].message


# ------------------------------------------------------------------------------ http


def test_http_passes_on_the_expected_status_and_text(cp, catalog, server: str):
    verdict = check(cp, catalog, config(
        {"name": "http", "url": f"{server}/ok", "contains": "all good"},
        {"name": "http", "url": f"{server}/created", "expect_status": 201}))

    assert verdict.ok, verdict.summary
    assert verdict.results[0].message == f"GET {server}/ok answered 200 and contains 'all good'."


def test_http_wrong_status_fails_after_its_time_out(cp, catalog, server: str):
    verdict = check(cp, catalog, config({"name": "http", "url": f"{server}/health?key=abc123",
                                         "timeout": LOADED}))

    result = verdict.results[0]
    assert result.status == "fail" and result.attempts > 1
    assert f"GET {server}/health answered 503, expected 200." in result.message
    assert "abc123" not in result.message  # the query may hold a key: never shown


def test_http_missing_text_fails(cp, catalog, server: str):
    verdict = check(cp, catalog, config({"name": "http", "url": f"{server}/ok",
                                         "contains": "version 2.11", "timeout": LOADED}))
    assert verdict.results[0].status == "fail"
    assert "does not contain 'version 2.11'" in verdict.results[0].message


def test_http_without_an_answer_is_inconclusive(cp, catalog, server: str):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = check(cp, catalog, config({"name": "http", "url": f"http://127.0.0.1:{port}/",
                                         "timeout": LOADED}))
    assert refused.results[0].status == "inconclusive"
    assert "ConnectError" in refused.results[0].message

    slow = check(cp, catalog, config({"name": "http", "url": f"{server}/slow", "timeout": LOADED,
                                      "request_timeout": 0.2}))
    assert slow.results[0].status == "inconclusive"
    assert "did not answer within 0.2 s" in slow.results[0].message
