"""The simulator's Airflow API answers as real Airflow 2.10.5 and 3.0.6 did.

tests/contract/record.py recorded real answers into tests/controlplane/recorded/airflow/
<version>/; here every recorded request is replayed, in the recorded order, against a
simulated Deployment in the same state (two broken DAG files, DAGs canary_ok and
canary_fail, paused), and the answer must have the same status, content type and shape:
the same keys at every level, the same kinds of values, timestamps with the same suffix.
A null on either side matches anything (a run may be queued on one and running on the
other a moment later).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from simulators import SimHandle

RECORDED = Path(__file__).resolve().parents[1] / "controlplane" / "recorded" / "airflow"
# A Runtime whose Airflow has the recorded major (the catalog's 12.x is Airflow 2.10).
RUNTIMES = {"2.10.5": "12.4.0", "3.0.6": "3.0-7"}
JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)")
# The order record.py sent them in: each builds the state the next ones need.
ORDER = (
    "health", "health_bad_token", "version", "import_errors", "import_errors_default_page",
    "import_errors_page", "import_errors_limit_0", "import_errors_bad_order",
    "import_errors_no_token", "import_errors_bad_token", "dag", "dag_not_found",
    "dag_no_token", "dag_unpause", "dag_run_trigger_without_logical_date", "dag_run_trigger",
    "dag_run_conflict", "dag_run_trigger_not_found", "dag_run_queued", "dag_run_success",
    "dag_run_failed", "task_instances_failed", "dag_run_not_found", "dag_pause",
    "health_triggerer_stopped", "health_scheduler_stopped",
)


def shape(value: Any) -> Any:
    """What a value looks like, not what it is."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, str) and TIMESTAMP.fullmatch(value):
        return "timestamp" + ("Z" if value.endswith("Z") else "+00:00")
    return type(value).__name__


def same_shape(real: Any, sim: Any, where: str = "") -> list[str]:
    """Where the simulator's shape differs from the real one (nulls and [] match anything)."""
    if real == "NoneType" or sim == "NoneType" or real == [] or sim == []:
        return []
    if isinstance(real, dict) and isinstance(sim, dict):
        out = [f"{where}.{k}: missing" for k in real.keys() - sim.keys()]
        out += [f"{where}.{k}: not in real Airflow" for k in sim.keys() - real.keys()]
        for key in real.keys() & sim.keys():
            out += same_shape(real[key], sim[key], f"{where}.{key}")
        return out
    if isinstance(real, list) and isinstance(sim, list):
        return same_shape(real[0], sim[0], f"{where}[0]")
    return [] if real == sim else [f"{where}: real {real}, simulated {sim}"]


def _seed(sim: SimHandle, version: str) -> None:
    sim.add_deployment(
        "dep-1", "fidelity", runtime_version=RUNTIMES[version],
        import_errors=[{"filename": "broken_syntax.py", "stack_trace": "SyntaxError"},
                       {"filename": "broken_import.py", "stack_trace": "ModuleNotFoundError"}],
        dags=[{"dag_id": "canary_ok", "tasks": ["hello"]},
              {"dag_id": "canary_fail", "tasks": ["setup", "boom"]}],
    )


def _send(sim: SimHandle, version: str, record: dict[str, Any]) -> httpx.Response:
    method, target = record["request"].split(" ", 1)
    path, _, query = target.partition("?")
    headers = {}
    if record["token"] == "good":
        headers["Authorization"] = f"Bearer {sim.env['ASTRO_API_TOKEN']}"
    elif record["token"] == "bad":
        headers["Authorization"] = "Bearer not-a-valid-token"
    url = f"{sim.url}/d/dep-1{path}" + (f"?{query}" if query else "")
    return httpx.request(method, url, headers=headers, timeout=10,
                         **({"json": record["json"]} if record["json"] is not None else {}))


def _before(sim: SimHandle, name: str, version: str) -> None:
    """What record.py did between recordings, done here through the same API."""
    base = f"{sim.url}/d/dep-1/api/v{1 if version.startswith('2') else 2}"
    auth = {"Authorization": f"Bearer {sim.env['ASTRO_API_TOKEN']}"}
    if name == "dag_run_success":
        httpx.patch(f"{base}/dags/canary_fail", params={"update_mask": "is_paused"},
                    json={"is_paused": False}, headers=auth)
        sim.set_fault("dep-1", dag_run_fails=True)
        body: dict[str, Any] = {"dag_run_id": "recorded__canary_fail", "conf": {}}
        if not version.startswith("2"):
            body["logical_date"] = None
        httpx.post(f"{base}/dags/canary_fail/dagRuns", json=body, headers=auth)
        sim.clear_faults("dep-1")
        sim.advance(60)  # past the run: runs take 10 simulated seconds
    elif name == "health_triggerer_stopped":
        sim.set_fault("dep-1", triggerer_unhealthy=True)
    elif name == "health_scheduler_stopped":
        sim.set_fault("dep-1", stale_heartbeat=True)


@pytest.mark.parametrize("version", sorted(RUNTIMES))
def test_every_recorded_answer_has_the_simulators_shape(sim: SimHandle, version: str) -> None:
    _seed(sim, version)
    problems = []
    names = [n for n in ORDER if (RECORDED / version / f"{n}.json").exists()]
    assert len(names) >= 24, "the recordings are missing; run tests/contract/record.py"
    for name in names:
        record = json.loads((RECORDED / version / f"{name}.json").read_text())
        _before(sim, name, version)
        resp = _send(sim, version, record)
        if resp.status_code != record["status"]:
            problems.append(f"{name}: status {resp.status_code}, real {record['status']} "
                            f"({resp.text[:200]})")
            continue
        kind = (resp.headers.get("content-type") or "").split(";")[0]
        if kind != (record["content_type"] or "").split(";")[0]:
            problems.append(f"{name}: content type {kind}, real {record['content_type']}")
        try:
            body = resp.json()
        except ValueError:
            body = resp.text
        problems += [f"{name}: {p}" for p in same_shape(shape(record["body"]), shape(body))]
    assert not problems, "\n".join(problems)


def test_the_recordings_say_where_they_came_from() -> None:
    for version in RUNTIMES:
        source = (RECORDED / version / "SOURCE.md").read_text()
        assert f"Apache Airflow {version}" in source
        for path in (RECORDED / version).glob("*.json"):
            record = json.loads(path.read_text())
            assert record["token"] in ("good", "bad", "none")  # never a token itself
            assert not JWT.search(json.dumps(record))
