"""Soak analysis, the pure judgement: each rule alone from plain figures, then their order.

Every case is a Deployment's baseline window and its window since the deploy, written as
``dag: (runs, failed)`` (and, where durations matter, the mean seconds of a success).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from upgrade.model.analysis import (
    FAIL,
    IDLE,
    INCONCLUSIVE,
    PASS,
    RUNNING,
    AnalysisSettings,
    DagState,
    DagTally,
    RunFact,
    Window,
    add,
    judge,
    tally,
)

S = AnalysisSettings()  # the documented defaults: 5m × 6, failure_limit 0, min_runs 3
W = S.window
ACTIVE = DagState()


def t(runs: int, failed: int = 0, mean: float | None = None) -> DagTally:
    """A tally of ``runs`` runs, ``failed`` of them failed, the successes ``mean`` s each."""
    ok = runs - failed
    if mean is None:
        return DagTally(runs, failed)
    return DagTally(runs, failed, mean * ok, ok)


def window(seconds: float, dags: dict | None = None, **tallies: DagTally) -> Window:
    return Window(seconds, tallies, dags)


# (id, settings, before, after, expected status, DAG id -> its expected status, words in
# the summary)
CASES = [
    ("healthy", S, window(W, etl=t(6)), window(W, etl=t(6)), PASS, {"etl": PASS}, "no regression"),
    ("succeeded-before-fails-after", S, window(W, etl=t(6)), window(W, etl=t(6, 2)),
     FAIL, {"etl": FAIL}, "succeeded before (6 of 6 runs), failed after (2 of 6 runs)"),
    ("one-failure-fails-at-once-while-running", S, window(W, etl=t(6)),
     window(60, etl=t(1, 1)), FAIL, {"etl": FAIL}, "failed after (1 of 1 runs)"),
    ("failure-limit-tolerates", AnalysisSettings(failure_limit=1), window(W, etl=t(6)),
     window(W, etl=t(6, 1)), PASS, {"etl": PASS}, "no regression"),
    ("failure-limit-exceeded", AnalysisSettings(failure_limit=1), window(W, etl=t(6)),
     window(W, etl=t(6, 2)), FAIL, {"etl": FAIL}, "failed after (2 of 6"),
    ("flaky-before-same-rate-after", S, window(W, etl=t(10, 2)), window(W, etl=t(10, 3)),
     PASS, {"etl": PASS}, "no regression"),
    ("flaky-before-rate-regression", S, window(W, etl=t(10, 1)), window(W, etl=t(10, 5)),
     FAIL, {"etl": FAIL}, "failure rate 10% before (1/10), 50% after (5/10)"),
    ("rate-rise-at-threshold-passes", S, window(W, etl=t(4, 1)), window(W, etl=t(4, 2)),
     PASS, {"etl": PASS}, "no regression"),
    ("rate-needs-min-runs-after", S, window(W, etl=t(10, 1)), window(90, etl=t(2, 2)),
     RUNNING, {"etl": INCONCLUSIVE}, "no regression so far"),
    ("still-running", S, window(W, etl=t(6)), window(600, etl=t(2)), RUNNING,
     {"etl": INCONCLUSIVE}, "10m of 30m"),
    ("too-few-runs-after", S, window(W, etl=t(6)), window(W, etl=t(2)), INCONCLUSIVE,
     {"etl": INCONCLUSIVE}, "too few runs to judge: 6 before, 2 after (at least 3 each)"),
    ("too-few-runs-before", S, window(W, etl=t(1)), window(W, etl=t(6)), INCONCLUSIVE,
     {"etl": PASS}, "1 before, 6 after"),
    ("no-runs-at-all", S, window(W), window(W), INCONCLUSIVE, {}, "0 before, 0 after"),
    ("stopped-being-scheduled", S, window(W, etl=t(6), rare=t(3)), window(W, rare=t(3)),
     FAIL, {"etl": FAIL, "rare": PASS}, "no run since the deploy (6 in the 30m before"),
    ("half-way-few-due-not-yet-stopped", S, window(W, etl=t(4)), window(W / 2), RUNNING,
     {"etl": INCONCLUSIVE}, "no regression so far"),
    ("paused-since", S, window(W, {"etl": ACTIVE}, etl=t(6)),
     window(W, {"etl": DagState(paused=True)}), FAIL, {"etl": FAIL}, "paused since the deploy"),
    ("paused-before-and-after-is-not-a-regression", S,
     window(W, {"etl": DagState(paused=True), "ok": ACTIVE}, ok=t(6)),
     window(W, {"etl": DagState(paused=True), "ok": ACTIVE}, ok=t(6)), PASS,
     {"etl": IDLE, "ok": PASS}, "no regression"),
    ("missing-since", S, window(W, {"etl": ACTIVE, "ok": ACTIVE}, etl=t(6), ok=t(6)),
     window(W, {"ok": ACTIVE}, ok=t(6)), FAIL, {"etl": FAIL}, "missing since the deploy"),
    ("import-error-since", S, window(W, {"etl": ACTIVE}, etl=t(6)),
     window(W, {"etl": DagState(import_error=True)}, etl=t(6)), FAIL, {"etl": FAIL},
     "fails to import since the deploy"),
    ("import-error-before-too", S, window(W, {"etl": DagState(import_error=True)}, etl=t(6)),
     window(W, {"etl": DagState(import_error=True)}, etl=t(6)), PASS, {"etl": PASS},
     "no regression"),
    ("dag-list-unread-after-judges-runs-only", S, window(W, {"etl": ACTIVE}, etl=t(6)),
     window(W, None, etl=t(6)), PASS, {"etl": PASS}, "no regression"),
    ("far-slower", S, window(W, etl=t(6, mean=30)), window(W, etl=t(6, mean=300)), FAIL,
     {"etl": FAIL}, "runs take 5.0m on average, 30s before (10.0x)"),
    ("slower-but-under-the-factor", S, window(W, etl=t(6, mean=100)),
     window(W, etl=t(6, mean=250)), PASS, {"etl": PASS}, "no regression"),
    ("slower-by-factor-but-seconds-only", S, window(W, etl=t(6, mean=2)),
     window(W, etl=t(6, mean=20)), PASS, {"etl": PASS}, "no regression"),
    ("new-dag-after-is-not-judged", S, window(W, etl=t(6)), window(W, etl=t(6), new=t(3, 3)),
     PASS, {"etl": PASS, "new": INCONCLUSIVE}, "too few runs to judge new"),
    ("rare-dag-inconclusive-others-pass", S, window(W, etl=t(6), nightly=t(1)),
     window(W, etl=t(6)), PASS, {"etl": PASS, "nightly": INCONCLUSIVE}, "nightly"),
    ("rare-dag-that-fails-after-fails", S, window(W, etl=t(6), nightly=t(1)),
     window(W, etl=t(6), nightly=t(1, 1)), FAIL, {"nightly": FAIL},
     "nightly: succeeded before (1 of 1 runs)"),
]


@pytest.mark.parametrize(("settings", "before", "after", "status", "dags", "words"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_judgement(settings: AnalysisSettings, before: Window, after: Window, status: str,
                   dags: dict[str, str], words: str) -> None:
    got = judge(settings, before, after)
    assert got.status == status, got.summary
    by_dag = {d.dag_id: d.status for d in got.dags}
    for dag, expected in dags.items():
        assert by_dag[dag] == expected, (dag, got.dags)
    assert words in got.summary


def test_a_failing_dag_names_its_figures() -> None:
    got = judge(S, window(W, etl=t(12)), window(W, etl=t(3, 3)))
    (bad,) = got.failed
    assert bad.figures() == "before 0/12 failed, after 3/3 failed"
    assert got.to_json()["dags"][0]["after"] == {"runs": 3, "failed": 3, "seconds": 0.0,
                                                  "timed": 0}


def test_more_than_five_failing_dags_are_counted_not_listed() -> None:
    before = window(W, **{f"d{i}": t(5) for i in range(8)})
    after = window(W, **{f"d{i}": t(5, 5) for i in range(8)})
    got = judge(S, before, after)
    assert got.summary.startswith("8 DAG(s) regressed")
    assert got.summary.endswith("and 3 more DAG(s)")


def test_tally_counts_finished_runs_and_times_the_successes() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    runs = [RunFact("a", "success", at, at + timedelta(seconds=10)),
            RunFact("a", "success", at, at + timedelta(seconds=30)),
            RunFact("a", "failed", at, at + timedelta(seconds=99)),
            RunFact("a", "running", at, None),
            RunFact("a", "queued"),
            RunFact("b", "success", None, at)]
    got = tally(runs)
    assert got["a"] == DagTally(3, 1, 40.0, 2)
    assert got["a"].mean_seconds == 20.0
    assert got["b"] == DagTally(1, 0, 0.0, 0) and got["b"].mean_seconds is None


def test_tallies_of_consecutive_polls_add_up() -> None:
    first, second = {"a": t(2, 1)}, {"a": t(3), "b": t(1)}
    assert add(first, second) == {"a": DagTally(5, 1), "b": DagTally(1)}


def test_settings_and_windows_round_trip_through_json() -> None:
    s = AnalysisSettings(interval=60, count=3, failure_limit=2, inconclusive="pass")
    assert AnalysisSettings.from_json(s.to_json()) == s
    assert s.window == 180
    w = window(W, {"a": DagState(paused=True)}, a=t(3, 1, mean=5))
    assert Window.from_json(w.to_json()) == w
