"""Post-deploy verification: the checks a wave's gate stands on.

A Runtime can never be rolled back, so these checks are the fleet's only protection: a
bad version must be caught in an early wave. Each check polls until it passes or its
time-out ends, and ends as ``pass``, ``fail`` or ``inconclusive`` (it could not tell:
Astro or the Airflow API kept failing or timing out). A failure that waiting cannot
change (healthy on another Runtime, new DAG import errors) ends the poll at once.

Settings come from three levels, merged by :func:`merge_verify_config`: the playbook's
verify step, then ``waves.N.verify``, then the Deployment's ``vars.verify``. The
semantics (order, reachability, inconclusive) are documented in docs/verification.md.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from packaging.version import InvalidVersion, Version

from .airflow import (
    AirflowAPIError,
    AirflowAuthError,
    ComponentHealth,
    DagImportError,
    Health,
)
from .astro import AstroAuthError, AstroError, DeploymentInfo, DeploymentNotFound
from .catalog import Catalog
from .controlplane import ControlPlane
from .errors import InventoryError, PlaybookError, Problem
from .hosts import Host, redact, secret_values
from .inventory import Deployment, Inventory, WaveSettings
from .located_yaml import LMap, LScalar, LSeq, did_you_mean, parse_duration
from .versions import RuntimeVersion, try_parse_version

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"

CHECK_NAMES = ("version", "healthy", "airflow_version", "health", "import_errors", "command",
               "http")
REPEATABLE = frozenset({"command", "http"})
# These establish that the target is running; everything else reads that Runtime.
FIRST = ("version", "healthy")
DEFAULT_CHECKS = ("version", "healthy")  # the playbook's default too
COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
REQUIRED_COMPONENTS = ("metadatabase", "scheduler")

DEFAULT_TIMEOUT = 900.0  # s, the whole verification
DEFAULT_POLL_INTERVAL = 10.0
FIRST_POLL = 0.5  # s before the second look; doubles up to the poll interval
CHECK_TIMEOUTS: Mapping[str, float] = {
    "version": 600.0, "healthy": 600.0, "airflow_version": 300.0, "health": 300.0,
    "import_errors": 120.0, "command": 300.0, "http": 60.0,
}
DEFAULT_MAX_HEARTBEAT_AGE = 60.0
DEFAULT_REQUEST_TIMEOUT = 10.0
DAY = 86_400.0
MAX_LISTED = 10  # new import errors named in one message
# How often a waiting check looks at the stop event while a call is in flight.
STOP_SLICE = 0.05
MIN_SLOT = 1.0  # s every check gets, even past the overall time-out
# A status read this recent is what Astro says now: the next check's first look reuses it
# (``healthy`` right after ``version`` passed) instead of asking Astro again.
REUSE_WITHIN = 2.0
COMMAND_GRACE = 5.0  # s past its deadline for a timed-out command to be killed

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

# ------------------------------------------------------------------------ data types


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


@dataclass(frozen=True)
class CheckResult:
    """How one check ended: ``pass``, ``fail`` or ``inconclusive``, and why."""

    name: str
    status: str
    message: str
    duration: float = 0.0
    attempts: int = 0

    def to_json(self) -> dict[str, Any]:
        """Plain data for the journal and reports."""
        return {"name": self.name, "status": self.status, "message": self.message,
                "duration": round(self.duration, 3), "attempts": self.attempts}


@dataclass(frozen=True)
class Verdict:
    """The gate's answer for one Deployment: ``ok`` and each check's result."""

    ok: bool
    results: list[CheckResult]
    summary: str
    interrupted: bool = False

    def to_json(self) -> dict[str, Any]:
        """Plain data for the journal and reports."""
        return {"ok": self.ok, "interrupted": self.interrupted, "summary": self.summary,
                "results": [r.to_json() for r in self.results]}


# ------------------------------------------------------------------- configuration


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


# -------------------------------------------------------------------------- baseline


def capture_baseline(cp: ControlPlane, info: DeploymentInfo) -> dict[str, Any]:
    """The DAG import errors before a deploy: ``{"files": [...], "count", "captured_at"}``.

    Never raises for an Airflow API failure: ``files`` is then None and ``error`` says
    why, and the ``import_errors`` check counts every error after the deploy as new.
    """
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        errors = cp.import_errors(info)
    except AirflowAPIError as exc:
        return {"files": None, "count": None, "captured_at": stamp, "error": str(exc)}
    files = sorted({e.filename for e in errors})
    return {"files": files, "count": len(errors), "captured_at": stamp, "error": None}


# ---------------------------------------------------------------------------- running


@dataclass(frozen=True)
class _Look:
    """One observation: ``pass``, ``fail``, ``wait`` (not yet) or ``unknown`` (no answer)."""

    state: str
    message: str
    final: bool = False  # waiting cannot change this


class _Abandoned(Exception):
    """A call still in flight when the check's deadline passed or a stop was requested."""

    def __init__(self, stopped: bool):
        self.stopped = stopped


