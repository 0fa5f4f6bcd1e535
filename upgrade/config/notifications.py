"""Where rollout events are announced: the ``notifications:`` section, validated at load.

One kind so far, a webhook: ``url`` (or ``url_env``, the name of an environment variable
holding it, so the secret stays out of the inventory), ``timeout`` and ``events``. The URL
is a secret (Slack puts the credential in its path): no message ever shows more of it than
``scheme://host/…``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from upgrade.config.checker import Checker, did_you_mean, http_url_problem
from upgrade.config.located import LMap, LScalar, LSeq, join
from upgrade.model.redact import display_url

EVENTS = ("wave_started", "wave_passed", "wave_halted", "gate_refused")
DEFAULT_TIMEOUT = 5.0
MAX_TIMEOUT = 60.0
NOTIFICATION_KEYS = ("webhook",)
WEBHOOK_KEYS = ("url", "url_env", "timeout", "events")


@dataclass(frozen=True)
class WebhookSettings:
    """One webhook: where to post, how long to wait, which events."""

    url: str
    timeout: float = DEFAULT_TIMEOUT
    events: tuple[str, ...] = EVENTS

    def __repr__(self) -> str:  # the URL is a secret: keep it out of logs and tracebacks
        return f"WebhookSettings(url={display_url(self.url)!r}, timeout={self.timeout}, " \
               f"events={self.events})"


def read_notifications(c: Checker, top: LMap) -> WebhookSettings | None:
    """The ``notifications:`` section: the webhook it asks for, or None."""
    section = c.mapping(top, "notifications", "")
    if section is None:
        return None
    for key in section:
        if key not in NOTIFICATION_KEYS:
            hint = did_you_mean(str(key), NOTIFICATION_KEYS) or " The only kind is 'webhook'."
            c.add(section.key_line(key), join("notifications", key),
                  f"unknown notification kind.{hint}")
    if "webhook" not in section:
        return None
    hook = section.get("webhook")
    path, line = "notifications.webhook", section.key_line("webhook")
    if isinstance(hook, LScalar) and hook.value is None:
        c.add(line, path, "is empty: give it a url (or url_env).")
        return None
    if not c.expect(hook, LMap, path, line):
        return None
    assert isinstance(hook, LMap)
    c.keys(hook, WEBHOOK_KEYS, path)
    before = len(c.problems)
    url = _url(c, hook, path, line)
    timeout = DEFAULT_TIMEOUT
    if "timeout" in hook:
        value = hook.get("timeout")
        number = value.value if isinstance(value, LScalar) else None
        if (isinstance(number, bool) or not isinstance(number, int | float)
                or not math.isfinite(number) or not 0 < number <= MAX_TIMEOUT):
            c.add(hook.key_line("timeout"), join(path, "timeout"),
                  f"must be a number of seconds, more than 0 and at most {MAX_TIMEOUT:g}, got "
                  f"{value.kind if value is not None else 'nothing'}.")
        else:
            timeout = float(number)
    events = _events(c, hook, path)
    if url is None or len(c.problems) > before:
        return None
    return WebhookSettings(url, timeout, events)


def _url(c: Checker, hook: LMap, path: str, line: int) -> str | None:
    has_url, has_env = "url" in hook, "url_env" in hook
    if has_url == has_env:
        c.add(line, path, "give exactly one of url (the webhook URL) or url_env (the name "
              "of an environment variable holding it, so the secret stays out of the "
              "inventory).")
        return None
    if has_env:
        full, line = join(path, "url_env"), hook.key_line("url_env")
        name = c.string(hook, "url_env", path)
        if name is None:
            return None
        value = os.environ.get(name)
        if not value:
            c.add(line, full, f"environment variable {name} is not set (or empty). Export the "
                  "webhook URL in it.")
            return None
        return _check_url(c, value, line, full, f"the value of {name}")
    node = hook.get("url")
    value = node.value if isinstance(node, LScalar) else None
    return _check_url(c, value, hook.key_line("url"), join(path, "url"), "it")


def _check_url(c: Checker, value: object, line: int, full: str, what: str) -> str | None:
    problem = http_url_problem(value) if isinstance(value, str) else "it is not text"
    if problem:
        # Never echo the value: it may be a secret pasted in the wrong place (nor the
        # parser's words, which may quote it).
        c.add(line, full, f"must be an http:// or https:// URL with a host; {what} is not.")
        return None
    assert isinstance(value, str)
    return value


def _events(c: Checker, hook: LMap, path: str) -> tuple[str, ...]:
    if "events" not in hook:
        return EVENTS
    node, full = hook.get("events"), join(path, "events")
    if not isinstance(node, LSeq) or not node.items:
        c.add(hook.key_line("events"), full,
              f"must be a non-empty list of events: {', '.join(EVENTS)}.")
        return EVENTS
    out: list[str] = []
    for i, item in enumerate(node.items):
        event = item.value if isinstance(item, LScalar) else None
        if event not in EVENTS:
            hint = did_you_mean(str(event), EVENTS) or f" Known events: {', '.join(EVENTS)}."
            c.add(item.line, f"{full}[{i}]", f"unknown event {event!r}.{hint}")
        elif event not in out:
            out.append(event)
    return tuple(out)
