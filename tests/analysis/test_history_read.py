"""Reading run history over HTTP: the product's reader against the simulator's Airflow API.

The request shapes are the real APIs' (Airflow 2.10.5 ``api_connexion/openapi/v1.yaml``:
``GET /dags/{dag_id}/dagRuns`` with ``~`` for every DAG, ``end_date_gte/lte``,
``order_by``, ``limit``/``offset``, ``total_entries``; Airflow 3.0.6
``v2-rest-api-generated.yaml``: the same path and filters under ``/api/v2``). The
simulator serves a scripted history (a DAG with ``schedule_seconds``), on a frozen clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from simulators import SimHandle, make_astro_project

from upgrade.controlplane.airflow_history import failed_tasks, read_dags, read_runs
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.errors import AirflowAPIError
from upgrade.model.analysis import DagState, tally

LINES = {"airflow2": "12.4.0", "airflow3": "3.0-7"}


@pytest.fixture
def cp(sim: SimHandle) -> Iterator[ControlPlane]:
    config = sim.control_plane(http_retries=0, http_timeout=2.0, http_total_timeout=5.0)
    with ControlPlane(config) as plane:
        yield plane


def seeded(sim: SimHandle, runtime: str) -> datetime:
    """A Deployment with an hourly history of ``etl`` (a run every 60 s for the hour before
    it was seeded, 5 s each), a paused DAG and a canary; the frozen time, returned."""
    sim.freeze_clock()
    sim.add_deployment("dep-1", "one", runtime_version=runtime, dags=[
        {"dag_id": "etl", "is_paused": False, "schedule_seconds": 60, "history_seconds": 3600,
         "run_seconds": 5, "tasks": ["extract", "load"]},
        {"dag_id": "old", "is_paused": True},
        "fleet_canary"])
    return datetime.fromtimestamp(float(sim.clock()["epoch"]), UTC)


def endpoint(sim: SimHandle, cp: ControlPlane):
    return cp.airflow_endpoint(cp.status("dep-1", "ws-1"))


@pytest.mark.parametrize("line", list(LINES))
def test_a_window_of_runs_paged_newest_first(sim: SimHandle, cp: ControlPlane, line: str
                                             ) -> None:
    now = seeded(sim, LINES[line])
    ep = endpoint(sim, cp)
    assert ep.api_version == (1 if line == "airflow2" else 2)
    since = now - timedelta(seconds=sim.time_scale * 1800)
    got = read_runs(cp.airflow, ep, since, now, page_size=7)
    # 30 simulated minutes of one run a minute: 30 or 31 ticks, whichever ended in it.
    assert 29 <= len(got.runs) <= 31
    assert got.requests == -(-len(got.runs) // 7)
    assert not got.truncated and got.since == since
    ends = [r.end for r in got.runs]
    assert ends == sorted(ends, reverse=True)
    assert all(since <= e <= now for e in ends if e is not None)
    assert tally(got.runs)["etl"].failed == 0


@pytest.mark.parametrize("line", list(LINES))
def test_the_page_budget_keeps_the_newest_and_shortens_the_window(
        sim: SimHandle, cp: ControlPlane, line: str) -> None:
    now = seeded(sim, LINES[line])
    since = now - timedelta(seconds=sim.time_scale * 3600)
    got = read_runs(cp.airflow, endpoint(sim, cp), since, now, page_size=10, max_pages=2)
    assert got.requests == 2 and got.truncated and len(got.runs) == 20
    assert got.since > since
    assert min(r.end for r in got.runs if r.end) >= got.since


@pytest.mark.parametrize("line", list(LINES))
def test_runs_fail_while_the_fault_stands_and_stay_failed_after_the_fix(
        sim: SimHandle, cp: ControlPlane, line: str, tmp_path: Path) -> None:
    seeded(sim, LINES[line])
    sim.set_fault("dep-1", scheduled_runs_fail=True)
    image = ("quay.io/astronomer/astro-runtime:" if line == "airflow2" else
             "astrocrpublic.azurecr.io/runtime:")
    cp.deploy("dep-1", "ws-1", make_astro_project(tmp_path / "repo", f"FROM {image}"
                                                  f"{LINES[line]}\n"), "the upgrade")
    sim.advance(300)  # past the rollout's end: the runs fail from there
    now = datetime.fromtimestamp(float(sim.clock()["epoch"]), UTC)
    sim.advance(600)
    sim.set_fault("dep-1", scheduled_runs_fail=None)  # the fix
    sim.advance(600)
    ep = endpoint(sim, cp)
    minute = timedelta(seconds=sim.time_scale * 60)
    broken = read_runs(cp.airflow, ep, now + minute, now + 10 * minute)
    fixed = read_runs(cp.airflow, ep, now + 11 * minute, now + 20 * minute)
    assert {r.state for r in broken.runs} == {"failed"}
    assert {r.state for r in fixed.runs} == {"success"}
    assert set(broken.last_failed) == {"etl"}
    # The failed run's failing task is named (its last task, as the simulator fails it).
    assert failed_tasks(cp.airflow, ep, "etl", broken.last_failed["etl"]) == ["load"]


@pytest.mark.parametrize("line", list(LINES))
def test_the_dag_list_says_paused_and_missing(sim: SimHandle, cp: ControlPlane, line: str
                                              ) -> None:
    seeded(sim, LINES[line])
    dags, requests = read_dags(cp.airflow, endpoint(sim, cp), page_size=2)
    assert dags == {"etl": DagState(), "old": DagState(paused=True),
                    "fleet_canary": DagState(paused=True)}
    assert requests == 2
    assert read_dags(cp.airflow, endpoint(sim, cp), page_size=2, max_pages=1)[0] is None


@pytest.mark.parametrize("line", list(LINES))
def test_an_order_the_api_does_not_allow_is_refused(sim: SimHandle, cp: ControlPlane,
                                                    line: str) -> None:
    seeded(sim, LINES[line])
    ep = endpoint(sim, cp)
    with pytest.raises(AirflowAPIError) as err:
        cp.airflow.request_json(ep, "/dags/~/dagRuns", params={"order_by": "duration"})
    assert err.value.status_code == (400 if line == "airflow2" else 422)
