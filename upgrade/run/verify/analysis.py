"""Soak analysis, the impure half: the baseline read before a deploy, the measurements
during the soak, their journal, and what the gate makes of them.

* Before a Deployment's deploy (``WaveRunner._capture_baseline``) :func:`capture_baseline`
  reads its runs of the window before (``interval × count``) and its DAG list, once; the
  result rides in the Deployment's journalled baseline, with the settings it was read for.
* During the soak each measurement (:func:`measure`) reads the runs that ended since the
  previous one (never the same run twice: ``end_date`` windows meet end to end) and the DAG
  list, adds them up, judges (``upgrade.model.analysis``) and, when asked to, journals an
  ``analysis`` event. ``astro-fleet analyze`` measures and records; the gate measures
  without recording (a refused command changes nothing).
* ``analyze --retry`` starts a Deployment's analysis again from now (after a fix);
  ``analyze --accept`` lets the gate pass a failed or inconclusive one; both recorded with
  who and why.

The requests of one measurement: one Astro status read, the run pages (``max_pages`` at
most, one for up to 100 runs), the DAG list pages, and the task instances of at most
``MAX_TASK_LOOKUPS`` failed runs. Each measurement journals how many it made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from upgrade.config.inventory import Inventory
from upgrade.config.verify import CheckSpec, VerifyConfig
from upgrade.controlplane.airflow_history import (
    DEFAULT_MAX_PAGES,
    MAX_TASK_LOOKUPS,
    failed_tasks,
    read_dags,
    read_runs,
)
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.controlplane.deployment import DeploymentInfo
from upgrade.errors import UpgradeError
from upgrade.journal.records import DeploymentRecord, Event
from upgrade.journal.store import Journal
from upgrade.model.analysis import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    RUNNING,
    AnalysisSettings,
    DagTally,
    DagVerdict,
    Judgement,
    Window,
    add,
    judge,
    span_text,
    tally,
)

MEASURED, RETRY, ACCEPTED = "analysis", "analysis_retry", "analysis_accepted"
FINAL = (PASS, FAIL, INCONCLUSIVE)


def settings_for(spec: CheckSpec, config: VerifyConfig) -> AnalysisSettings:
    """The analysis's thresholds from its check's settings (documented defaults for the
    rest; ``inconclusive`` defaults to the verification's own)."""
    given = {k: v for k, v in spec.settings.items() if k in AnalysisSettings.__dataclass_fields__}
    given.setdefault("inconclusive", config.inconclusive)
    return AnalysisSettings.from_json(given)


def max_pages(spec: CheckSpec) -> int:
    """The page budget of one read (runs, or the DAG list) in one measurement."""
    return int(spec.settings.get("max_pages", DEFAULT_MAX_PAGES))


def baseline_for(cp: ControlPlane, info: DeploymentInfo, config: VerifyConfig,
                 now: datetime) -> dict[str, Any] | None:
    """The analysis baseline of a Deployment about to be deployed (None: its settings ask
    for no analysis)."""
    spec = config.analysis
    if spec is None:
        return None
    return capture_baseline(cp, info, settings_for(spec, config), max_pages(spec), now)


def capture_baseline(cp: ControlPlane, info: DeploymentInfo, settings: AnalysisSettings,
                     pages: int, now: datetime) -> dict[str, Any]:
    """The window before the deploy, as journalled: never raises for an Airflow API
    failure (``error`` says why; the analysis is then inconclusive, never a pass)."""
    since = now - timedelta(seconds=settings.window)
    out: dict[str, Any] = {"settings": settings.to_json(), "max_pages": pages,
                           "captured_at": now.isoformat(), "error": None}
    try:
        endpoint = cp.airflow_endpoint(info)
        runs = read_runs(cp.airflow, endpoint, since, now, max_pages=pages)
        dags, dag_requests = read_dags(cp.airflow, endpoint, max_pages=pages)
    except UpgradeError as exc:
        return {**out, "error": str(exc)}
    window = Window((now - runs.since).total_seconds(), tally(runs.runs), dags)
    return {**out, "window": window.to_json(), "requests": runs.requests + dag_requests,
            "truncated": runs.truncated}


@dataclass(frozen=True)
class Measurement:
    """One look at one Deployment's analysis: the judgement so far and what it cost."""

    deployment_id: str
    name: str
    wave: int
    judgement: Judgement
    since: datetime | None = None  # the stretch this look read (None: nothing read)
    until: datetime | None = None
    requests: int = 0
    tallies: Mapping[str, Any] = field(default_factory=dict)  # this look's own, as JSON
    dags: Mapping[str, Any] | None = None
    failed_tasks: Mapping[str, list[str]] = field(default_factory=dict)
    accepted: str | None = None  # "by who: why", when a person accepted it
    settings: AnalysisSettings | None = None
    fresh: bool = True  # judged now (False: the journal's last verdict, replayed)
    ends_at: datetime | None = None  # when its window ends (deploy or retry + interval x count)

    @property
    def status(self) -> str:
        """pass, fail, inconclusive or running."""
        return self.judgement.status

    def blocks(self) -> bool:
        """Whether the gate must wait for, or refuse on, this analysis."""
        if self.accepted:
            return False
        if self.status == INCONCLUSIVE:
            return self.settings is None or self.settings.inconclusive == "fail"
        return self.status in (FAIL, RUNNING)

    def line(self) -> str:
        """One line for the gate, ``status`` and the recap: the Deployment, each failing
        DAG with its before/after figures (and failed tasks), or the summary."""
        bad = self.judgement.failed
        if bad:
            parts = []
            for d in bad[:3]:
                tasks = self.failed_tasks.get(d.dag_id)
                where = f"; failed task(s): {', '.join(tasks)}" if tasks else ""
                parts.append(f"DAG {d.dag_id}: {d.reason} [{d.figures()}{where}]")
            more = f"; and {len(bad) - 3} more DAG(s)" if len(bad) > 3 else ""
            text = "; ".join(parts) + more
        else:
            text = self.judgement.summary
        said = f" (accepted by {self.accepted})" if self.accepted else ""
        return f"{self.name} (wave {self.wave}): analysis {self.status}{said}: {text}"

    def to_json(self) -> dict[str, Any]:
        """The journal's ``analysis`` event data, and the reports' figures."""
        return {"status": self.status, "wave": self.wave,
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
                "requests": self.requests, "tallies": dict(self.tallies), "dags": self.dags,
                "failed_tasks": dict(self.failed_tasks), "judgement": self.judgement.to_json(),
                "accepted": self.accepted}


def measure(cp: ControlPlane, journal: Journal | Journalled, record: DeploymentRecord,
            workspace_id: str, now: datetime) -> Measurement | None:
    """Take one measurement of one Deployment's analysis (None: it has none: no analysis
    configured, or it was never deployed in this rollout). Reads only; :func:`record`
    journals it. An analysis that ended (pass, fail, inconclusive) is not read again."""
    base = (record.baseline or {}).get("analysis")
    if base is None:
        return None
    known = journal if isinstance(journal, Journalled) else Journalled.read(
        journal, record.rollout_id)
    started = known.started(record.deployment_id)
    if started is None:
        return None
    settings = AnalysisSettings.from_json(base["settings"])
    history = known.measured_since(record.deployment_id, started)
    accepted = known.accepted_since(record.deployment_id, started)
    last = history[-1] if history else None

    def result(judgement: Judgement, **kw: Any) -> Measurement:
        return Measurement(record.deployment_id, record.name, record.wave, judgement,
                           accepted=accepted, settings=settings,
                           ends_at=started + timedelta(seconds=settings.window), **kw)

    if base.get("error"):
        return result(Judgement(INCONCLUSIVE, (), f"the baseline could not be read before "
                                                  f"the deploy: {base['error']}"))
    before = Window.from_json(base["window"])
    if last is not None and last.data and last.data.get("status") in FINAL:
        return _replayed(last, result)
    end = started + timedelta(seconds=settings.window)
    since = _last_until(history) or started
    until = min(now, end)
    after_so_far: dict[str, DagTally] = {}
    for e in history:
        after_so_far = add(after_so_far, {k: DagTally.from_json(v) for k, v in
                                          (e.data or {}).get("tallies", {}).items()})
    if until <= since:  # nothing new to read (a look at the same moment)
        window = Window((since - started).total_seconds(), after_so_far,
                        _dags(last) if last else None)
        return result(judge(settings, before, window), since=since, until=since, fresh=False)
    pages = int(base.get("max_pages", DEFAULT_MAX_PAGES))
    try:
        info = cp.status(record.deployment_id, workspace_id)
        endpoint = cp.airflow_endpoint(info)
        runs = read_runs(cp.airflow, endpoint, since, until, max_pages=pages)
        dags, dag_requests = read_dags(cp.airflow, endpoint, max_pages=pages)
    except UpgradeError as exc:
        # No answer is not a pass: the analysis stays running until its window has passed,
        # and then it is inconclusive.
        status = RUNNING if now < end else INCONCLUSIVE
        return result(Judgement(status, (), f"the Airflow API did not answer: {exc}"),
                      since=since, until=since, requests=1)
    mine = tally(runs.runs)
    # A shortened read (more runs than the page budget) covers less time: rates stay honest,
    # elapsed time counts what was read.
    elapsed = (settings.window if until >= end else
               (until - started).total_seconds() - (runs.since - since).total_seconds())
    after = Window(elapsed, add(after_so_far, mine), dags)
    judgement = judge(settings, before, after)
    tasks: dict[str, list[str]] = {}
    for verdict in judgement.failed[:MAX_TASK_LOOKUPS]:
        run_id = runs.last_failed.get(verdict.dag_id)
        if run_id is None:
            continue
        try:
            tasks[verdict.dag_id] = failed_tasks(cp.airflow, endpoint, verdict.dag_id, run_id)
        except UpgradeError:
            continue  # naming the task is a courtesy; the verdict stands without it
    requests = 1 + runs.requests + dag_requests + len(tasks)
    return result(judgement, since=since, until=until, requests=requests,
                  tallies={k: v.to_json() for k, v in mine.items()},
                  dags=None if dags is None else {k: v.to_json() for k, v in dags.items()},
                  failed_tasks=tasks)


def record(journal: Journal, rollout_id: int, m: Measurement) -> None:
    """Journal one measurement (an ``analysis`` event of the Deployment)."""
    journal.event(MEASURED, rollout_id=rollout_id, wave=m.wave, deployment_id=m.deployment_id,
                  message=m.line(), data=m.to_json())


def workspaces(inventory: Inventory, records: Sequence[DeploymentRecord]) -> dict[str, str]:
    """Deployment id -> its workspace, for those of ``records`` the inventory still has."""
    found = {}
    for r in records:
        if inventory.index.position(r.deployment_id) is not None:
            found[r.deployment_id] = inventory.deployment(r.deployment_id).workspace_id
    return found


def measure_all(cp: ControlPlane, journal: Journal, records: Sequence[DeploymentRecord],
                workspaces: Mapping[str, str], now: datetime) -> list[Measurement]:
    """One measurement of each of ``records`` that has an analysis, in parallel."""
    chosen = [r for r in records if r.state == "verified"
              and (r.baseline or {}).get("analysis") is not None]
    if not chosen:
        return []
    known = Journalled.read(journal, chosen[0].rollout_id)
    with ThreadPoolExecutor(max_workers=min(16, len(chosen)),
                            thread_name_prefix="analysis") as pool:
        found = pool.map(lambda r: measure(cp, known, r, workspaces.get(r.deployment_id, ""),
                                           now), chosen)
        return [m for m in found if m is not None]


def latest(journal: Journal, records: Sequence[DeploymentRecord]) -> list[Measurement]:
    """The last journalled measurement of each Deployment's analysis (no reading): what
    ``status`` and the reports show. A Deployment with a baseline and no measurement yet
    shows as running."""
    out: list[Measurement] = []
    chosen = [r for r in records if r.state == "verified"
              and (r.baseline or {}).get("analysis") is not None]
    if not chosen:
        return out
    known = Journalled.read(journal, chosen[0].rollout_id)
    for r in chosen:
        base = (r.baseline or {})["analysis"]
        started = known.started(r.deployment_id)
        if started is None:
            continue
        settings = AnalysisSettings.from_json(base["settings"])
        history = known.measured_since(r.deployment_id, started)
        accepted = known.accepted_since(r.deployment_id, started)

        def result(judgement: Judgement, r: DeploymentRecord = r, accepted: str | None = accepted,
                   settings: AnalysisSettings = settings, started: datetime = started,
                   **kw: Any) -> Measurement:
            return Measurement(r.deployment_id, r.name, r.wave, judgement, accepted=accepted,
                               settings=settings,
                               ends_at=started + timedelta(seconds=settings.window), **kw)

        if history:
            out.append(_replayed(history[-1], result))
        else:
            out.append(result(Judgement(RUNNING, (), "not measured yet")))
    return out


def retry(journal: Journal, rollout_id: int, records: Sequence[DeploymentRecord], actor: str,
          reason: str) -> list[str]:
    """Start each failed or inconclusive analysis of ``records`` again from now (its
    baseline kept); the names of those restarted."""
    names = []
    for m in latest(journal, records):
        if m.status in (FAIL, INCONCLUSIVE):
            journal.event(RETRY, rollout_id=rollout_id, wave=m.wave,
                          deployment_id=m.deployment_id, actor=actor,
                          message=f"analysis restarted: {reason}", data={"reason": reason})
            names.append(m.name)
    return names


def accept(journal: Journal, rollout_id: int, records: Sequence[DeploymentRecord], actor: str,
           reason: str) -> list[str]:
    """Let the gate pass each failed or inconclusive analysis of ``records``, recorded with
    who and why; the names of those accepted."""
    names = []
    for m in latest(journal, records):
        if m.status in (FAIL, INCONCLUSIVE) and not m.accepted:
            journal.event(ACCEPTED, rollout_id=rollout_id, wave=m.wave,
                          deployment_id=m.deployment_id, actor=actor,
                          message=f"analysis {m.status} accepted: {reason}",
                          data={"reason": reason, "status": m.status, "line": m.line()})
            names.append(m.name)
    return names


def journal_reasons(journal: Journal, records: Sequence[DeploymentRecord], wave: int,
                    now: datetime) -> list[str]:
    """The gate's reasons the journal alone gives (``plan --wave N``, ``upgrade --dry-run``):
    analyses that ended failing or blocking inconclusive, and those whose window has not
    ended yet. One still running past its window needs a look: ``upgrade`` takes it."""
    known = [m for m in latest(journal, records)
             if m.status != RUNNING or (m.ends_at is not None and now < m.ends_at)]
    return gate_reasons(known, wave)


def gate_reasons(measurements: Sequence[Measurement], wave: int) -> list[str]:
    """Why the gate refuses ``wave`` for the analyses of earlier waves (pure)."""
    reasons = []
    for m in measurements:
        if not m.blocks() or m.wave >= wave:
            continue
        if m.status == RUNNING:
            end = ""
            if m.settings is not None and m.ends_at is not None:
                end = (f" (until {m.ends_at.isoformat(timespec='seconds')}: it lasts "
                       f"{span_text(m.settings.window)} from the deploy)")
            reasons.append(f"{m.line()}{end}; run this again once it has ended, or watch it: "
                           f"`astro-fleet analyze --wave {m.wave} --watch`")
            continue
        reasons.append(
            f"{m.line()}. After a fix: `astro-fleet analyze --wave {m.wave} --retry --reason "
            f"\"...\"`; to go on as it is: `astro-fleet analyze --wave {m.wave} --accept "
            "--reason \"...\"` (recorded)")
    return reasons


# ------------------------------------------------------------------------ the journal

@dataclass(frozen=True)
class Journalled:
    """What the journal says of a rollout's analyses, read once (every Deployment's moves
    to ``deployed``, its retries, measurements and acceptances), so looking at a thousand
    Deployments costs four queries, not four thousand."""

    deployed: Mapping[str, datetime]
    retried: Mapping[str, datetime]
    measured: Mapping[str, list[Event]]
    accepted: Mapping[str, list[Event]]

    @classmethod
    def read(cls, journal: Journal, rollout_id: int) -> Journalled:
        """The rollout's events of these kinds, by Deployment."""
        deployed: dict[str, datetime] = {}
        for e in journal.events(rollout_id, kind="transition"):
            if e.deployment_id and e.to_state == "deployed":
                deployed[e.deployment_id] = e.at
        retried = {e.deployment_id: e.at for e in journal.events(rollout_id, kind=RETRY)
                   if e.deployment_id}
        measured: dict[str, list[Event]] = {}
        for e in journal.events(rollout_id, kind=MEASURED):
            measured.setdefault(e.deployment_id or "", []).append(e)
        accepted: dict[str, list[Event]] = {}
        for e in journal.events(rollout_id, kind=ACCEPTED):
            accepted.setdefault(e.deployment_id or "", []).append(e)
        return cls(deployed, retried, measured, accepted)

    def started(self, deployment_id: str) -> datetime | None:
        """When the Deployment's analysis started: its deploy in this rollout (the move to
        ``deployed``), or its last ``analyze --retry``."""
        deployed = self.deployed.get(deployment_id)
        if deployed is None:
            return None
        retried = self.retried.get(deployment_id)
        return max(deployed, retried) if retried is not None else deployed

    def measured_since(self, deployment_id: str, started: datetime) -> list[Event]:
        """Its measurements of the analysis that started at ``started``."""
        return [e for e in self.measured.get(deployment_id, []) if e.at >= started]

    def accepted_since(self, deployment_id: str, started: datetime) -> str | None:
        """``who: why`` when a person accepted that analysis."""
        found = [e for e in self.accepted.get(deployment_id, []) if e.at >= started]
        if not found:
            return None
        return f"{found[-1].actor}: {(found[-1].data or {}).get('reason', '')}"


def _last_until(history: Sequence[Event]) -> datetime | None:
    for e in reversed(history):
        until = (e.data or {}).get("until")
        if until:
            return datetime.fromisoformat(until)
    return None


def _dags(e: Event) -> Mapping[str, Any] | None:
    dags = (e.data or {}).get("dags")
    return None if dags is None else Window.from_json({"dags": dags}).dags


def _replayed(e: Event, result: Any) -> Measurement:
    """A journalled measurement, as it was judged."""
    data = e.data or {}
    j = data.get("judgement") or {}
    dags = tuple(DagVerdict(d["dag_id"], d["status"], DagTally.from_json(d["before"]),
                            DagTally.from_json(d["after"]), d.get("reason", ""))
                 for d in j.get("dags", []))
    judgement = Judgement(j.get("status", data.get("status", RUNNING)), dags,
                          j.get("summary", ""), int(j.get("runs_before", 0)),
                          int(j.get("runs_after", 0)))
    since, until = data.get("since"), data.get("until")
    return result(judgement, since=datetime.fromisoformat(since) if since else None,
                  until=datetime.fromisoformat(until) if until else None,
                  requests=int(data.get("requests", 0)), tallies=data.get("tallies") or {},
                  dags=data.get("dags"), failed_tasks=data.get("failed_tasks") or {},
                  fresh=False)
