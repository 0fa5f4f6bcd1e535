"""Verification settings: which checks run, with what budgets, merged from three levels.

The playbook's verify step is the starting list; ``waves.N.verify`` and then the
Deployment's ``vars.verify`` patch it by check name (``enabled: false`` removes one).
The inventory's levels are validated when the inventory is loaded
(:func:`read_verify_layer`, every problem with its file, line and key) into
:class:`VerifyLayer` objects; :func:`merge_verify_config` only merges. Running the checks
is ``upgrade.run.verify.verify``'s business; this module only decides what to run.

Every check setting has one schema (:data:`CHECK_ARGS`), which the playbook loader uses
for the verify step's arguments too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from upgrade.config.checker import did_you_mean, parse_duration
from upgrade.config.schema import DAY, Arg, literal_problem, timeout_arg
from upgrade.errors import PlaybookError, Problem

CHECK_NAMES = ("version", "healthy", "airflow_version", "health", "import_errors", "dag_run",
               "command", "http", "analysis")
# Not a check of the verification after the deploy: it watches the wave's soak (its
# settings ride with the others, layered the same way; upgrade.run.verify.analysis runs it).
SOAK_CHECKS = ("analysis",)
REPEATABLE = frozenset({"dag_run", "command", "http"})
# These establish that the target is running; everything else reads that Runtime.
FIRST = ("version", "healthy")
DEFAULT_CHECKS = ("version", "healthy")  # the playbook's default too
COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")

DEFAULT_TIMEOUT = 900.0  # s, the whole verification
DEFAULT_POLL_INTERVAL = 10.0
CHECK_TIMEOUTS: Mapping[str, float] = {
    "version": 600.0, "healthy": 600.0, "airflow_version": 300.0, "health": 300.0,
    "import_errors": 120.0, "dag_run": 600.0, "command": 300.0, "http": 60.0,
    "analysis": DAY,  # unused: an analysis lasts interval x count
}

TOP_KEYS = ("checks", "inconclusive", "timeout", "poll_interval")
# A playbook step's own keys, which are not verification settings.
STEP_KEYS = ("when", "retries", "name")
COMMON_KEYS = ("name", "timeout", "poll_interval", "enabled")

_COMMON: Mapping[str, Arg] = {
    "timeout": timeout_arg(None),
    "poll_interval": timeout_arg(None, maximum=3600),
    "enabled": Arg("bool"),
}
_STATUS = Arg("integer", minimum=100, maximum=599)
#: Every check and its settings (besides ``name``): the one schema of a check.
CHECK_ARGS: Mapping[str, Mapping[str, Arg]] = {
    "version": _COMMON,
    "healthy": _COMMON,
    "airflow_version": {**_COMMON, "expected": Arg("string")},  # default: the catalog's
    "health": {**_COMMON, "components": Arg("strings", choices=COMPONENTS),
               "max_heartbeat_age": timeout_arg(None),
               "fresh_heartbeats": Arg("integer", minimum=1, maximum=10)},
    "import_errors": {**_COMMON,
                      "max_new": Arg("integer", 0, minimum=0, maximum=100_000),
                      "settle": Arg("number", None, minimum=0, maximum=DAY, seconds=True)},
    "dag_run": {**_COMMON, "dag_id": Arg("dag_id", required=True), "conf": Arg("mapping", {}),
                "unpause": Arg("bool", False)},
    "command": {**_COMMON, "argv": Arg("argv", required=True), "env": Arg("env", {}),
                "expect_exit": Arg("integer", minimum=0, maximum=255)},
    "http": {**_COMMON, "url": Arg("url", required=True), "status": _STATUS,
             "expect_status": _STATUS, "contains": Arg("string"),
             "request_timeout": timeout_arg(None)},
    # Soak analysis (docs/verification.md, "Soak analysis"; defaults in model.analysis).
    "analysis": {**_COMMON,
                 "interval": timeout_arg(None),
                 "count": Arg("integer", minimum=1, maximum=1000),
                 "failure_limit": Arg("integer", minimum=0, maximum=100_000),
                 "max_failure_rate_increase": Arg("number", minimum=0, maximum=1),
                 "min_runs": Arg("integer", minimum=1, maximum=100_000),
                 "duration_factor": Arg("number", minimum=1, maximum=1000),
                 "min_slowdown": Arg("number", minimum=0, maximum=DAY, seconds=True),
                 "inconclusive": Arg("choice", choices=("fail", "pass")),
                 "max_pages": Arg("integer", minimum=1, maximum=100)},
}
_TOP_ARGS: Mapping[str, Arg] = {
    "inconclusive": Arg("choice", choices=("fail", "pass")),
    "timeout": timeout_arg(None),
    "poll_interval": timeout_arg(None, maximum=3600),
}

# Reports a problem at a key path below the level's own key: locate(("checks", 0, "url"), msg).
Locate = Callable[[tuple[Any, ...], str], None]


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
    analysis: CheckSpec | None = None  # the soak's analysis, when the levels ask for one

    def names(self) -> list[str]:
        """The check names, in run order."""
        return [c.name for c in self.checks]


@dataclass(frozen=True)
class VerifyLayer:
    """One validated level of settings: a playbook step, ``waves.N.verify``, a ``vars.verify``.

    ``values`` holds the top-level settings it gives (inconclusive, timeout, poll_interval);
    ``checks`` its normalised check entries in order, or None when it gives no list.
    """

    label: str
    values: Mapping[str, Any] = field(default_factory=dict, hash=False)
    checks: tuple[Mapping[str, Any], ...] | None = None
    starts_list: bool = False  # a playbook step's list replaces the default, not patches it


def read_verify_layer(data: Any, label: str, locate: Locate, *,
                      step: bool = False) -> VerifyLayer | None:
    """Validate one level's settings, reporting each problem through ``locate``.

    Returns None when something was wrong (every problem reported), else the layer.
    """
    bad = _Counter(locate)
    if not data:
        return VerifyLayer(label, starts_list=step)
    if not isinstance(data, Mapping):
        bad((), "must be a mapping with checks, inconclusive, timeout or poll_interval, got "
                f"{_kind(data)}.")
        return None
    allowed = TOP_KEYS + (STEP_KEYS if step else ())
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in allowed:
            hint = did_you_mean(str(key), TOP_KEYS) or f" Valid keys: {', '.join(TOP_KEYS)}."
            bad((key,), f"unknown key.{hint}")
        elif key in _TOP_ARGS:
            parsed = _value(_TOP_ARGS[key], value, (key,), bad)
            if parsed is not _INVALID:
                values[key] = parsed
    checks = None
    if "checks" in data:
        checks = tuple(_read_checks(data["checks"], label, bad, step=step))
    if bad.count:
        return None
    return VerifyLayer(label, values, checks, starts_list=step)


def merge_verify_config(
    playbook: Mapping[str, Any] | None,
    wave: VerifyLayer | None,
    deployment: VerifyLayer | None,
) -> VerifyConfig:
    """Merge the playbook verify step's args, ``waves.N.verify`` and ``vars.verify``.

    Later levels win. ``inconclusive``, ``timeout`` and ``poll_interval`` are replaced.
    The playbook's ``checks`` is the starting list (default ``[version, healthy]``); a
    wave's and then a Deployment's ``checks`` are merged into it by name: a check already
    listed gets the new settings on top of its own, a new one is added, ``enabled: false``
    removes it. ``command`` and ``http`` may repeat: each entry is added (``enabled:
    false`` on one removes all of that name). The inventory's levels were validated when
    it was loaded; the playbook's rendered arguments are validated here (PlaybookError).
    """
    levels = [_playbook_layer(playbook), wave, deployment]
    top: dict[str, Any] = {"inconclusive": "fail", "timeout": DEFAULT_TIMEOUT,
                           "poll_interval": DEFAULT_POLL_INTERVAL}
    checks: list[dict[str, Any]] = [{"name": n, "_origin": "default"} for n in DEFAULT_CHECKS]
    for level in levels:
        if level is None:
            continue
        top.update(level.values)
        if level.checks is None:
            continue
        if level.starts_list:
            checks = []  # the playbook's list is the starting list, not a patch
        for item in level.checks:
            _merge_check(checks, {**item, "_origin": level.label})
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
    soak = [spec for spec in specs if spec.name in SOAK_CHECKS]
    specs = [spec for spec in specs if spec.name not in SOAK_CHECKS]
    order = sorted(range(len(specs)), key=lambda i: (specs[i].name not in FIRST, i))
    return VerifyConfig(
        checks=tuple(specs[i] for i in order),
        inconclusive=top["inconclusive"],
        timeout=float(top["timeout"]),
        poll_interval=float(top["poll_interval"]),
        analysis=soak[0] if soak else None,
    )


def _playbook_layer(data: Mapping[str, Any] | None) -> VerifyLayer | None:
    if data is None:
        return None
    problems: list[Problem] = []

    def locate(keys: tuple[Any, ...], message: str) -> None:
        problems.append(Problem("playbook", None, key_path(("verify", *keys)), message))

    layer = read_verify_layer(data, "the playbook's verify step", locate, step=True)
    if layer is None:
        raise PlaybookError(problems)
    return layer


def key_path(keys: Sequence[Any]) -> str:
    """``waves.2.verify.checks[0].url``: list positions in brackets, wave numbers dotted."""
    out, previous = "", None
    for key in keys:
        if isinstance(key, int) and previous != "waves":  # a list index, not a wave number
            out = f"{out}[{key}]"
        else:
            out = f"{out}.{key}" if out else str(key)
        previous = key
    return out


class _Counter:
    """``locate`` that also counts the problems it was given."""

    def __init__(self, locate: Locate) -> None:
        self.locate = locate
        self.count = 0

    def __call__(self, keys: tuple[Any, ...], message: str) -> None:
        self.count += 1
        self.locate(keys, message)


def _read_checks(node: Any, label: str, bad: _Counter, *, step: bool
                 ) -> list[dict[str, Any]]:
    if not isinstance(node, list | tuple) or (step and not node):
        bad(("checks",), "must be a list of check names or mappings with 'name', e.g. "
                         "[version, health, {name: http, url: 'https://...'}], got "
                         f"{_kind(node)}.")
        return []
    out = []
    seen: set[str] = set()
    for i, item in enumerate(node):
        entry = _read_check(item, ("checks", i), bad)
        if entry is None:
            continue
        name = entry["name"]
        if name in seen and name not in REPEATABLE:
            bad(("checks", i), f"check '{name}' is listed twice; give its settings once.")
            continue
        seen.add(name)
        out.append(entry)
    return out


def _read_check(item: Any, where: tuple[Any, ...], bad: _Counter) -> dict[str, Any] | None:
    before = bad.count
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, Mapping):
        bad(where, f"must be a check name or a mapping with 'name', got {_kind(item)}.")
        return None
    name = item.get("name")
    if not isinstance(name, str) or name not in CHECK_NAMES:
        hint = did_you_mean(name, CHECK_NAMES) if isinstance(name, str) else ""
        what = f"unknown check {name!r}" if name is not None else "'name' is missing"
        bad((*where, "name") if name is not None else where,
            f"{what}.{hint or ' Known checks: ' + ', '.join(CHECK_NAMES) + '.'}")
        return None
    spec = CHECK_ARGS[name]
    entry: dict[str, Any] = {"name": name}
    for key, value in item.items():
        if key == "name":
            continue
        if key not in spec:
            known = ", ".join(spec)
            hint = did_you_mean(str(key), list(spec)) or f" Check '{name}' takes: {known}."
            bad((*where, key), f"unknown setting.{hint}")
            continue
        parsed = _value(spec[key], value, (*where, key), bad)
        if parsed is not _INVALID:
            entry[key] = parsed
    if entry.get("enabled") is False:
        return entry if bad.count == before else None
    if "status" in entry and "expect_status" in entry:
        bad((*where, "expect_status"), "give 'status' or 'expect_status', not both (they mean "
                                       "the same).")
    for key, arg in spec.items():
        if arg.required and key not in item:
            bad(where, f"check '{name}' needs '{key}'. Write it as a mapping: {{name: {name}, "
                       f"{key}: ...}}.")
    return entry if bad.count == before else None


_INVALID = object()


def _value(arg: Arg, value: Any, where: tuple[Any, ...], bad: _Counter) -> Any:
    """The setting as stored (durations become seconds, lists tuples), or _INVALID."""
    problem = literal_problem(arg, value, durations=True)
    if problem:
        bad(where, f"{problem}.")
        return _INVALID
    if arg.type == "number":
        return float(parse_duration(value)) if isinstance(value, str) else float(value)
    if arg.type in ("argv", "strings"):
        return tuple(value)
    if arg.type in ("env", "mapping"):
        return dict(value)
    return value


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
