"""Soak analysis, the pure half: a Deployment's DAG runs after its upgrade judged against its
own runs before it.

Plain facts in, a verdict out; nothing here reads a clock or a network. The reading (the
Airflow API, paged and time-filtered) is ``upgrade.controlplane.airflow_history``'s, the
polling and the journal ``upgrade.run.verify.analysis``'s. The thresholds and why they are
what they are: docs/verification.md, "Soak analysis".

Vocabulary from Argo Rollouts' AnalysisTemplate where it fits: an analysis takes ``count``
measurements, ``interval`` apart, so it lasts ``interval × count``; the baseline is the
window of the same length just before the deploy. ``failure_limit`` is how many failed
runs a DAG that never failed before may have after the deploy (Argo: failed measurements
tolerated, default 0). Too few runs to judge is ``inconclusive``, never a silent pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PASS, FAIL, INCONCLUSIVE, RUNNING = "pass", "fail", "inconclusive", "running"
IDLE = "idle"  # a DAG with no runs in either window and nothing changed: not judged
FINISHED = ("success", "failed")  # the DAG run states that end a run


@dataclass(frozen=True)
class AnalysisSettings:
    """One wave's thresholds (the ``analysis`` check's settings, defaults documented)."""

    interval: float = 300.0  # s between two measurements
    count: int = 6  # measurements: the analysis lasts interval × count (30 min by default)
    failure_limit: int = 0  # failed runs tolerated after the deploy, per DAG
    max_failure_rate_increase: float = 0.25  # failure rate after − before, as a fraction
    min_runs: int = 3  # finished runs needed in each window, per Deployment
    duration_factor: float = 3.0  # a run this many times slower than before's mean ...
    min_slowdown: float = 60.0  # ... and at least this many seconds slower, fails
    inconclusive: str = "fail"  # fail: an inconclusive analysis blocks the gate; pass: not

    @property
    def window(self) -> float:
        """Seconds the analysis lasts, and the length of the baseline window before it."""
        return self.interval * self.count

    def to_json(self) -> dict[str, Any]:
        """Plain data for the journal and reports."""
        return {"interval": self.interval, "count": self.count,
                "failure_limit": self.failure_limit,
                "max_failure_rate_increase": self.max_failure_rate_increase,
                "min_runs": self.min_runs, "duration_factor": self.duration_factor,
                "min_slowdown": self.min_slowdown, "inconclusive": self.inconclusive}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> AnalysisSettings:
        """Settings from :meth:`to_json` or a check's settings (unknown keys ignored)."""
        known = {k: doc[k] for k in cls.__dataclass_fields__ if k in doc}
        return cls(**known)


@dataclass(frozen=True)
class RunFact:
    """One DAG run as the analysis needs it."""

    dag_id: str
    state: str
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class DagTally:
    """One DAG's finished runs in one window: how many, how many failed, and the time the
    successful ones took (summed, so tallies of consecutive polls add up)."""

    runs: int = 0
    failed: int = 0
    seconds: float = 0.0  # total duration of the successful runs that have both times
    timed: int = 0  # how many those are

    @property
    def rate(self) -> float:
        """Failure rate (0 with no runs)."""
        return self.failed / self.runs if self.runs else 0.0

    @property
    def mean_seconds(self) -> float | None:
        """Mean duration of a successful run (None: none was timed)."""
        return self.seconds / self.timed if self.timed else None

    def __add__(self, other: DagTally) -> DagTally:
        return DagTally(self.runs + other.runs, self.failed + other.failed,
                        self.seconds + other.seconds, self.timed + other.timed)

    def to_json(self) -> dict[str, Any]:
        """Plain data for the journal."""
        return {"runs": self.runs, "failed": self.failed, "seconds": round(self.seconds, 3),
                "timed": self.timed}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> DagTally:
        """A tally from :meth:`to_json`."""
        return cls(int(doc.get("runs", 0)), int(doc.get("failed", 0)),
                   float(doc.get("seconds", 0.0)), int(doc.get("timed", 0)))


@dataclass(frozen=True)
class DagState:
    """What Airflow's DAG list says of one DAG at one moment."""

    paused: bool = False
    import_error: bool = False

    def to_json(self) -> dict[str, Any]:
        """Plain data for the journal."""
        return {"paused": self.paused, "import_error": self.import_error}


