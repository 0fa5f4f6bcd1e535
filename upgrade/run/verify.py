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
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from packaging.version import InvalidVersion, Version

from upgrade.config.inventory import Deployment
from upgrade.config.verify import (
    CHECK_NAMES,
    CHECK_TIMEOUTS,
    COMMON_KEYS,
    DEFAULT_CHECKS,
    SETTINGS,
    CheckSpec,
    VerifyConfig,
    merge_verify_config,
)
from upgrade.controlplane.airflow import ComponentHealth, DagImportError, Health
from upgrade.controlplane.astro import DeploymentInfo
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.errors import (
    AirflowAPIError,
    AirflowAuthError,
    AstroAuthError,
    AstroError,
    DeploymentNotFound,
)
from upgrade.hosts.host import Host
from upgrade.model.catalog import Catalog
from upgrade.model.redact import Redactor
from upgrade.model.versions import RuntimeVersion, try_parse_version

# Callers configure and run checks through this module; the configuration lives in
# upgrade.verify_config and is re-exported here.
__all__ = [
    "CHECK_NAMES", "CHECK_TIMEOUTS", "COMMON_KEYS", "DEFAULT_CHECKS", "FAIL", "INCONCLUSIVE",
    "PASS", "SETTINGS", "CheckResult", "CheckSpec", "Verdict", "VerifyConfig",
    "assess_health", "capture_baseline", "display_url", "merge_verify_config", "run_checks",
]

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
REQUIRED_COMPONENTS = ("metadatabase", "scheduler")
FIRST_POLL = 0.5  # s before the second look; doubles up to the poll interval
DEFAULT_MAX_HEARTBEAT_AGE = 60.0
DEFAULT_REQUEST_TIMEOUT = 10.0
MAX_LISTED = 10  # new import errors named in one message
# How often a waiting check looks at the stop event while a call is in flight.
STOP_SLICE = 0.05
MIN_SLOT = 1.0  # s every check gets, even past the overall time-out
# A status read this recent is what Astro says now: the next check's first look reuses it
# (``healthy`` right after ``version`` passed) instead of asking Astro again.
REUSE_WITHIN = 2.0
COMMAND_GRACE = 5.0  # s past its deadline for a timed-out command to be killed

# ------------------------------------------------------------------------ data types


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
    redact = Redactor.from_env(os.environ, env or {})
    shown = redact(" ".join(argv))
    where = f"`{shown}` on {run.host.name} in {run.repo_dir}"
    if res.timed_out:
        # The command is the judge; not answering in time is its answer.
        return _Look(FAIL, f"{where} did not finish within {remaining:.0f} s and was killed.",
                     final=True)
    if res.exit_code == expect:
        return _Look(PASS, f"{where} exited {res.exit_code} in {res.duration:.1f} s.")
    tail = redact(_tail(res.stderr) or _tail(res.stdout))
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
