"""Record the Airflow API's answers from a real Airflow into tests/controlplane/recorded/airflow/.

    .venv/bin/python tests/contract/record.py 2.10.5 3.0.6

Starts each version (tests/contract/server.py), sends the requests of :data:`REQUESTS` and
writes each answer to ``recorded/airflow/<version>/<name>.json`` as ``{"request", "status",
"content_type", "body"}``. The client tests parse these; the simulator's fidelity test
(tests/sim/test_sim_airflow_fidelity.py) answers the same requests and must give the same
shapes. Tokens are never written (the requests name only which token was sent).
"""

from __future__ import annotations

import json
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from server import ROOT, AirflowServer, running

OUT = ROOT / "tests" / "controlplane" / "recorded" / "airflow"
RUN_ID = "recorded__canary_ok"
FAILED_RUN_ID = "recorded__canary_fail"


def _send(server: AirflowServer, name: str, method: str, path: str, *, token: str = "good",
          params: dict[str, Any] | None = None, body: Any = None) -> httpx.Response:
    headers = {}
    if token == "good":
        headers["Authorization"] = f"Bearer {server.token}"
    elif token == "bad":
        headers["Authorization"] = "Bearer not-a-valid-token"
    resp = httpx.request(method, server.base + path, params=params, json=body, headers=headers,
                         timeout=30)
    shown = path + ("?" + str(httpx.QueryParams(params)) if params else "")
    try:
        doc: Any = resp.json()
    except ValueError:
        doc = resp.text
    record = {
        "request": f"{method} /api/v{1 if server.major == 2 else 2}{shown}",
        "token": token,
        "json": body,
        "status": resp.status_code,
        "content_type": resp.headers.get("content-type"),
        "body": doc,
    }
    target = OUT / server.version / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"  {name}: {resp.status_code}")
    return resp


def _wait_run(server: AirflowServer, dag_id: str, run_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = server.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json().get("state")
        if state in ("success", "failed"):
            return
        time.sleep(1)
    raise RuntimeError(f"run {run_id} did not finish")


def record(server: AirflowServer) -> None:
    """Every recorded exchange, in an order that builds the state each one needs."""
    v2 = server.major == 3
    health = "/monitor/health" if v2 else "/health"
    broken = {str(server.dags / n) for n in ("broken_syntax.py", "broken_import.py")}
    server.wait_for_import_errors(broken)
    for dag in ("canary_ok", "canary_fail"):
        server.wait_for_dag(dag)
    send: Callable[..., httpx.Response] = lambda *a, **k: _send(server, *a, **k)  # noqa: E731
    send("health", "GET", health, token="none")
    send("health_bad_token", "GET", health, token="bad")
    send("version", "GET", "/version", token="none")
    send("import_errors", "GET", "/importErrors",
         params={"limit": 100, "offset": 0, "order_by": "import_error_id"})
    send("import_errors_default_page", "GET", "/importErrors")
    send("import_errors_page", "GET", "/importErrors",
         params={"limit": 1, "offset": 1, "order_by": "import_error_id"})
    send("import_errors_limit_0", "GET", "/importErrors", params={"limit": 0})
    send("import_errors_bad_order", "GET", "/importErrors", params={"order_by": "bogus"})
    send("import_errors_no_token", "GET", "/importErrors", token="none")
    send("import_errors_bad_token", "GET", "/importErrors", token="bad")
    send("dag", "GET", "/dags/canary_ok")
    send("dag_not_found", "GET", "/dags/no_such_dag")
    send("dag_no_token", "GET", "/dags/canary_ok", token="none")
    send("dag_unpause", "PATCH", "/dags/canary_ok", params={"update_mask": "is_paused"},
         body={"is_paused": False})
    server.api("PATCH", "/dags/canary_fail", params={"update_mask": "is_paused"},
               json={"is_paused": False})
    trigger: dict[str, Any] = {"dag_run_id": RUN_ID, "conf": {"canary": True}}
    if v2:
        send("dag_run_trigger_without_logical_date", "POST", "/dags/canary_ok/dagRuns",
             body={"dag_run_id": "recorded__rejected"})
        trigger["logical_date"] = None
    send("dag_run_trigger", "POST", "/dags/canary_ok/dagRuns", body=trigger)
    send("dag_run_conflict", "POST", "/dags/canary_ok/dagRuns", body=trigger)
    send("dag_run_trigger_not_found", "POST", "/dags/no_such_dag/dagRuns",
         body={**trigger, "dag_run_id": "recorded__nowhere"})
    send("dag_run_queued", "GET", f"/dags/canary_ok/dagRuns/{RUN_ID}")
    failing = {**trigger, "dag_run_id": FAILED_RUN_ID, "conf": {}}
    server.api("POST", "/dags/canary_fail/dagRuns", json=failing)
    _wait_run(server, "canary_ok", RUN_ID)
    _wait_run(server, "canary_fail", FAILED_RUN_ID)
    send("dag_run_success", "GET", f"/dags/canary_ok/dagRuns/{RUN_ID}")
    send("dag_run_failed", "GET", f"/dags/canary_fail/dagRuns/{FAILED_RUN_ID}")
    send("task_instances_failed", "GET", f"/dags/canary_fail/dagRuns/{FAILED_RUN_ID}/taskInstances",
         params={"limit": 100, "offset": 0})
    send("dag_run_not_found", "GET", "/dags/canary_ok/dagRuns/no_such_run")
    send("dag_pause", "PATCH", "/dags/canary_ok", params={"update_mask": "is_paused"},
         body={"is_paused": True})
    # A stopped triggerer and a stopped scheduler, as /health reports them afterwards.
    server.kill("triggerer", signal.SIGTERM)
    server.wait_exit("triggerer")
    server.wait_for(lambda h: h["triggerer"]["status"] == "unhealthy", 90, "triggerer unhealthy")
    send("health_triggerer_stopped", "GET", health, token="none")
    server.kill("scheduler", signal.SIGTERM)
    server.wait_exit("scheduler")
    server.wait_for(lambda h: h["scheduler"]["status"] == "unhealthy", 90, "scheduler unhealthy")
    send("health_scheduler_stopped", "GET", health, token="none")


def main(versions: list[str]) -> int:
    """Record every version given (default: all)."""
    from server import VERSIONS

    for version in versions or VERSIONS:
        print(f"Airflow {version}:")
        with running(version, Path(tempfile.mkdtemp(prefix=f"record-{version}-"))) as server:
            record(server)
        readme = OUT / version / "SOURCE.md"
        readme.write_text(
            f"Recorded from a real Apache Airflow {version} (pip, SQLite, 127.0.0.1) by\n"
            f"`tests/contract/record.py {version}` on {time.strftime('%Y-%m-%d')}; the DAGs are\n"
            "tests/contract/dags plus the two broken files of tests/contract/server.py. `token`\n"
            "says which token was sent (good, bad, none), never the token itself.\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
