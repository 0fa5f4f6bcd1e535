"""Verification settings: which checks run, with what budgets, merged from three levels.

The playbook's verify step is the starting list; ``waves.N.verify`` and then the
Deployment's ``vars.verify`` patch it by check name (``enabled: false`` removes one).
Every problem is reported at once with the file, line and key. Running the checks is
:mod:`upgrade.verify`'s business; this module only decides what to run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from upgrade.config.checker import did_you_mean, parse_duration
from upgrade.config.inventory import Deployment, Inventory, WaveSettings
from upgrade.config.located import LMap, LScalar, LSeq
from upgrade.errors import InventoryError, PlaybookError, Problem

CHECK_NAMES = ("version", "healthy", "airflow_version", "health", "import_errors", "command",
               "http")
REPEATABLE = frozenset({"command", "http"})
# These establish that the target is running; everything else reads that Runtime.
FIRST = ("version", "healthy")
DEFAULT_CHECKS = ("version", "healthy")  # the playbook's default too
COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")

DEFAULT_TIMEOUT = 900.0  # s, the whole verification
DEFAULT_POLL_INTERVAL = 10.0
CHECK_TIMEOUTS: Mapping[str, float] = {
    "version": 600.0, "healthy": 600.0, "airflow_version": 300.0, "health": 300.0,
    "import_errors": 120.0, "command": 300.0, "http": 60.0,
}
DAY = 86_400.0

TOP_KEYS = ("checks", "inconclusive", "timeout", "poll_interval")
# A playbook step's own keys, which are not verification settings.
STEP_KEYS = ("when", "retries", "name")
COMMON_KEYS = ("name", "timeout", "poll_interval", "enabled")
SETTINGS: Mapping[str, tuple[str, ...]] = {
    "version": (),
    "healthy": (),
    "airflow_version": ("expected",),
    "health": ("components", "max_heartbeat_age"),
    "import_errors": ("max_new", "settle"),
    "command": ("argv", "env", "expect_exit"),
    "http": ("url", "status", "expect_status", "contains", "request_timeout"),
}
REQUIRED: Mapping[str, tuple[str, ...]] = {"command": ("argv",), "http": ("url",)}


@dataclass(frozen=True)
class CheckSpec:
    """One check to run: its name, time budget, poll interval and own settings."""

    name: str
    timeout: float
    poll_interval: float
    settings: Mapping[str, Any] = field(default_factory=dict, hash=False)
    origin: str = "default"  # the level that set it last: playbook, waves.N.verify, ...


@dataclass(frozen=True)
class VerifyConfig:
    """The merged verification settings for one Deployment."""

    checks: tuple[CheckSpec, ...]
    inconclusive: str = "fail"  # fail | pass
    timeout: float = DEFAULT_TIMEOUT
    poll_interval: float = DEFAULT_POLL_INTERVAL

    def names(self) -> list[str]:
        """The check names, in run order."""
        return [c.name for c in self.checks]




class _Level:
    """One source of settings and how to name a key of it in a problem."""

    def __init__(self, label: str, data: Any, locate: Callable[[tuple[Any, ...], str], Problem],
                 *, from_inventory: bool, step: bool = False):
        self.label = label
        self.data = data
        self.locate = locate
        self.from_inventory = from_inventory
        self.step = step


def merge_verify_config(
    playbook: Mapping[str, Any] | None,
    wave: WaveSettings | Mapping[str, Any] | None,
    deployment: Deployment | Mapping[str, Any] | None,
    *,
    inventory: Inventory | None = None,
) -> VerifyConfig:
    """Merge the playbook verify step's args, ``waves.N.verify`` and ``vars.verify``.

    Later levels win. ``inconclusive``, ``timeout`` and ``poll_interval`` are replaced.
    The playbook's ``checks`` is the starting list (default ``[version, healthy]``); a
    wave's and then a Deployment's ``checks`` are merged into it by name: a check already
    listed gets the new settings on top of its own, a new one is added, ``enabled: false``
    removes it. ``command`` and ``http`` may repeat: each entry is added (``enabled:
    false`` on one removes all of that name). Every problem is reported at once
    (InventoryError, or PlaybookError when only the playbook's args are wrong), naming
    the file, line (when ``inventory`` is given) and key.
    """
    levels = [
        _playbook_level(playbook),
        _wave_level(wave, inventory),
        _deployment_level(deployment, inventory),
    ]
    problems: list[Problem] = []
    top: dict[str, Any] = {"inconclusive": "fail", "timeout": DEFAULT_TIMEOUT,
                           "poll_interval": DEFAULT_POLL_INTERVAL}
    checks: list[dict[str, Any]] = [{"name": n, "_origin": "default"} for n in DEFAULT_CHECKS]
    for level in levels:
        if level is None:
            continue
        found = _read_level(level, problems)
        if found is None:
            continue
        values, items = found
        top.update(values)
        if items is None:
            continue
        if level.step:
            checks = []  # the playbook's list is the starting list, not a patch
        for item in items:
            _merge_check(checks, item)
    if problems:
        error = InventoryError if any(p.file != _PLAYBOOK for p in problems) else PlaybookError
        raise error(problems)
    specs = []
    for item in checks:
        name = item["name"]
        settings = {k: v for k, v in item.items() if k not in COMMON_KEYS and k != "_origin"}
        if "expect_status" in settings:
            settings["status"] = settings.pop("expect_status")
        specs.append(CheckSpec(
            name=name,
            timeout=float(item.get("timeout", CHECK_TIMEOUTS[name])),
            poll_interval=float(item.get("poll_interval", top["poll_interval"])),
            settings=settings,
            origin=item["_origin"],
        ))
    order = sorted(range(len(specs)), key=lambda i: (specs[i].name not in FIRST, i))
    return VerifyConfig(
        checks=tuple(specs[i] for i in order),
        inconclusive=top["inconclusive"],
        timeout=float(top["timeout"]),
        poll_interval=float(top["poll_interval"]),
    )


_PLAYBOOK = "playbook"


def _playbook_level(data: Mapping[str, Any] | None) -> _Level | None:
    if data is None:
        return None

    def locate(keys: tuple[Any, ...], message: str) -> Problem:
        return Problem(_PLAYBOOK, None, _key_path(("verify", *keys)), message)

    return _Level("the playbook's verify step", data, locate, from_inventory=False, step=True)


def _wave_level(wave: WaveSettings | Mapping[str, Any] | None,
                inventory: Inventory | None) -> _Level | None:
    if wave is None:
        return None
    if isinstance(wave, WaveSettings):
        prefix: tuple[Any, ...] = ("waves", wave.number, "verify")
        data: Any = wave.verify
    else:
        prefix, data = ("waves", "N", "verify"), wave
    return _Level(_key_path(prefix), data, _locator(prefix, inventory), from_inventory=True)


def _deployment_level(deployment: Deployment | Mapping[str, Any] | None,
                      inventory: Inventory | None) -> _Level | None:
    if deployment is None:
        return None
    if not isinstance(deployment, Deployment):
        prefix: tuple[Any, ...] = ("vars", "verify")
        return _Level("vars.verify", deployment, _locator(prefix, None), from_inventory=True)
    if "verify" not in deployment.vars:
        return None
    prefix = _vars_origin(deployment, inventory)
    return _Level(f"{deployment.name}: {_key_path(prefix)}", deployment.vars["verify"],
                  _locator(prefix, inventory), from_inventory=True)


def _vars_origin(deployment: Deployment, inventory: Inventory | None) -> tuple[Any, ...]:
    """The key path of the ``verify`` variable in the layer that set it."""
    if inventory is None:
        return ("deployments", deployment.name, "vars", "verify")
    label = next((lbl for lbl, layer in reversed(inventory.layers(deployment))
                  if "verify" in layer), "")
    kind, _, name = label.partition(" ")
    if kind == "defaults":
        return ("defaults", "vars", "verify")
    if kind == "group":
        return ("groups", name, "vars", "verify")
    if kind == "repo":
        return ("repos", name, "vars", "verify")
    repos = inventory.source.get("repos")
    repo = repos.get(deployment.repo) if isinstance(repos, LMap) else None
    items = repo.get("deployments") if isinstance(repo, LMap) else None
    for i, node in enumerate(items.items if isinstance(items, LSeq) else ()):
        ident = node.get("id") if isinstance(node, LMap) else None
        if isinstance(ident, LScalar) and ident.value == deployment.id:
            return ("repos", deployment.repo, "deployments", i, "vars", "verify")
    return ("repos", deployment.repo, "deployments", deployment.name, "vars", "verify")


def _locator(prefix: tuple[Any, ...], inventory: Inventory | None
             ) -> Callable[[tuple[Any, ...], str], Problem]:
    def locate(keys: tuple[Any, ...], message: str) -> Problem:
        if inventory is not None:
            return inventory.problem((*prefix, *keys), message)
        return Problem("inventory.yaml", None, _key_path((*prefix, *keys)), message)

    return locate


def _key_path(keys: Sequence[Any]) -> str:
    out, previous = "", None
    for key in keys:
        if isinstance(key, int) and previous != "waves":  # a list index, not a wave number
            out = f"{out}[{key}]"
        else:
            out = f"{out}.{key}" if out else str(key)
        previous = key
    return out


def _read_level(level: _Level, problems: list[Problem]
                ) -> tuple[dict[str, Any], list[dict[str, Any]] | None] | None:
    """Validate one level: its top-level values and its normalised check entries."""
    data = level.data
    if not data:
        return {}, None
    if not isinstance(data, Mapping):
        problems.append(level.locate((), "must be a mapping with checks, inconclusive, "
                                         f"timeout or poll_interval, got {_kind(data)}."))
        return None
    allowed = TOP_KEYS + (STEP_KEYS if level.step else ())
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in allowed:
            hint = did_you_mean(key, TOP_KEYS) or f" Valid keys: {', '.join(TOP_KEYS)}."
            problems.append(level.locate((key,), f"unknown key.{hint}"))
        elif key == "inconclusive":
            if value not in ("fail", "pass"):
                problems.append(level.locate((key,), f"must be 'fail' or 'pass', got {value!r}."))
            else:
                values[key] = value
        elif key in ("timeout", "poll_interval"):
            seconds = _seconds(value, level, (key,), problems,
                               maximum=3600.0 if key == "poll_interval" else DAY)
            if seconds is not None:
                values[key] = seconds
    items = None
    if "checks" in data:
        items = _read_checks(data["checks"], level, problems)
    return values, items


def _read_checks(node: Any, level: _Level, problems: list[Problem]) -> list[dict[str, Any]]:
    if not isinstance(node, list | tuple) or (level.step and not node):
        problems.append(level.locate(("checks",), "must be a list of check names or mappings "
                                     "with 'name', e.g. [version, health, {name: http, url: "
                                     f"'https://...'}}], got {_kind(node)}."))
        return []
    out = []
    seen: set[str] = set()
    for i, item in enumerate(node):
        entry = _read_check(item, level, ("checks", i), problems)
        if entry is None:
            continue
        name = entry["name"]
        if name in seen and name not in REPEATABLE:
            problems.append(level.locate(("checks", i), f"check '{name}' is listed twice; "
                                         "give its settings once."))
            continue
        seen.add(name)
        entry["_origin"] = level.label
        out.append(entry)
    return out


def _read_check(item: Any, level: _Level, where: tuple[Any, ...], problems: list[Problem]
                ) -> dict[str, Any] | None:
    def bad(keys: tuple[Any, ...], message: str) -> None:
        problems.append(level.locate((*where, *keys), message))

    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, Mapping):
        bad((), f"must be a check name or a mapping with 'name', got {_kind(item)}.")
        return None
    name = item.get("name")
    if not isinstance(name, str) or name not in CHECK_NAMES:
        hint = did_you_mean(name, CHECK_NAMES) if isinstance(name, str) else ""
        what = f"unknown check {name!r}" if name is not None else "'name' is missing"
        bad(("name",) if name is not None else (),
            f"{what}.{hint or ' Known checks: ' + ', '.join(CHECK_NAMES) + '.'}")
        return None
    known = COMMON_KEYS + SETTINGS[name]
    entry: dict[str, Any] = {"name": name}
    n_before = len(problems)
    for key, value in item.items():
        if key == "name":
            continue
        if key not in known:
            hint = did_you_mean(key, known) or f" Check '{name}' takes: {', '.join(known[1:])}."
            bad((key,), f"unknown setting.{hint}")
            continue
        parsed = _setting(name, key, value, level, (*where, key), problems)
        if parsed is not _INVALID:
            entry[key] = parsed
    if entry.get("enabled") is False:
        return entry
    if "status" in entry and "expect_status" in entry:
        bad(("expect_status",), "give 'status' or 'expect_status', not both (they mean the same).")
    for key in REQUIRED.get(name, ()):
        if key not in item:
            bad((), f"check '{name}' needs '{key}'. Write it as a mapping: {{name: {name}, "
                f"{key}: ...}}.")
    return entry if len(problems) == n_before else None


_INVALID = object()


def _setting(name: str, key: str, value: Any, level: _Level, where: tuple[Any, ...],
             problems: list[Problem]) -> Any:
    def bad(message: str) -> object:
        problems.append(level.locate(where, message))
        return _INVALID

    if key in ("timeout", "max_heartbeat_age", "request_timeout"):
        seconds = _seconds(value, level, where, problems, maximum=DAY)
        return _INVALID if seconds is None else seconds
    if key == "poll_interval":
        seconds = _seconds(value, level, where, problems, maximum=3600.0)
        return _INVALID if seconds is None else seconds
    if key == "settle":
        seconds = _seconds(value, level, where, problems, maximum=DAY, zero=True)
        return _INVALID if seconds is None else seconds
    if key == "enabled":
        return value if isinstance(value, bool) else bad(f"must be true or false, got {value!r}.")
    if key in ("max_new", "expect_exit", "status", "expect_status"):
        low, high = {"max_new": (0, 100_000), "expect_exit": (0, 255)}.get(key, (100, 599))
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return bad(f"must be a whole number from {low} to {high}, got {value!r}.")
        return value
    if key in ("expected", "contains"):
        if not isinstance(value, str) or not value.strip():
            return bad(f"must be a non-empty string, got {value!r}.")
        return value
    if key == "components":
        if not isinstance(value, list | tuple) or not value:
            return bad(f"must be a non-empty list of {', '.join(COMPONENTS)}.")
        for comp in value:
            if comp not in COMPONENTS:
                hint = did_you_mean(str(comp), COMPONENTS) or f" Known: {', '.join(COMPONENTS)}."
                return bad(f"unknown component {comp!r}.{hint}")
        return tuple(value)
    if key == "argv":
        if isinstance(value, str):
            return bad("must be a list of arguments, not one string: write "
                       f"{value.split()!r}, nothing is split or given to a shell.")
        if not isinstance(value, list | tuple) or not value or not all(
                isinstance(a, str) for a in value):
            return bad(f"must be a non-empty list of strings, got {_kind(value)}.")
        return tuple(value)
    if key == "env":
        if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return bad("must map variable names to string values (quote numbers).")
        return dict(value)
    if key == "url":
        parts = urlsplit(value) if isinstance(value, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            return bad("must be an http:// or https:// URL with a host.")
        return value
    raise AssertionError(f"unhandled setting {name}.{key}")  # pragma: no cover


def _seconds(value: Any, level: _Level, where: tuple[Any, ...], problems: list[Problem], *,
             maximum: float, zero: bool = False) -> float | None:
    """A number of seconds, or a duration such as ``90s``, ``2m``, ``1h30m``."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(parse_duration(value))
        except ValueError:
            seconds = None
    low_ok = seconds is not None and (seconds >= 0 if zero else seconds > 0)
    if seconds is None or not low_ok or seconds > maximum:
        least = "0 or more" if zero else "more than 0"
        problems.append(level.locate(where, f"must be a number of seconds ({least}, at most "
                                     f"{maximum:g}) or a duration such as 90s or 2m, "
                                     f"got {value!r}."))
        return None
    return seconds


def _merge_check(checks: list[dict[str, Any]], item: dict[str, Any]) -> None:
    name = item["name"]
    if item.get("enabled") is False:
        checks[:] = [c for c in checks if c["name"] != name]
        return
    item = {k: v for k, v in item.items() if k != "enabled"}
    if name not in REPEATABLE:
        for existing in checks:
            if existing["name"] == name:
                existing.update(item)
                return
    checks.append(dict(item))


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"{value!r}"
