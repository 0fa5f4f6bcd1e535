"""The verification checks: what each one looks at, and what it makes of the answer.

Each check is a probe, registered by name, that takes one look at a Deployment (Astro's
status, its Airflow API, a command on the repo's runner, an HTTP URL) and says ``pass``,
``fail``, ``wait`` (not yet) or ``unknown`` (no answer). Polling, deadlines and the verdict
are ``upgrade.run.verify.verify``'s; a :class:`Run` is the state the checks of one verification
share (Astro's last answer, whether it already failed).
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from packaging.version import InvalidVersion, Version

from upgrade.config.inventory import Deployment
from upgrade.config.verify import VerifyConfig
from upgrade.controlplane.airflow import ComponentHealth, DagImportError, Health
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.controlplane.deployment import DeploymentInfo
from upgrade.errors import (
    AirflowAPIError,
    AirflowAuthError,
    AstroAuthError,
    AstroError,
    DeploymentNotFound,
)
from upgrade.hosts.host import Host
from upgrade.model.catalog import Catalog
from upgrade.model.redact import Redactor, display_url
from upgrade.model.versions import RuntimeVersion, try_parse_version
from upgrade.run.verify import canary
from upgrade.run.verify.look import Abandoned, Attempt, Look

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
REQUIRED_COMPONENTS = ("metadatabase", "scheduler")
# Airflow calls a scheduler or triggerer healthy until its heartbeat is 30 s old
# (scheduler_health_check_threshold, triggerer_health_check_threshold): a SIGKILLed
# scheduler reads "healthy" for that long. Our bound is below it, and a pass also needs
# each component's heartbeat seen advancing (DEFAULT_FRESH_HEARTBEATS distinct ones), which
# a dead component cannot do.
DEFAULT_MAX_HEARTBEAT_AGE = 20.0
DEFAULT_FRESH_HEARTBEATS = 2
DEFAULT_REQUEST_TIMEOUT = 10.0
MAX_LISTED = 10  # new import errors named in one message
# How often a waiting check looks at the stop event while a call is in flight.
STOP_SLICE = 0.05
# A status read this recent is what Astro says now: the next check's first look reuses it
# (``healthy`` right after ``version`` passed) instead of asking Astro again.
REUSE_WITHIN = 2.0
NOT_RUN = "not run: "


class _Lookers:
    """Daemon threads that take the looks of every verification, reused from one look to
    the next: a new thread per look cost twice the CPU of this hand-off (0.23 against 0.12
    ms a look, 50 verifiers at once). Daemons, because a look given up on must not hold
    the process at exit; there are never more of them than looks in flight at once."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a job, less the jobs queued for them

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` (which handles its own errors) on an idle thread, or a new one."""
        with self._lock:
            start = self._idle == 0
            if not start:
                self._idle -= 1
        if start:
            threading.Thread(target=self._serve, name="verify-look", daemon=True).start()
        self._jobs.put(job)

    def _serve(self) -> None:
        while True:
            self._jobs.get()()
            with self._lock:
                self._idle += 1


_LOOKERS = _Lookers()


class Run:
    """One verification of one Deployment: shared state between its checks."""

    def __init__(self, cp: ControlPlane, config: VerifyConfig, deployment: Deployment,
                 target: RuntimeVersion, catalog: Catalog, baseline: dict | None,
                 host: Host | None, repo_dir: str | None, stop: threading.Event,
                 deployed_at: datetime | None = None):
        self.cp, self.config, self.dep, self.target = cp, config, deployment, target
        self.catalog, self.baseline, self.host, self.repo_dir = catalog, baseline, host, repo_dir
        self.stop = stop
        # When our deploy command returned (None: no deploy in this run): heartbeats from
        # before it do not count.
        self.deployed_at = deployed_at
        self.in_flight: threading.Event | None = None  # set when the last call has returned
        self.deadline = time.monotonic() + config.timeout
        self.info: DeploymentInfo | None = None  # Astro's last answer, and when it came
        self.info_at = -math.inf
        # Every status look must show Astro after this moment: after the deploy (or, with
        # no deploy in this run, after the verification began), then after the last look.
        self.newer_than = deployed_at or datetime.now(UTC)
        # Set when Astro said the Deployment does not exist or refused us: the Airflow
        # checks then have no URL to read and are not run.
        self.unreachable: str | None = None
        self.decided = False  # the verdict can no longer pass: later checks look once
        self.interrupted = False

    def call(self, probe: Callable[[], Look], deadline: float) -> Look:
        """Run ``probe`` on a looker thread; give up on it at ``deadline`` or on stop.

        A call given up on keeps running in the background until its own time-out (status read,
        HTTP and command time-outs all bound it); its answer is ignored.
        """
        box: dict[str, Any] = {}
        done = self.in_flight = threading.Event()

        def work() -> None:
            try:
                box["look"] = probe()
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc
            finally:
                done.set()

        _LOOKERS.submit(work)
        while not done.wait(STOP_SLICE):
            if self.stop.is_set():
                raise Abandoned(stopped=True)
            if time.monotonic() >= deadline:
                raise Abandoned(stopped=False)
        if "error" in box:
            raise box["error"]
        return box["look"]

    def status(self, *, reuse: bool, poll: float) -> DeploymentInfo:
        """Astro's view of the Deployment (``ControlPlane.read_status``, shared with the
        looks at other Deployments of its workspace, never from before the deploy); with
        ``reuse``, the last answer instead when it came within REUSE_WITHIN seconds.
        ``poll`` is the asking check's poll interval."""
        if reuse and self.info is not None and time.monotonic() - self.info_at <= REUSE_WITHIN:
            return self.info
        reading = self.cp.read_status(self.dep.id, self.dep.workspace_id,
                                      newer_than=self.newer_than, poll=poll)
        self.newer_than = max(self.newer_than, reading.as_of)
        self.info, self.info_at = reading.info, time.monotonic()
        return reading.info

    def airflow_info(self) -> DeploymentInfo | Look:
        """The Deployment as Astro reports it (for its Airflow API URL), or why not."""
        if self.info is not None:
            return self.info
        if self.unreachable:
            return Look("unknown", f"not run: {self.unreachable}", final=True)
        try:
            return self.status(reuse=False, poll=self.config.poll_interval)
        except (DeploymentNotFound, AstroAuthError) as exc:
            self.unreachable = _refusal(exc, self.dep)
            return Look("unknown", f"not run: {self.unreachable}", final=True)
        except AstroError as exc:
            return Look("unknown", f"Astro could not be asked for the Airflow API URL: "
                                    f"{_first_line(str(exc))}")

    def settle(self, limit: float) -> None:
        """Wait (up to ``limit`` s) for a call given up on to return, before undoing its work."""
        if self.in_flight is not None:
            self.in_flight.wait(limit)


PROBES: dict[str, Callable[[Run, Attempt], Look]] = {}
# Run once when a check ends, however it ends: undo what its probe changed. A note for the
# check's message (a ``fail`` Look fails a check that passed), or None.
FINISHERS: dict[str, Callable[[Run, Attempt], Look | None]] = {}


def _probe(name: str) -> Callable[[Callable[[Run, Attempt], Look]],
                                  Callable[[Run, Attempt], Look]]:
    def register(fn: Callable[[Run, Attempt], Look]) -> Callable[[Run, Attempt], Look]:
        PROBES[name] = fn
        return fn
    return register


def _refusal(exc: AstroError, dep: Deployment) -> str:
    """Why Astro will not tell us about the Deployment, with Astro's words; not its name
    (the summary starts with that)."""
    said = _first_line(exc.astro_message) or _first_line(str(exc))
    if isinstance(exc, DeploymentNotFound):
        return (f"Astro knows no Deployment with id {dep.id} in workspace {dep.workspace_id} "
                f"({said.rstrip('.')}); check id and workspace_id in the inventory")
    return (f"Astro refused the API token ({said.rstrip('.')}); check that it is valid, "
            f"unexpired and has access to workspace {dep.workspace_id}")


def _astro_look(run: Run, attempt: Attempt, want_version: bool) -> Look:
    dep, target = run.dep, run.target
    try:
        # A check's first look may reuse the answer the previous check just got.
        info = run.status(reuse=attempt.tries == 1, poll=attempt.spec.poll_interval)
    except DeploymentNotFound as exc:
        run.unreachable = _refusal(exc, dep)
        return Look(FAIL, f"{run.unreachable}.", final=True)
    except AstroAuthError as exc:
        run.unreachable = _refusal(exc, dep)
        return Look("unknown", f"{run.unreachable}.", final=True)
    except AstroError as exc:
        return Look("unknown", f"Astro could not be asked: {_first_line(str(exc))}")
    seen = f"Astro reports Runtime {info.runtime_version or '?'}, {info.status or 'no status'}"
    if not want_version:
        if info.is_healthy:
            return Look(PASS, f"Astro reports {info.status}")
        return Look("wait", seen)
    reported = try_parse_version(info.runtime_version)
    if reported == target and info.is_healthy:
        return Look(PASS, f"{seen}.")
    if reported is None and info.runtime_version:
        return Look(FAIL, f"{seen}, which is not a Runtime version; expected {target}.",
                     final=True)
    if reported is not None and reported != target and info.is_healthy:
        # Healthy on another version: the deploy did not take, and waiting cannot help.
        return Look(FAIL, f"expected Runtime {target}, but {seen}.", final=True)
    if info.status == "DEPLOYING":
        return Look("wait", f"{seen} (still rolling out, or stuck).")
    return Look("wait", f"{seen}; expected {target} and HEALTHY.")


@_probe("version")
def _version(run: Run, attempt: Attempt) -> Look:
    return _astro_look(run, attempt, want_version=True)


@_probe("healthy")
def _healthy(run: Run, attempt: Attempt) -> Look:
    return _astro_look(run, attempt, want_version=False)


def _airflow_call(run: Run, read: Callable[[DeploymentInfo], Any]) -> Any:
    """``read(info)``, or a look that says why the Airflow API could not be asked."""
    info = run.airflow_info()
    if isinstance(info, Look):
        return info
    try:
        return read(info)
    except AirflowAuthError as exc:
        return Look("unknown", _unnamed(exc, info), final=True)
    except AirflowAPIError as exc:
        return Look("unknown", f"the Airflow API could not be asked: {_unnamed(exc, info)}")


def _unnamed(exc: AirflowAPIError, info: DeploymentInfo) -> str:
    """The error's first line without its ``Deployment <id>: `` lead (the summary has it)."""
    return _first_line(str(exc)).removeprefix(f"Deployment {info.id}: ")


@_probe("airflow_version")
def _airflow_version(run: Run, attempt: Attempt) -> Look:
    expected = attempt.spec.settings.get("expected")
    source = "configured"
    if expected is None:
        release = run.catalog.get(run.target)
        expected = release.airflow if release else None
        source = f"the catalog's for Runtime {run.target}"
    if not expected:
        return Look(PASS, f"not compared: the catalog does not know the Airflow version of "
                           f"Runtime {run.target}.")
    got = _airflow_call(run, run.cp.airflow_version)
    if isinstance(got, Look):
        return got
    reported = got.version
    exact = "*" not in expected and expected.count(".") >= 2
    if exact:
        if _same_version(reported, expected):
            return Look(PASS, f"Airflow reports {got.raw}, as expected ({source}).")
        return Look("wait", f"Airflow reports {got.raw}; expected {expected} ({source}).")
    line = ".".join(expected.replace("*", "").strip(".").split(".")[:2])
    if ".".join(reported.split(".")[:2]) == line:
        return Look(PASS, f"Airflow reports {got.raw}; only {line} was compared, because "
                           f"{source} Airflow version is {expected}.")
    return Look("wait", f"Airflow reports {got.raw}; expected {line}.x ({source}: {expected}).")


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a.strip() == b.strip()


@_probe("health")
def _health(run: Run, attempt: Attempt) -> Look:
    got = _airflow_call(run, run.cp.airflow_health)
    if isinstance(got, Look):
        return got
    settings = attempt.spec.settings
    problems, notes = assess_health(
        got,
        max_heartbeat_age=float(settings.get("max_heartbeat_age", DEFAULT_MAX_HEARTBEAT_AGE)),
        components=settings.get("components", REQUIRED_COMPONENTS),
        newer_than=run.deployed_at,
    )
    seen: dict[str, tuple[datetime, int]] = attempt.memory.setdefault("heartbeats", {})
    if problems:
        seen.clear()  # fresh heartbeats must come one after the other
        return Look("wait", "; ".join(problems) + ".")
    # One look cannot see a heartbeat advance: it takes what it sees.
    need = 1 if attempt.one_look else int(
        settings.get("fresh_heartbeats", DEFAULT_FRESH_HEARTBEATS))
    waiting = []
    for name, comp in got.components().items():
        if comp.latest_heartbeat is None:
            continue  # not present, and not required (assess_health said so)
        last, count = seen.get(name, (None, 0))
        if comp.latest_heartbeat != last:
            count += 1
        seen[name] = (comp.latest_heartbeat, count)
        if count < need:
            waiting.append(f"{name} {count} of {need}")
    text = "; ".join(notes)
    if waiting:
        return Look("wait", f"{text}; waiting to see fresh heartbeats advance "
                            f"({', '.join(waiting)}).")
    return Look(PASS, f"{text}; heartbeats seen advancing ({need} fresh each)." if need > 1
                else f"{text}.")


def assess_health(
    health: Health,
    *,
    max_heartbeat_age: float = DEFAULT_MAX_HEARTBEAT_AGE,
    components: Sequence[str] = REQUIRED_COMPONENTS,
    now: datetime | None = None,
    newer_than: datetime | None = None,
) -> tuple[list[str], list[str]]:
    """(problems, notes) of an Airflow health document; no problems means healthy.

    ``components`` must be present and healthy; the others are checked when present.
    A heart-beating component also needs a heartbeat fresher than ``max_heartbeat_age``
    and, when ``newer_than`` is given (the end of the deploy), newer than that.
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
        _component(name, comp, name in required, max_heartbeat_age, now, newer_than,
                   problems, notes)
    return problems, notes


def _component(name: str, comp: ComponentHealth, required: bool, max_age: float,
               now: datetime, newer_than: datetime | None, problems: list[str],
               notes: list[str]) -> None:
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
    elif newer_than is not None and comp.latest_heartbeat is not None \
            and comp.latest_heartbeat < newer_than:
        problems.append(f"{name} heartbeat is from before the deploy ended "
                        f"({max(0.0, age.total_seconds()):.0f} s old)")
    else:
        notes.append(f"{name} healthy{_age_text(age)}")


def _age_text(age: timedelta | None) -> str:
    if age is None:
        return ""
    # A heartbeat slightly in the future is clock skew between us and the Deployment.
    return f" (heartbeat {max(0.0, age.total_seconds()):.0f} s old)"


@_probe("import_errors")
def _import_errors(run: Run, attempt: Attempt) -> Look:
    got = _airflow_call(run, run.cp.import_errors)
    if isinstance(got, Look):
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
        return Look(FAIL, f"{len(new)} new DAG import error(s){allowed}: "
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
        return Look("wait", f"{text} Watching for {settle:g} s in all.")
    return Look(PASS, text)


def _trace_line(trace: str) -> str:
    """The line of a stack trace that says what went wrong."""
    lines = [ln.strip() for ln in trace.splitlines() if ln.strip()]
    if not lines:
        return "(no stack trace)"
    # Airflow keeps whole tracebacks; their first line says nothing, their last says why.
    if lines[0].startswith("Traceback (most recent call last)"):
        return lines[-1]
    return lines[0]


@_probe("dag_run")
def _dag_run(run: Run, attempt: Attempt) -> Look:
    if attempt.one_look:
        # Triggering a run nobody waits for would only leave work behind.
        return Look("unknown", f"{NOT_RUN}verification had already failed, so the canary "
                               "was not triggered.", final=True)
    return _airflow_call(run, lambda info: canary.look(
        run.cp.airflow, run.cp.airflow_endpoint(info), attempt.spec.settings, attempt.memory))


def _finish_dag_run(run: Run, attempt: Attempt) -> Look | None:
    if attempt.memory.get("repause"):
        # A call given up on may still be unpausing: let it land before pausing again.
        run.settle(run.cp.airflow.retry.total + run.cp.airflow.timeout)
    return canary.restore(run.cp.airflow, attempt.memory)


FINISHERS["dag_run"] = _finish_dag_run


@_probe("command")
def _command(run: Run, attempt: Attempt) -> Look:
    settings = attempt.spec.settings
    argv = list(settings["argv"])
    if run.host is None or run.repo_dir is None:
        return Look("unknown", "cannot run: no repo host and directory were given.",
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
        return Look(FAIL, f"{where} did not finish within {remaining:.0f} s and was killed.",
                     final=True)
    if res.exit_code == expect:
        return Look(PASS, f"{where} exited {res.exit_code} in {res.duration:.1f} s.")
    tail = redact(_tail(res.stderr) or _tail(res.stdout))
    text = f"{where} exited {res.exit_code}, expected {expect}" + (
        f": {tail}" if tail else "") + "."
    # Not found / not executable cannot change by waiting.
    return Look(FAIL if res.exit_code in (126, 127) else "wait", text,
                 final=res.exit_code in (126, 127))


def _tail(text: str, lines: int = 3) -> str:
    kept = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(kept[-lines:])


@_probe("http")
def _http(run: Run, attempt: Attempt) -> Look:
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
        return Look("unknown", f"GET {shown} did not answer within {timeout:.1f} s.")
    except httpx.HTTPError as exc:
        return Look("unknown", f"GET {shown} failed: {type(exc).__name__}.")
    if resp.status_code != expect:
        return Look("wait", f"GET {shown} answered {resp.status_code}, expected {expect}.")
    if contains is not None and contains not in resp.text:
        return Look("wait", f"GET {shown} answered {resp.status_code} but the body does not "
                             f"contain {contains!r}.")
    found = f" and contains {contains!r}" if contains is not None else ""
    return Look(PASS, f"GET {shown} answered {resp.status_code}{found}.")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