@dataclass(frozen=True)
class Window:
    """A Deployment's runs in one stretch of time: per DAG tallies, and what its DAG list
    said at the stretch's end (None: not read)."""

    seconds: float
    tallies: Mapping[str, DagTally] = field(default_factory=dict)
    dags: Mapping[str, DagState] | None = None

    @property
    def runs(self) -> int:
        """Finished runs of every DAG."""
        return sum(t.runs for t in self.tallies.values())

    def to_json(self) -> dict[str, Any]:
        """Plain data for the journal."""
        return {"seconds": round(self.seconds, 3),
                "tallies": {k: v.to_json() for k, v in sorted(self.tallies.items())},
                "dags": None if self.dags is None else
                {k: v.to_json() for k, v in sorted(self.dags.items())}}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Window:
        """A window from :meth:`to_json`."""
        dags = doc.get("dags")
        return cls(float(doc.get("seconds", 0.0)),
                   {k: DagTally.from_json(v) for k, v in (doc.get("tallies") or {}).items()},
                   None if dags is None else
                   {k: DagState(bool(v.get("paused")), bool(v.get("import_error")))
                    for k, v in dags.items()})


@dataclass(frozen=True)
class DagVerdict:
    """One DAG's verdict, with the figures it stands on."""

    dag_id: str
    status: str  # pass, fail, inconclusive, idle
    before: DagTally
    after: DagTally
    reason: str = ""

    def figures(self) -> str:
        """``before 0/12 failed, after 3/3 failed``: what a person compares."""
        return (f"before {self.before.failed}/{self.before.runs} failed, "
                f"after {self.after.failed}/{self.after.runs} failed")

    def to_json(self) -> dict[str, Any]:
        """Plain data for the journal and reports."""
        return {"dag_id": self.dag_id, "status": self.status, "reason": self.reason,
                "before": self.before.to_json(), "after": self.after.to_json()}


@dataclass(frozen=True)
class Judgement:
    """A Deployment's analysis verdict: ``running`` until its window has passed (unless a
    DAG already failed it), then ``pass``, ``fail`` or ``inconclusive``."""

    status: str
    dags: tuple[DagVerdict, ...]
    summary: str
    runs_before: int = 0
    runs_after: int = 0

    @property
    def failed(self) -> tuple[DagVerdict, ...]:
        """The DAGs that failed it."""
        return tuple(d for d in self.dags if d.status == FAIL)

    def to_json(self) -> dict[str, Any]:
        """Plain data for the journal and reports."""
        return {"status": self.status, "summary": self.summary,
                "runs_before": self.runs_before, "runs_after": self.runs_after,
                "dags": [d.to_json() for d in self.dags if d.status != IDLE]}


def tally(runs: Iterable[RunFact]) -> dict[str, DagTally]:
    """Per DAG tallies of the finished runs among ``runs`` (queued and running ones are
    not counted: they have not ended in the window)."""
    out: dict[str, DagTally] = {}
    for run in runs:
        if run.state not in FINISHED:
            continue
        timed = run.state == "success" and run.start is not None and run.end is not None
        seconds = max(0.0, (run.end - run.start).total_seconds()) if timed else 0.0  # type: ignore[operator]
        one = DagTally(1, int(run.state == "failed"), seconds, int(timed))
        out[run.dag_id] = out.get(run.dag_id, DagTally()) + one
    return out


def add(a: Mapping[str, DagTally], b: Mapping[str, DagTally]) -> dict[str, DagTally]:
    """Tallies of two consecutive stretches, DAG by DAG."""
    out = dict(a)
    for dag, t in b.items():
        out[dag] = out.get(dag, DagTally()) + t
    return out


