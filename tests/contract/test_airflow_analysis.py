"""The soak analysis against real Apache Airflow 2.10.5 and 3.0.6: run history read through
the production client (``GET /dags/~/dagRuns`` with ``end_date`` windows, ``order_by``,
``limit``/``offset``; ``GET /dags``; a failed run's task instances) and judged.

Three DAGs stand for three Deployments, each judged on its own runs: one whose runs
succeed before the "deploy" and fail after it (its file swapped for one whose task raises,
as a Runtime that breaks a provider would), one that stays healthy, and one with too few
runs to judge. Runs are triggered through the API. The test leaves the server as it found
it: its DAG files removed, the DAGs paused.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from contract.server import PARSE_TIMEOUT, AirflowServer
from simulators import SimHandle

from upgrade.controlplane.airflow_history import failed_tasks, read_dags, read_runs
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.controlplane.deployment import parse_timestamp
from upgrade.model.analysis import FAIL, INCONCLUSIVE, PASS, AnalysisSettings, Window, judge, tally
from upgrade.run.verify.analysis import capture_baseline

TOKEN_ENV = "AIRFLOW_CONTRACT_TOKEN"
RUNTIMES = {2: "12.4.0", 3: "3.0-7"}
RUN_TIMEOUT = 300.0
SOURCE = '''"""A soak-analysis test DAG (written by tests/contract/test_airflow_analysis.py)."""

from datetime import datetime

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task


@dag(dag_id="{dag_id}", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def soak():
    @task(retries=0)
    def extract() -> None:
        {body}

    extract()


soak()
'''
OK, BROKEN = 'print("extracted")', 'raise RuntimeError("the provider broke on the new Runtime")'


@pytest.fixture
def plane(sim: SimHandle, airflow: AirflowServer) -> Iterator[ControlPlane]:
    """Astro (the simulator) says where the Airflow API is: the real server."""
    sim.add_deployment("dep-1", "contract", runtime_version=RUNTIMES[airflow.major],
                       airflow_api_url=airflow.api_url)
    settings = sim.control_plane(token_env=TOKEN_ENV, http_retries=1, http_timeout=10,
                                 extra_env={TOKEN_ENV: airflow.token})
    with ControlPlane(settings) as cp:
        yield cp


def write(airflow: AirflowServer, dag_id: str, body: str) -> None:
    (airflow.dags / f"{dag_id}.py").write_text(SOURCE.format(dag_id=dag_id, body=body))


def parsed_after(airflow: AirflowServer, dag_id: str, moment: datetime) -> None:
    """Wait until Airflow parsed the DAG's file after ``moment`` (its new code is in use)."""
    deadline = time.monotonic() + PARSE_TIMEOUT
    while time.monotonic() < deadline:
        doc = airflow.api("GET", f"/dags/{dag_id}").json()
        seen = parse_timestamp(doc.get("last_parsed_time"))
        if seen is not None and seen > moment:
            return
        time.sleep(1)
    raise RuntimeError(f"{dag_id} not parsed again within {PARSE_TIMEOUT} s")