@dataclass
class _Attempt:
    """What a probe may know about the check it serves."""

    spec: CheckSpec
    started: float
    deadline: float
    one_look: bool
    tries: int = 0  # looks taken so far, this one included


class _Run:
    """One verification of one Deployment: shared state between its checks."""

    def __init__(self, cp: ControlPlane, config: VerifyConfig, deployment: Deployment,
                 target: RuntimeVersion, catalog: Catalog, baseline: dict | None,
                 host: Host | None, repo_dir: str | None, stop: threading.Event):
        self.cp, self.config, self.dep, self.target = cp, config, deployment, target
        self.catalog, self.baseline, self.host, self.repo_dir = catalog, baseline, host, repo_dir
        self.stop = stop
        self.deadline = time.monotonic() + config.timeout
        self.info: DeploymentInfo | None = None  # Astro's last answer, and when it came
        self.info_at = -math.inf
        # Set when Astro said the Deployment does not exist or refused us: the Airflow
        # checks then have no URL to read and are not run.
        self.unreachable: str | None = None
        self.decided = False  # the verdict can no longer pass: later checks look once
        self.interrupted = False

    def call(self, probe: Callable[[], _Look], deadline: float) -> _Look:
        """Run ``probe`` in a helper thread; give up on it at ``deadline`` or on stop.

        A call given up on keeps running in the background until its own time-out (status read,
        HTTP and command time-outs all bound it); its answer is ignored.
        """
        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                box["look"] = probe()
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name=f"verify-{self.dep.name}", daemon=True).start()
        while not done.wait(STOP_SLICE):
            if self.stop.is_set():
                raise _Abandoned(stopped=True)
            if time.monotonic() >= deadline:
                raise _Abandoned(stopped=False)
        if "error" in box:
            raise box["error"]
        return box["look"]

    def status(self, *, reuse: bool) -> DeploymentInfo:
        """Astro's view of the Deployment (``ControlPlane.status``); with ``reuse``, the
        last answer instead when it came within REUSE_WITHIN seconds."""
        if reuse and self.info is not None and time.monotonic() - self.info_at <= REUSE_WITHIN:
            return self.info
        info = self.cp.status(self.dep.id, self.dep.workspace_id)
        self.info, self.info_at = info, time.monotonic()
        return info

    def airflow_info(self) -> DeploymentInfo | _Look:
        """The Deployment as Astro reports it (for its Airflow API URL), or why not."""
        if self.info is not None:
            return self.info
        if self.unreachable:
            return _Look("unknown", f"not run: {self.unreachable}", final=True)
        try:
            return self.status(reuse=False)
        except (DeploymentNotFound, AstroAuthError) as exc:
            self.unreachable = _refusal(exc, self.dep)
            return _Look("unknown", f"not run: {self.unreachable}", final=True)
        except AstroError as exc:
            return _Look("unknown", f"Astro could not be asked for the Airflow API URL: "
                                    f"{_first_line(str(exc))}")


def run_checks(
    cp: ControlPlane,
    config: VerifyConfig,
    deployment: Deployment,
    target: RuntimeVersion,
    catalog: Catalog,
    *,
    baseline: dict | None,
    host: Host | None,
    repo_dir: str | None,
    stop: threading.Event,
) -> Verdict:
    """Run the configured checks in order against one Deployment and return the verdict.

    ``baseline`` is :func:`capture_baseline`'s result from before the deploy (None: every
    import error counts as new). ``host`` and ``repo_dir`` are where ``command`` checks
    run. Once a check has failed, later checks still run but look once, without waiting.
    ``stop`` set: returns promptly with ``interrupted`` and ``ok`` False.
    """
    run = _Run(cp, config, deployment, target, catalog, baseline, host, repo_dir, stop)
    results: list[CheckResult] = []
    for spec in config.checks:
        if stop.is_set():
            run.interrupted = True
        if run.interrupted:
            break
        result = _run_check(run, spec)
        results.append(result)
        if not _counts_as_pass(result, config):
            run.decided = True
    ok = not run.interrupted and all(_counts_as_pass(r, config) for r in results)
    return Verdict(ok=ok, results=results, summary=_summary(deployment, results, ok, run),
                   interrupted=run.interrupted)


