"""Webhook notifications against real local HTTP servers: delivered, refused, hanging."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from upgrade.config.inventory import Inventory
from upgrade.config.inventory_loader import load_inventory
from upgrade.config.notifications import EVENTS, WebhookSettings
from upgrade.errors import InventoryError
from upgrade.model.versions import parse_version
from upgrade.run.rollout.notify import Notifier, message

# Slack puts the credential in the path; it must never be shown.
SECRET_PATH = "/services/T0FLEET/B0WAVES/xoxbSECRETsecret42"


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []  # each fixture makes a subclass with its own
    status = 200
    release = threading.Event()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.status == 0:  # hang until the test ends
            self.release.wait(600)
            return
        type(self).received.append({"path": self.path, "json": json.loads(body),
                                    "type": self.headers["Content-Type"]})
        text = b"ok" if self.status == 200 else f"invalid_token {SECRET_PATH}".encode()
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, type[_Hook]]]:
    """A webhook receiver on 127.0.0.1; set ``.status`` (0 = never answer)."""
    handler = type("Hook", (_Hook,), {"received": [], "status": 200,
                                      "release": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{SECRET_PATH}", handler
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()


def inventory(tmp_path: Path, notifications: str) -> Inventory:
    (tmp_path / "repo").mkdir(exist_ok=True)
    (tmp_path / "repo" / "Dockerfile").write_text("FROM quay.io/astronomer/astro-runtime:12.4.0\n")
    path = tmp_path / "inventory.yaml"
    path.write_text('target: "12.5"\n' + notifications + "repos:\n  repo:\n    path: repo\n"
                    "    deployments:\n      - {id: d1, name: one, workspace_id: ws, wave: 1}\n")
    return load_inventory(path)


def test_wave_events_are_posted_as_slack_json(tmp_path: Path, hook):
    url, handler = hook
    inv = inventory(tmp_path, f"notifications:\n  webhook:\n    url: {url}\n    timeout: 2\n")
    notifier = Notifier.for_inventory(inv)
    assert notifier is not None and notifier.events == EVENTS

    warning = notifier.send("wave_halted", {
        "rollout": "r-20250101", "wave": 2, "target": parse_version("12.5.0"),
        "deployments": ["billing-prod", "search-prod", "ads-prod"],
        "failed": ["search-prod"], "reason": "1 of 3 failed verification (budget 0)"})

    assert warning is None
    (got,) = handler.received
    assert got["path"] == SECRET_PATH and got["type"] == "application/json"
    body = got["json"]
    assert body["text"] == (
        ":x: Wave 2 of rollout r-20250101 halted (Astro Runtime 12.5.0).\n"
        "Deployments (3): billing-prod, search-prod, ads-prod.\n"
        "Failed (1): search-prod.\n"
        "Reason: 1 of 3 failed verification (budget 0)")
    assert body["blocks"] == [{"type": "section",
                               "text": {"type": "mrkdwn", "text": body["text"]}}]
    assert body["event"] == "wave_halted"
    assert body["details"]["target"] == "12.5.0" and body["details"]["wave"] == 2


def test_only_the_configured_events_are_sent(tmp_path: Path, hook):
    url, handler = hook
    inv = inventory(tmp_path, f"notifications:\n  webhook:\n    url: {url}\n"
                              "    events: [wave_halted, gate_refused]\n")
    notifier = Notifier.for_inventory(inv)
    assert notifier is not None

    assert notifier.send("wave_started", {"wave": 1, "deployments": 4}) is None
    assert notifier.send("gate_refused", {"wave": 2, "reason": "wave 1 soaks until 14:00"}) \
        is None

    assert [r["json"]["event"] for r in handler.received] == ["gate_refused"]
    assert handler.received[0]["json"]["text"].startswith(
        ":no_entry: Wave 2 was refused by the gate.")


def test_a_failing_webhook_is_a_warning_without_the_url(tmp_path: Path, hook):
    url, handler = hook
    handler.status = 500
    notifier = Notifier(WebhookSettings(url, timeout=2))

    warning = notifier.send("wave_passed", {"wave": 1})

    assert warning is not None
    assert warning.startswith("notification 'wave_passed' to http://127.0.0.1:")
    assert "/… not delivered: it answered 500 (invalid_token" in warning
    assert "SECRET" not in warning and "T0FLEET" not in warning


def test_a_hanging_webhook_times_out_with_a_warning(hook):
    url, handler = hook
    handler.status = 0
    notifier = Notifier(WebhookSettings(url, timeout=0.3))

    warning = notifier.send("wave_started", {"wave": 1})

    # Only the client's time-out ends the wait: the hook answers when the test ends.
    assert warning is not None and warning.endswith("not delivered: no answer within 0.3 s.")
    assert "SECRET" not in warning


def test_an_unreachable_webhook_is_a_warning():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    notifier = Notifier(WebhookSettings(f"http://127.0.0.1:{port}{SECRET_PATH}", timeout=1))

    warning = notifier.send("wave_halted", {"wave": 3})

    assert warning is not None and "ConnectError" in warning
    assert "SECRET" not in warning
    assert "SECRET" not in repr(notifier)


def test_odd_calls_never_raise(hook):
    url, handler = hook
    notifier = Notifier(WebhookSettings(url, timeout=1))
    assert "unknown event" in (notifier.send("wave_exploded", {}) or "")

    class Weird:
        def __str__(self) -> str:
            return "weird"

    assert notifier.send("wave_started", {"wave": None, "deployments": {1, 2},
                                          "extra": Weird()}) is None
    assert handler.received[0]["json"]["details"]["extra"] == "weird"


def test_url_may_come_from_the_environment(tmp_path: Path, hook, monkeypatch):
    url, handler = hook
    monkeypatch.setenv("FLEET_WEBHOOK_URL", url)
    inv = inventory(tmp_path, "notifications:\n  webhook:\n    url_env: FLEET_WEBHOOK_URL\n")

    notifier = Notifier.for_inventory(inv)

    assert notifier is not None and notifier.send("wave_started", {"wave": 1}) is None
    assert len(handler.received) == 1


def test_no_notifications_means_no_notifier(tmp_path: Path):
    assert Notifier.for_inventory(inventory(tmp_path, "")) is None
    assert Notifier.for_inventory(inventory(tmp_path, "notifications: {}\n")) is None


def test_bad_settings_are_refused_with_file_line_and_key(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_HOOK", raising=False)
    with pytest.raises(InventoryError) as caught:
        inventory(tmp_path, (
        "notifications:\n"
        "  webhook:\n"
        f"    url: ftp://hooks.example.com{SECRET_PATH}\n"
        "    timeout: 0\n"
        "    events: [wave_started, wave_halt]\n"
        "    retries: 3\n"
        "  email: {to: ops@example.com}\n"))

    f = str(tmp_path / "inventory.yaml")
    text = (tmp_path / "inventory.yaml").read_text()

    def line_of(needle: str) -> int:
        return next(i + 1 for i, line in enumerate(text.splitlines()) if needle in line)

    assert str(caught.value).splitlines() == [
        f"{f}:{line_of('ftp://')}: notifications.webhook.url: must be an http:// or "
        "https:// URL with a host; it is not.",
        f"{f}:{line_of('timeout: 0')}: notifications.webhook.timeout: must be a number of "
        "seconds, more than 0 and at most 60, got the number 0.",
        f"{f}:{line_of('wave_halt]')}: notifications.webhook.events[1]: unknown event "
        "'wave_halt'. Did you mean 'wave_halted'?",
        f"{f}:{line_of('retries')}: notifications.webhook.retries: unknown key. Allowed "
        "keys: url, url_env, timeout, events.",
        f"{f}:{line_of('email')}: notifications.email: unknown notification kind. The "
        "only kind is 'webhook'.",
    ]
    assert "SECRET" not in str(caught.value)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(("text", "line", "expected"), [
    ("notifications:\n  webhook:\n    timeout: 5\n", 3,
     "notifications.webhook: give exactly one of url (the webhook URL) or url_env"),
    ("notifications:\n  webhook:\n    url_env: NO_SUCH_HOOK\n", 4,
     "notifications.webhook.url_env: environment variable NO_SUCH_HOOK is not set"),
    ("notifications:\n  webhook: https://hooks.example.com/x\n", 3,
     "notifications.webhook: must be a mapping, got the string 'https://hooks.example.com/x'."),
    ("notifications:\n  webhook:\n    url: https://hooks.example.com/x\n    events: []\n", 5,
     "notifications.webhook.events: must be a non-empty list of events"),
])
def test_each_refusal_names_its_key(tmp_path: Path, monkeypatch, text: str, line: int,
                                    expected: str):
    monkeypatch.delenv("NO_SUCH_HOOK", raising=False)
    with pytest.raises(InventoryError) as caught:
        inventory(tmp_path, text)
    assert str(caught.value).startswith(f"{tmp_path / 'inventory.yaml'}:{line}: {expected}")


def test_message_lists_at_most_twenty_names():
    body = message("wave_started", {"wave": 1, "deployments": [f"d{i}" for i in range(25)]})
    assert "Deployments (25): d0, d1," in body["text"]
    assert body["text"].endswith("d19 and 5 more.")
