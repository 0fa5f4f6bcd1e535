"""Tell people what a rollout is doing: a webhook on wave start, pass, halt and gate refusal.

The message is Slack-compatible JSON (``text`` and ``blocks``), which Slack, Mattermost,
Rocket.Chat and most chat bridges accept, with the event and its details alongside for
other receivers. A webhook that fails or hangs never stops a rollout: ``send`` returns a
warning for the caller to show and never raises. The URL is a secret (Slack puts the
credential in the path), so messages show only ``scheme://host/…``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from upgrade.config.inventory import Inventory
from upgrade.config.notifications import EVENTS, WebhookSettings
from upgrade.model.redact import Redactor, display_url

MAX_NAMES = 20  # Deployment names listed in one message
# Past the time-out, how long a stuck request may take to give up before we stop waiting.
GRACE = 1.0

_ICON = {"wave_started": ":arrow_forward:", "wave_passed": ":white_check_mark:",
         "wave_halted": ":x:", "gate_refused": ":no_entry:"}
_HEADLINE = {"wave_started": "started", "wave_passed": "passed its gate",
             "wave_halted": "halted", "gate_refused": "was refused by the gate"}


@dataclass(frozen=True)
class Notifier:
    """Posts rollout events to one webhook (settings validated with the inventory)."""

    settings: WebhookSettings

    @property
    def url(self) -> str:
        """The webhook URL: a secret, never shown."""
        return self.settings.url

    @property
    def timeout(self) -> float:
        """Seconds one post may take."""
        return self.settings.timeout

    @property
    def events(self) -> tuple[str, ...]:
        """The events this webhook wants."""
        return self.settings.events

    def __repr__(self) -> str:  # the URL is a secret: keep it out of logs and tracebacks
        return f"Notifier({self.settings!r})"

    @property
    def where(self) -> str:
        """The webhook as it may be shown: ``scheme://host/…``."""
        return display_url(self.url)

    @classmethod
    def for_inventory(cls, inv: Inventory) -> Notifier | None:
        """The notifier the inventory's ``notifications:`` asks for, or None."""
        return cls(inv.notifications) if inv.notifications is not None else None

    def send(self, event: str, payload: Mapping[str, Any]) -> str | None:
        """Post one event; a warning to show when it was not delivered, else None.

        Never raises. Events not listed in ``events`` are skipped (None).
        """
        try:
            if event not in EVENTS:
                return f"notification '{event}' not sent: unknown event (known: " \
                       f"{', '.join(EVENTS)})."
            if event not in self.events:
                return None
            return self._post(event, message(event, payload))
        except Exception as exc:  # a notification must never take a rollout down
            return f"notification '{event}' to {self.where} not sent: " \
                   f"{self._clean(type(exc).__name__ + ': ' + str(exc))}"

    def _post(self, event: str, body: dict[str, Any]) -> str | None:
        box: dict[str, Any] = {}

        def post() -> None:
            try:
                with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
                    box["response"] = client.post(self.url, json=body)
            except BaseException as exc:  # reported by the waiting thread
                box["error"] = exc

        # httpx's time-out is per read, so a server that trickles bytes could hold a
        # request far longer; the thread bounds the whole exchange.
        worker = threading.Thread(target=post, name=f"notify-{event}", daemon=True)
        worker.start()
        worker.join(self.timeout + GRACE)
        what = f"notification '{event}' to {self.where}"
        if worker.is_alive() or isinstance(box.get("error"), httpx.TimeoutException):
            return f"{what} not delivered: no answer within {self.timeout:g} s."
        if "error" in box:
            exc = box["error"]
            return f"{what} not delivered: {type(exc).__name__}: {self._clean(str(exc))}"
        resp: httpx.Response = box["response"]
        if 200 <= resp.status_code < 300:
            return None
        snippet = self._clean(" ".join(resp.text.split())[:200])
        return f"{what} not delivered: it answered {resp.status_code}" + (
            f" ({snippet})." if snippet else ".")

    def _clean(self, text: str) -> str:
        """``text`` with the URL shown as ``where`` and every secret piece of it redacted."""
        text = text.replace(self.url, self.where)
        parts = urlsplit(self.url)
        # Slack and most chat services put the credential in the path or the query.
        pieces = [*parts.path.split("/"), *parts.query.split("&"), parts.password]
        return Redactor.from_env(os.environ).also(
            *(piece for piece in pieces if piece and len(piece) >= 6))(text)


# ------------------------------------------------------------------------- message


def message(event: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body for one event: Slack ``text`` and ``blocks``, plus ``event``/``details``.

    Payload keys read (all optional): ``rollout``, ``wave``, ``target``, ``deployments``
    (a count or names), ``failed`` (names), ``reason``, ``by`` (who overrode a gate).
    """
    wave = payload.get("wave")
    rollout = payload.get("rollout")
    title = f"Wave {wave}" if wave is not None else "A wave"
    if rollout:
        title += f" of rollout {rollout}"
    title += f" {_HEADLINE.get(event, event)}"
    target = payload.get("target")
    if target:
        title += f" (Astro Runtime {target})"
    lines = [f"{_ICON.get(event, '')} {title}.".strip()]
    deployments = payload.get("deployments")
    if isinstance(deployments, int) and not isinstance(deployments, bool):
        lines.append(f"Deployments: {deployments}.")
    elif isinstance(deployments, list | tuple) and deployments:
        lines.append(f"Deployments ({len(deployments)}): {_names(deployments)}.")
    failed = payload.get("failed")
    if isinstance(failed, list | tuple) and failed:
        lines.append(f"Failed ({len(failed)}): {_names(failed)}.")
    if payload.get("reason"):
        lines.append(f"Reason: {payload['reason']}")
    if payload.get("by"):
        lines.append(f"By: {payload['by']}")
    text = "\n".join(lines)
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        "event": event,
        "details": {str(k): _plain(v) for k, v in payload.items()},
    }


def _names(items: Any) -> str:
    names = [str(n) for n in items]
    more = f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else ""
    return ", ".join(names[:MAX_NAMES]) + more


def _plain(value: Any) -> Any:
    """JSON-safe data: containers kept, anything else as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)