def trigger(airflow: AirflowServer, dag_id: str, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        run_id = f"soak__{time.time_ns()}"
        body: dict = {"dag_run_id": run_id}
        if airflow.major == 3:
            body["logical_date"] = None
        resp = airflow.api("POST", f"/dags/{dag_id}/dagRuns", json=body)
        assert resp.status_code == 200, resp.text
        ids.append(run_id)
    return ids


def finished(airflow: AirflowServer, runs: dict[str, list[str]]) -> None:
    """Wait until every run ended (success or failed)."""
    deadline = time.monotonic() + RUN_TIMEOUT
    left = {(d, r) for d, ids in runs.items() for r in ids}
    while left and time.monotonic() < deadline:
        for dag_id, run_id in sorted(left):
            state = airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
            if state in ("success", "failed"):
                left.discard((dag_id, run_id))
        time.sleep(1)
    assert not left, f"runs not finished within {RUN_TIMEOUT} s: {sorted(left)}"


def test_runs_that_fail_after_a_swap_are_caught_and_the_others_judged(
        airflow: AirflowServer, plane: ControlPlane) -> None:
    tag = time.time_ns() % 10**8
    broken, healthy, quiet = (f"soak_{n}_{tag}" for n in ("broken", "healthy", "quiet"))
    mine = (broken, healthy, quiet)
    for dag_id in mine:
        write(airflow, dag_id, OK)
    try:
        for dag_id in mine:
            airflow.wait_for_dag(dag_id)
            airflow.api("PATCH", f"/dags/{dag_id}", params={"update_mask": "is_paused"},
                        json={"is_paused": False})
        started = datetime.now(UTC)
        finished(airflow, {broken: trigger(airflow, broken, 2),
                           healthy: trigger(airflow, healthy, 2),
                           quiet: trigger(airflow, quiet, 1)})
        deployed = datetime.now(UTC)
        write(airflow, broken, BROKEN)  # the "deploy": its provider breaks
        parsed_after(airflow, broken, deployed)
        finished(airflow, {broken: trigger(airflow, broken, 2),
                           healthy: trigger(airflow, healthy, 2),
                           quiet: trigger(airflow, quiet, 1)})
        ended = datetime.now(UTC)

        cp = plane
        info = cp.status("dep-1", "ws-1")
        endpoint = cp.airflow_endpoint(info)
        assert endpoint.api_version == (1 if airflow.major == 2 else 2)
        span = max(deployed - started, ended - deployed) + timedelta(seconds=1)
        settings = AnalysisSettings(interval=span.total_seconds(), count=1, min_runs=2)

        # The baseline as the wave takes it before a deploy, through the production path.
        base = capture_baseline(cp, info, settings, 10, deployed)
        assert base["error"] is None, base["error"]
        before_all = Window.from_json(base["window"])
        assert {d: before_all.tallies[d].runs for d in mine} == {broken: 2, healthy: 2,
                                                                  quiet: 1}
        assert before_all.dags is not None and not before_all.dags[broken].paused

        after_read = read_runs(cp.airflow, endpoint, deployed, ended)
        one_by_one = read_runs(cp.airflow, endpoint, deployed, ended, page_size=1,
                               max_pages=100)
        # Real paging: one run a page, ``total_entries`` followed, the same runs.
        assert sorted((r.dag_id, r.end) for r in one_by_one.runs) == sorted(
            (r.dag_id, r.end) for r in after_read.runs)
        assert one_by_one.requests == len(one_by_one.runs) >= 5
        ends = [r.end for r in after_read.runs]
        assert ends == sorted(ends, reverse=True)  # order_by=-end_date
        dags, _ = read_dags(cp.airflow, endpoint)
        assert dags is not None and all(d in dags for d in mine)
        after_all = tally(after_read.runs)

        def verdict(dag_id: str):
            before = Window(span.total_seconds(), {dag_id: before_all.tallies[dag_id]},
                            {dag_id: before_all.dags[dag_id]})
            after = Window(span.total_seconds(), {dag_id: after_all[dag_id]},
                           {dag_id: dags[dag_id]})
            return judge(settings, before, after)

        bad = verdict(broken)
        assert bad.status == FAIL, bad.summary
        assert "succeeded before (2 of 2 runs), failed after (2 of 2 runs)" in bad.summary
        assert failed_tasks(cp.airflow, endpoint, broken,
                            after_read.last_failed[broken]) == ["extract"]
        good = verdict(healthy)
        assert good.status == PASS, good.summary
        few = verdict(quiet)
        assert few.status == INCONCLUSIVE, few.summary
        assert "too few runs to judge: 1 before, 1 after (at least 2 each)" in few.summary
    finally:
        for dag_id in mine:
            airflow.api("PATCH", f"/dags/{dag_id}", params={"update_mask": "is_paused"},
                        json={"is_paused": True})
            (airflow.dags / f"{dag_id}.py").unlink(missing_ok=True)