def _counts_as_pass(result: CheckResult, config: VerifyConfig) -> bool:
    return result.status == PASS or (
        result.status == INCONCLUSIVE and config.inconclusive == "pass")


def _summary(dep: Deployment, results: list[CheckResult], ok: bool, run: _Run) -> str:
    """One line that names the Deployment once, at the start (the rollout shows it as is)."""
    if run.interrupted:
        return f"{dep.name}: verification interrupted before it finished."
    if ok:
        notes = [f"{r.name} inconclusive (counted as pass)" for r in results
                 if r.status == INCONCLUSIVE]
        names = ", ".join(r.name for r in results if r.status == PASS)
        return f"{dep.name}: verified ({names or 'no checks'})" + (
            f"; {'; '.join(notes)}" if notes else "") + "."
    failed = [r for r in results if not _counts_as_pass(r, run.config)]
    # Checks skipped for the reason an earlier one already gave are listed, not repeated.
    skipped = [r.name for r in failed if r.message.startswith(_NOT_RUN)]
    bad = [f"{r.name} {r.status}: {r.message.rstrip('.')}" for r in failed
           if not r.message.startswith(_NOT_RUN)]
    if skipped:
        bad.append(f"not run: {', '.join(skipped)}")
    return f"{dep.name}: verification failed: " + "; ".join(bad) + "."


_PROBES: dict[str, Callable[[_Run, _Attempt], _Look]] = {}


def _probe(name: str) -> Callable[[Callable[[_Run, _Attempt], _Look]],
                                  Callable[[_Run, _Attempt], _Look]]:
    def register(fn: Callable[[_Run, _Attempt], _Look]) -> Callable[[_Run, _Attempt], _Look]:
        _PROBES[name] = fn
        return fn
    return register


def _run_check(run: _Run, spec: CheckSpec) -> CheckResult:
    """Poll one check until it passes, fails for good, or its deadline passes."""
    started = time.monotonic()
    deadline, budget = _deadline(spec, started, run)
    attempt = _Attempt(spec, started, deadline, one_look=run.decided)
    # A command is killed at the deadline; give that kill time to be reported as such.
    grace = COMMAND_GRACE if spec.name == "command" else 0.0
    probe = _PROBES[spec.name]
    last: _Look | None = None
    attempts = 0

    def result(status: str, message: str) -> CheckResult:
        if attempt.one_look and status != PASS and not message.startswith(_NOT_RUN):
            message += " (looked once: verification had already failed)"
        return CheckResult(spec.name, status, message, time.monotonic() - started, attempts)

    while True:
        attempts += 1
        attempt.tries = attempts
        try:
            look = run.call(lambda: probe(run, attempt), deadline + grace)
        except _Abandoned as gone:
            if gone.stopped:
                run.interrupted = True
                return result(INCONCLUSIVE, "interrupted")
            if last is None:
                return result(INCONCLUSIVE, f"no answer within {budget}.")
            break
        last = look
        if look.state == PASS:
            return result(PASS, look.message)
        if look.final or attempt.one_look:
            break
        # Look again soon, then back off to the poll interval: right after a deploy most
        # Deployments turn healthy within seconds, a few take minutes.
        delay = min(spec.poll_interval, FIRST_POLL * 2 ** (attempts - 1))
        if time.monotonic() + delay > deadline:
            break
        if run.stop.wait(delay):
            run.interrupted = True
            return result(INCONCLUSIVE, "interrupted")
    assert last is not None
    if last.state == "unknown":
        return result(INCONCLUSIVE, last.message)
    if last.final or attempt.one_look:
        return result(FAIL, last.message)
    return result(FAIL, f"not passed within {budget}: {last.message}")