def judge(settings: AnalysisSettings, before: Window, after: Window) -> Judgement:
    """The verdict of one Deployment: ``before`` is the baseline window (its ``dags`` read
    before the deploy), ``after`` the runs since the deploy so far (``seconds`` elapsed,
    its ``dags`` read now). A failing DAG fails the analysis at once; otherwise it runs
    until ``after.seconds`` reaches the window, then passes or is inconclusive (too few
    runs on either side to tell)."""
    ids = sorted(set(before.tallies) | set(after.tallies) | set(before.dags or {})
                 | set(after.dags or {}))
    verdicts = tuple(_dag(settings, dag, before, after) for dag in ids)
    failed = [d for d in verdicts if d.status == FAIL]
    counts = (before.runs, after.runs)
    if failed:
        named = "; ".join(f"{d.dag_id}: {d.reason}" for d in failed[:5])
        more = f"; and {len(failed) - 5} more DAG(s)" if len(failed) > 5 else ""
        return Judgement(FAIL, verdicts, f"{len(failed)} DAG(s) regressed: {named}{more}",
                         *counts)
    if after.seconds < settings.window:
        return Judgement(RUNNING, verdicts,
                         f"no regression so far ({span_text(after.seconds)} of "
                         f"{span_text(settings.window)}; {after.runs} run(s) after, "
                         f"{before.runs} before)", *counts)
    if before.runs < settings.min_runs or after.runs < settings.min_runs:
        return Judgement(INCONCLUSIVE, verdicts,
                         f"too few runs to judge: {before.runs} before, {after.runs} after "
                         f"(at least {settings.min_runs} each)", *counts)
    unsure = [d.dag_id for d in verdicts if d.status == INCONCLUSIVE]
    note = f"; too few runs to judge {', '.join(unsure[:5])}" if unsure else ""
    return Judgement(PASS, verdicts, f"no regression: {before.runs} run(s) before, "
                     f"{after.runs} after{note}", *counts)


def _dag(s: AnalysisSettings, dag: str, before: Window, after: Window) -> DagVerdict:
    b, a = before.tallies.get(dag, DagTally()), after.tallies.get(dag, DagTally())

    def verdict(status: str, reason: str = "") -> DagVerdict:
        return DagVerdict(dag, status, b, a, reason)

    was = (before.dags or {}).get(dag)
    now = (after.dags or {}).get(dag) if after.dags is not None else was
    active_before = was is not None and not was.paused
    # Stopped being scheduled: the DAG list says so (only when both lists were read).
    if before.dags is not None and after.dags is not None and active_before:
        if now is None:
            return verdict(FAIL, "missing since the deploy (Airflow no longer lists it)")
        if now.import_error and not was.import_error:  # type: ignore[union-attr]
            return verdict(FAIL, "its file fails to import since the deploy")
        if now.paused:
            return verdict(FAIL, "paused since the deploy")
    if a.failed > s.failure_limit and b.runs and not b.failed:
        return verdict(FAIL, f"succeeded before ({b.runs} of {b.runs} runs), failed after "
                             f"({a.failed} of {a.runs} runs)")
    rise = a.rate - b.rate
    if (b.runs >= s.min_runs and a.runs >= s.min_runs and a.failed > s.failure_limit
            and rise > s.max_failure_rate_increase):
        return verdict(FAIL, f"failure rate {_pct(b.rate)} before ({b.failed}/{b.runs}), "
                             f"{_pct(a.rate)} after ({a.failed}/{a.runs})")
    # Stopped being scheduled, seen in the runs: several were due by now, none came.
    due = b.runs * after.seconds / before.seconds if before.seconds > 0 else 0.0
    if a.runs == 0 and due >= s.min_runs and (was is None or not was.paused):
        return verdict(FAIL, f"no run since the deploy ({b.runs} in the "
                             f"{span_text(before.seconds)} before: about {due:.0f} were due)")
    mean_b, mean_a = b.mean_seconds, a.mean_seconds
    if (mean_b is not None and mean_a is not None and mean_a > s.duration_factor * mean_b
            and mean_a - mean_b >= s.min_slowdown):
        return verdict(FAIL, f"runs take {_seconds(mean_a)} on average, {_seconds(mean_b)} "
                             f"before ({mean_a / mean_b:.1f}x)")
    if b.runs == 0 and a.runs == 0:
        return verdict(IDLE)
    if b.runs == 0:
        return verdict(INCONCLUSIVE, "no run before the deploy to compare with")
    if a.runs < s.min_runs:
        return verdict(INCONCLUSIVE, f"{a.runs} run(s) after the deploy (fewer than "
                                     f"{s.min_runs})")
    return verdict(PASS)


def _pct(rate: float) -> str:
    return f"{rate * 100:.0f}%"


def _seconds(value: float) -> str:
    return f"{value:.0f}s" if value < 120 else f"{value / 60:.1f}m"


def span_text(seconds: float) -> str:
    """A window's length in words: ``45s``, ``30m``, ``2.5h``."""
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
