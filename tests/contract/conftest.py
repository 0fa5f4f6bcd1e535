"""Real Apache Airflow 2.10.5 and 3.0.6 for the contract tests (``make test-airflow``).

One server per version per pytest session (tests/contract/server.py), started on first use
and stopped by pid at the end; each version's tests stay on one xdist worker
(``--dist loadgroup``, see :func:`pytest_xdist_make_scheduler`), so a worker starts one
Airflow and the two servers run side by side. The venvs are installed by
``scripts/airflow-test-server.sh`` (cached); a missing one is installed here first.

pytest-timeout times each test's body only (``func_only``): the first test on a worker also
starts its Airflow, which has its own limits (server.py: ``COMMAND_TIMEOUT``,
``START_TIMEOUT``, ``PARSE_TIMEOUT``) since a start-up on a loaded machine takes minutes.

Every test is marked ``airflow``: ``make test`` leaves them out, ``make test-airflow``
runs only them. The install and start times of each server are printed at the end.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from contract.server import VERSIONS, AirflowServer, running

BROKEN = ("broken_syntax.py", "broken_import.py")
# s, for a test's body: the waits inside a test (a component restarted, a DAG run, a file
# parsed) are bounded on their own; this only ends a test that hangs.
TEST_TIMEOUT = 600


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "contract" in item.path.parts:
            item.add_marker(pytest.mark.airflow)
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT, func_only=True))


@pytest.hookimpl(optionalhook=True)  # without xdist, there is nothing to schedule
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup``: all the tests of one Airflow version are one unit of work.

    xdist's own loadgroup cannot group under pytest 9.2 (it appends the group to the node
    id, which pytest no longer lets a plugin change: pytest-xdist issue 1386), and then
    both workers started both Airflows. The version is in each test's id instead.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class OneAirflowPerWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            ids = re.search(r"\[([^\]]*)\]$", nodeid)
            parts = ids.group(1).split("-") if ids else []
            return next((f"airflow-{v}" for v in VERSIONS if v in parts), nodeid)

    return OneAirflowPerWorker(config, log)


@pytest.fixture(scope="session", params=VERSIONS, ids=VERSIONS)
def airflow(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServer]:
    """A running real Airflow whose DAGs are parsed (two of them broken)."""
    version = request.param
    with running(version, tmp_path_factory.mktemp(f"airflow-{version}")) as server:
        server.wait_for_import_errors({str(server.dags / name) for name in BROKEN})
        for dag in ("canary_ok", "canary_fail"):
            server.wait_for_dag(dag)
        yield server


@pytest.fixture(autouse=True)
def _timings(request: pytest.FixtureRequest) -> None:
    """Attach the server's install and start times to each test's report (for the summary)."""
    if "airflow" in request.fixturenames:
        server: AirflowServer = request.getfixturevalue("airflow")
        request.node.user_properties.append(("airflow", (server.version, dict(server.timings))))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    seen: dict[str, dict[str, float]] = {}
    results: dict[str, list[str]] = {}
    notes: list[str] = []
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            for key, value in getattr(report, "user_properties", []):
                if key == "note" and report.when == "call":
                    notes.append(f"  {report.nodeid.rsplit('[', 1)[-1].rstrip(']')}: {value}")
                if key == "airflow":
                    version, timings = value
                    seen.setdefault(version, timings)
                    if report.when == "call" or outcome != "passed":
                        results.setdefault(version, []).append(f"{outcome:7} {report.nodeid}")
    if not seen:
        return
    terminalreporter.section("real Airflow servers")
    for version, timings in sorted(seen.items()):
        terminalreporter.write_line(
            f"Airflow {version}: install {timings.get('install', 0):.1f} s (cached venv when "
            f"~0), database {timings.get('prepare', 0):.1f} s, serving after "
            f"{timings.get('start', 0):.1f} s")
    for version, lines in sorted(results.items()):
        for line in sorted(set(lines)):
            terminalreporter.write_line(f"  {version}: {line}")
    for note in notes:
        terminalreporter.write_line(note)
