"""What the gate makes of earlier waves' analyses (pure): which block, and what it says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from upgrade.model.analysis import AnalysisSettings, DagTally, DagVerdict, Judgement
from upgrade.run.verify.analysis import Measurement, gate_reasons

AT = datetime(2026, 12, 7, 12, tzinfo=UTC)
BAD = DagVerdict("nightly_sales", "fail", DagTally(12), DagTally(3, 3),
                 "succeeded before (12 of 12 runs), failed after (3 of 3 runs)")


def m(status: str, *, wave: int = 1, accepted: str | None = None, inconclusive: str = "fail",
      dags: tuple = (), tasks: dict | None = None) -> Measurement:
    return Measurement("d1", "sales-etl-dev", wave, Judgement(status, dags, f"{status} summary"),
                       AT, AT, 3, failed_tasks=tasks or {}, accepted=accepted,
                       settings=AnalysisSettings(inconclusive=inconclusive),
                       ends_at=AT + timedelta(minutes=30))


@pytest.mark.parametrize(("measured", "blocks"), [
    (m("pass"), False),
    (m("running"), True),
    (m("fail", dags=(BAD,)), True),
    (m("fail", dags=(BAD,), accepted="ana: known flaky"), False),
    (m("inconclusive"), True),
    (m("inconclusive", inconclusive="pass"), False),
    (m("inconclusive", accepted="ana: quiet dev"), False),
], ids=["pass", "running", "fail", "fail-accepted", "inconclusive-blocks",
        "inconclusive-passes-by-setting", "inconclusive-accepted"])
def test_which_analyses_keep_the_gate_closed(measured: Measurement, blocks: bool) -> None:
    assert measured.blocks() is blocks
    assert bool(gate_reasons([measured], wave=2)) is blocks


def test_a_failure_names_the_deployment_dag_figures_tasks_and_commands() -> None:
    (reason,) = gate_reasons([m("fail", dags=(BAD,), tasks={"nightly_sales": ["load"]})], 2)
    assert reason.startswith("sales-etl-dev (wave 1): analysis fail: DAG nightly_sales: "
                             "succeeded before (12 of 12 runs), failed after (3 of 3 runs) "
                             "[before 0/12 failed, after 3/3 failed; failed task(s): load]")
    assert 'astro-fleet analyze --wave 1 --retry --reason "..."' in reason
    assert 'astro-fleet analyze --wave 1 --accept --reason "..."' in reason


def test_running_says_how_long_and_how_to_watch() -> None:
    (reason,) = gate_reasons([m("running")], 2)
    assert "(until 2026-12-07T12:30:00+00:00: it lasts 30m from the deploy)" in reason
    assert "astro-fleet analyze --wave 1 --watch" in reason


def test_only_earlier_waves_count() -> None:
    assert gate_reasons([m("fail", wave=2, dags=(BAD,))], wave=2) == []