def _deadline(spec: CheckSpec, started: float, run: _Run) -> tuple[float, str]:
    """When the check must end, and that budget in words (the limit that applied)."""
    own = started + spec.timeout
    slot = min(spec.timeout, MIN_SLOT)
    # Even when earlier checks used up the overall budget, each check gets a short slot.
    deadline = max(min(own, run.deadline), started + slot)
    left, overall = run.deadline - started, _seconds_text(run.config.timeout)
    if deadline == own:
        return deadline, f"{_seconds_text(spec.timeout)} s"
    if left >= slot - 0.05:  # the overall time-out ended it (give or take a rounding)
        if left >= run.config.timeout - 0.05:
            return deadline, f"{_seconds_text(left)} s (the verification's time-out)"
        return deadline, (f"{_seconds_text(left)} s (what was left of the verification's "
                          f"{overall} s time-out)")
    return deadline, (f"{_seconds_text(slot)} s (the least a check gets; the verification's "
                      f"{overall} s time-out left {_seconds_text(max(0.0, left))} s)")


def _seconds_text(seconds: float) -> str:
    return f"{seconds:.0f}" if seconds >= 10 else f"{round(seconds, 1):g}"


# ----------------------------------------------------------------------- the checks

_NOT_RUN = "not run: "


def _refusal(exc: AstroError, dep: Deployment) -> str:
    """Why Astro will not tell us about the Deployment, with Astro's words; not its name
    (the summary starts with that)."""
    said = _first_line(exc.astro_message) or _first_line(str(exc))
    if isinstance(exc, DeploymentNotFound):
        return (f"Astro knows no Deployment with id {dep.id} in workspace {dep.workspace_id} "
                f"({said.rstrip('.')}); check id and workspace_id in the inventory")
    return (f"Astro refused the API token ({said.rstrip('.')}); check that it is valid, "
            f"unexpired and has access to workspace {dep.workspace_id}")


def _astro_look(run: _Run, attempt: _Attempt, want_version: bool) -> _Look:
    dep, target = run.dep, run.target
    try:
        # A check's first look may reuse the answer the previous check just got.
        info = run.status(reuse=attempt.tries == 1)
    except DeploymentNotFound as exc:
        run.unreachable = _refusal(exc, dep)
        return _Look(FAIL, f"{run.unreachable}.", final=True)
    except AstroAuthError as exc:
        run.unreachable = _refusal(exc, dep)
        return _Look("unknown", f"{run.unreachable}.", final=True)
    except AstroError as exc:
        return _Look("unknown", f"Astro could not be asked: {_first_line(str(exc))}")
    seen = f"Astro reports Runtime {info.runtime_version or '?'}, {info.status or 'no status'}"
    if not want_version:
        if info.is_healthy:
            return _Look(PASS, f"Astro reports {info.status}")
        return _Look("wait", seen)
    reported = try_parse_version(info.runtime_version)
    if reported == target and info.is_healthy:
        return _Look(PASS, f"{seen}.")
    if reported is None and info.runtime_version:
        return _Look(FAIL, f"{seen}, which is not a Runtime version; expected {target}.",
                     final=True)
    if reported is not None and reported != target and info.is_healthy:
        # Healthy on another version: the deploy did not take, and waiting cannot help.
        return _Look(FAIL, f"expected Runtime {target}, but {seen}.", final=True)
    if info.status == "DEPLOYING":
        return _Look("wait", f"{seen} (still rolling out, or stuck).")
    return _Look("wait", f"{seen}; expected {target} and HEALTHY.")


@_probe("version")
def _version(run: _Run, attempt: _Attempt) -> _Look:
    return _astro_look(run, attempt, want_version=True)


@_probe("healthy")
def _healthy(run: _Run, attempt: _Attempt) -> _Look:
    return _astro_look(run, attempt, want_version=False)


def _airflow_call(run: _Run, read: Callable[[DeploymentInfo], Any]) -> Any:
    """``read(info)``, or a look that says why the Airflow API could not be asked."""
    info = run.airflow_info()
    if isinstance(info, _Look):
        return info
    try:
        return read(info)
    except AirflowAuthError as exc:
        return _Look("unknown", _unnamed(exc, info), final=True)
    except AirflowAPIError as exc:
        return _Look("unknown", f"the Airflow API could not be asked: {_unnamed(exc, info)}")


def _unnamed(exc: AirflowAPIError, info: DeploymentInfo) -> str:
    """The error's first line without its ``Deployment <id>: `` lead (the summary has it)."""
    return _first_line(str(exc)).removeprefix(f"Deployment {info.id}: ")


@_probe("airflow_version")
def _airflow_version(run: _Run, attempt: _Attempt) -> _Look:
    expected = attempt.spec.settings.get("expected")
    source = "configured"
    if expected is None:
        release = run.catalog.get(run.target)
        expected = release.airflow if release else None
        source = f"the catalog's for Runtime {run.target}"
    if not expected:
        return _Look(PASS, f"not compared: the catalog does not know the Airflow version of "
                           f"Runtime {run.target}.")
    got = _airflow_call(run, run.cp.airflow_version)
    if isinstance(got, _Look):
        return got
    reported = got.version
    exact = "*" not in expected and expected.count(".") >= 2
    if exact:
        if _same_version(reported, expected):
            return _Look(PASS, f"Airflow reports {got.raw}, as expected ({source}).")
        return _Look("wait", f"Airflow reports {got.raw}; expected {expected} ({source}).")
    line = ".".join(expected.replace("*", "").strip(".").split(".")[:2])
    if ".".join(reported.split(".")[:2]) == line:
        return _Look(PASS, f"Airflow reports {got.raw}; only {line} was compared, because "
                           f"{source} Airflow version is {expected}.")
    return _Look("wait", f"Airflow reports {got.raw}; expected {line}.x ({source}: {expected}).")


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a.strip() == b.strip()


@_probe("health")
def _health(run: _Run, attempt: _Attempt) -> _Look:
    got = _airflow_call(run, run.cp.airflow_health)
    if isinstance(got, _Look):
        return got
    settings = attempt.spec.settings
    problems, notes = assess_health(
        got,
        max_heartbeat_age=float(settings.get("max_heartbeat_age", DEFAULT_MAX_HEARTBEAT_AGE)),
        components=settings.get("components", REQUIRED_COMPONENTS),
    )
    if problems:
        return _Look("wait", "; ".join(problems) + ".")
    return _Look(PASS, "; ".join(notes) + ".")


def assess_health(
    health: Health,
    *,
    max_heartbeat_age: float = DEFAULT_MAX_HEARTBEAT_AGE,
    components: Sequence[str] = REQUIRED_COMPONENTS,
    now: datetime | None = None,
) -> tuple[list[str], list[str]]:
    """(problems, notes) of an Airflow health document; no problems means healthy.

    ``components`` must be present and healthy; the others are checked when present.
    A heart-beating component also needs a heartbeat fresher than ``max_heartbeat_age``.
    """
    required = set(components)
    now = now or datetime.now(UTC)
    problems: list[str] = []
    notes: list[str] = []
    if health.metadatabase == "healthy":
        notes.append("metadatabase healthy")
    elif health.metadatabase is None and "metadatabase" not in required:
        notes.append("metadatabase not reported, not checked")
    else:
        problems.append(f"metadatabase is {health.metadatabase or 'not reported'}")
    for name, comp in health.components().items():
        _component(name, comp, name in required, max_heartbeat_age, now, problems, notes)
    return problems, notes


def _component(name: str, comp: ComponentHealth, required: bool, max_age: float,
               now: datetime, problems: list[str], notes: list[str]) -> None:
    if comp.status is None and comp.latest_heartbeat is None:
        if required:
            problems.append(f"{name} is not running (no status, no heartbeat)")
        else:
            notes.append(f"{name} not present, not checked")
        return
    if comp.status != "healthy":
        problems.append(f"{name} is {comp.status or 'not reported'}"
                        + _age_text(comp.age(now)))
        return
    age = comp.age(now)
    if age is None:
        problems.append(f"{name} reports no heartbeat")
    elif age > timedelta(seconds=max_age):
        problems.append(f"{name} heartbeat is {age.total_seconds():.0f} s old "
                        f"(limit {max_age:g} s)")
    else:
        notes.append(f"{name} healthy{_age_text(age)}")


def _age_text(age: timedelta | None) -> str:
    if age is None:
        return ""
    # A heartbeat slightly in the future is clock skew between us and the Deployment.
    return f" (heartbeat {max(0.0, age.total_seconds()):.0f} s old)"


@_probe("import_errors")
def _import_errors(run: _Run, attempt: _Attempt) -> _Look:
    got = _airflow_call(run, run.cp.import_errors)
    if isinstance(got, _Look):
        return got
    settings = attempt.spec.settings
    max_new = int(settings.get("max_new", 0))
    files = (run.baseline or {}).get("files")
    before = set(files) if files is not None else None
    new: dict[str, DagImportError] = {}
    for err in got:
        if (before is None or err.filename not in before) and err.filename not in new:
            new[err.filename] = err
    why = "" if before is not None else (
        " No baseline was captured before the deploy, so every import error counts as new.")
    if len(new) > max_new:
        listed = [f"{name}: {_trace_line(err.stack_trace)}"
                  for name, err in list(new.items())[:MAX_LISTED]]
        more = f"; and {len(new) - MAX_LISTED} more" if len(new) > MAX_LISTED else ""
        allowed = f" (at most {max_new} allowed)" if max_new else ""
        return _Look(FAIL, f"{len(new)} new DAG import error(s){allowed}: "
                           + "; ".join(listed) + more + "." + why, final=True)
    kept = len({e.filename for e in got} - set(new))
    head = (f"{len(new)} new DAG import error(s), within the {max_new} allowed" if new
            else "no new DAG import errors")
    text = f"{head} ({kept} from before the deploy)." + why
    settle = float(settings.get("settle", 0.0))
    now = time.monotonic()
    # Watching stops at the check's deadline: a settle longer than the timeout is capped.
    if (not attempt.one_look and now - attempt.started < settle
            and now + attempt.spec.poll_interval <= attempt.deadline):
        return _Look("wait", f"{text} Watching for {settle:g} s in all.")
    return _Look(PASS, text)


def _trace_line(trace: str) -> str:
    """The line of a stack trace that says what went wrong."""
    lines = [ln.strip() for ln in trace.splitlines() if ln.strip()]
    if not lines:
        return "(no stack trace)"
    # Airflow keeps whole tracebacks; their first line says nothing, their last says why.
    if lines[0].startswith("Traceback (most recent call last)"):
        return lines[-1]
    return lines[0]


@_probe("command")
def _command(run: _Run, attempt: _Attempt) -> _Look:
    settings = attempt.spec.settings
    argv = list(settings["argv"])
    if run.host is None or run.repo_dir is None:
        return _Look("unknown", "cannot run: no repo host and directory were given.",
                     final=True)
    env = settings.get("env") or None
    expect = int(settings.get("expect_exit", 0))
    remaining = max(0.5, attempt.deadline - time.monotonic())
    res = run.host.run(argv, cwd=run.repo_dir, timeout=remaining, env=env)
    secrets = secret_values(env or {})
    shown = redact(" ".join(argv), secrets)
    where = f"`{shown}` on {run.host.name} in {run.repo_dir}"
    if res.timed_out:
        # The command is the judge; not answering in time is its answer.
        return _Look(FAIL, f"{where} did not finish within {remaining:.0f} s and was killed.",
                     final=True)
    if res.exit_code == expect:
        return _Look(PASS, f"{where} exited {res.exit_code} in {res.duration:.1f} s.")
    tail = redact(_tail(res.stderr) or _tail(res.stdout), secrets)
    text = f"{where} exited {res.exit_code}, expected {expect}" + (
        f": {tail}" if tail else "") + "."
    # Not found / not executable cannot change by waiting.
    return _Look(FAIL if res.exit_code in (126, 127) else "wait", text,
                 final=res.exit_code in (126, 127))


def _tail(text: str, lines: int = 3) -> str:
    kept = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(kept[-lines:])


@_probe("http")
def _http(run: _Run, attempt: _Attempt) -> _Look:
    settings = attempt.spec.settings
    url = settings["url"]
    expect = int(settings.get("status", 200))
    contains = settings.get("contains")
    budget = float(settings.get("request_timeout", DEFAULT_REQUEST_TIMEOUT))
    timeout = max(0.1, min(budget, attempt.deadline - time.monotonic()))
    shown = display_url(url, keep_path=True)
    try:
        with httpx.Client(follow_redirects=False, timeout=timeout) as client:
            resp = client.get(url)
    except httpx.TimeoutException:
        return _Look("unknown", f"GET {shown} did not answer within {timeout:.1f} s.")
    except httpx.HTTPError as exc:
        return _Look("unknown", f"GET {shown} failed: {type(exc).__name__}.")
    if resp.status_code != expect:
        return _Look("wait", f"GET {shown} answered {resp.status_code}, expected {expect}.")
    if contains is not None and contains not in resp.text:
        return _Look("wait", f"GET {shown} answered {resp.status_code} but the body does not "
                             f"contain {contains!r}.")
    found = f" and contains {contains!r}" if contains is not None else ""
    return _Look(PASS, f"GET {shown} answered {resp.status_code}{found}.")


def display_url(url: str, *, keep_path: bool = False) -> str:
    """``scheme://host/…`` (or with its path): never the query, password or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an unreadable URL)"
    if ":" in host:
        host = f"[{host}]"
    path = parts.path if keep_path else ("/…" if parts.path not in ("", "/") else "")
    return f"{parts.scheme}://{host}{port}{path}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
