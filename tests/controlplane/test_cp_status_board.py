"""Status reads batched per workspace, through the production client against the
simulator (which counts what it serves: ``GET /_sim/requests``).

Sources (../shared/reference/astro-cli.md §9.2–9.3, forges-and-astro-edges.md "Astro
platform API"; astro-cli's generated client ``astro-client-v1/api.gen.go``):
``GET /organizations/{org}/deployments?workspaceIds=…&offset&limit`` answers
``{deployments: [Deployment], limit, offset, totalCount}``, the same ``Deployment`` object as
``GET …/deployments/{id}`` (status, runtimeVersion, webServerAirflowApiUrl, …);
``workspaceIds`` repeats (form, explode). Rate limits are per token (GET 25 requests/s,
"Astro API overview"): poll lists per workspace rather than one request per Deployment.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from simulators import SimHandle

from tests.controlplane.test_cp_platform import DEPLOYMENT, ORG, TOKEN
from tests.controlplane.test_cp_rate_limits import LIST, SimulatedTime, grown, reader
from tests.verify.helpers import TARGET, config, deployment
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.controlplane.platform import PlatformReader
from upgrade.controlplane.status_board import StatusBoard
from upgrade.errors import DeploymentNotFound, PlatformError
from upgrade.model.catalog import load_catalog
from upgrade.model.versions import parse_version
from upgrade.run.verify.verify import run_checks

GET = "platform: get Deployment"


def plane(sim: SimHandle, tick: float, retries: int = 0) -> ControlPlane:
    return ControlPlane(sim.control_plane(status_via="api", status_tick=tick,
                                          http_retries=retries, http_timeout=5.0))


def verify_all(cp: ControlPlane, deps: list, deployed_at: datetime, **cfg) -> list:
    """Verify every Deployment at once, one thread each, as a wave's workers do."""
    catalog, verdicts = load_catalog(), {}

    def one(dep) -> None:
        verdicts[dep.id] = run_checks(
            cp, config("version", "healthy", **cfg), dep, parse_version(TARGET), catalog,
            baseline=None, host=None, repo_dir=None, stop=threading.Event(),
            deployed_at=deployed_at)

    threads = [threading.Thread(target=one, args=(d,)) for d in deps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [verdicts[d.id] for d in deps]


def test_a_wave_of_verifications_costs_one_list_call_per_workspace(sim: SimHandle) -> None:
    deps = [deployment(f"dep-{n}", "ws-1") for n in range(12)]
    deps += [deployment(f"other-{n}", "ws-2") for n in range(4)]
    for dep in deps:
        sim.add_deployment(dep.id, dep.name, workspace_id=dep.workspace_id,
                           runtime_version=TARGET, status="HEALTHY")
    before = sim.requests()
    deployed_at = datetime.now(UTC)
    # A tick longer than the test: every look of the wave may share one list call.
    with plane(sim, tick=60.0) as cp:
        verdicts = verify_all(cp, deps, deployed_at, poll=60.0)
    assert all(v.ok for v in verdicts), [v.summary for v in verdicts if not v.ok]
    # On main: 16 single-Deployment reads. Now one list per workspace, none per Deployment.
    assert grown(sim, before) == {LIST: 2}


def test_a_rate_limited_list_is_waited_out_once_for_the_whole_wave(sim: SimHandle) -> None:
    deps = [deployment(f"dep-{n}", "ws-1") for n in range(8)]
    for dep in deps:
        sim.add_deployment(dep.id, dep.name, runtime_version=TARGET, status="HEALTHY")
    sim.throttle(1, retry_after=0.2, kind=LIST)
    before = sim.requests()
    deployed_at = datetime.now(UTC)
    with plane(sim, tick=60.0, retries=1) as cp:
        verdicts = verify_all(cp, deps, deployed_at, poll=60.0)
    assert all(v.ok for v in verdicts), [v.summary for v in verdicts if not v.ok]
    # The 429 and the retry after it, for all eight looks; nobody asked on their own.
    assert grown(sim, before) == {LIST: 2}


def test_a_list_from_before_the_deploy_never_passes_verification(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "one", runtime_version=TARGET, status="HEALTHY")
    # The default tick: the earlier list is (most likely) still within it when the look asks.
    with plane(sim, tick=0.5) as cp:
        # Another verification of the workspace listed it: HEALTHY on the target.
        early = cp.read_status("dep-1", "ws-1", newer_than=datetime.now(UTC) - timedelta(1),
                               poll=60.0)
        assert early.info.is_healthy
        # Then the deploy: it leaves the Deployment UNHEALTHY, and ends after that list.
        sim.update_deployment("dep-1", status="UNHEALTHY")
        deployed_at = datetime.now(UTC)
        before = sim.requests()
        [verdict] = verify_all(cp, [deployment("dep-1")], deployed_at, poll=60.0,
                               timeout=2.0)
    assert not verdict.ok
    assert "UNHEALTHY" in verdict.results[0].message, verdict.summary
    # The list within the tick was not used: every look asked Astro again, by list.
    asked = grown(sim, before)
    assert set(asked) == {LIST} and asked[LIST] >= 1


def test_only_the_deploys_end_decides_and_not_the_lists_age(sim: SimHandle) -> None:
    # The same as above on a simulated clock: the earlier list is well within the tick,
    # and is still not used for a look after the deploy.
    sim.add_deployment("dep-1", "one", runtime_version=TARGET, status="HEALTHY")
    time = SimulatedTime()
    board = StatusBoard(reader(sim, time), "ws-1", clock=time.clock)
    assert board.read("dep-1", newer_than=datetime.now(UTC) - timedelta(1),
                      tick=1.0).info.is_healthy
    sim.update_deployment("dep-1", status="UNHEALTHY")
    deployed_at = datetime.now(UTC)
    time.now += 1.0  # the list was sent one tick before this look asks: fresh by age
    after = board.read("dep-1", newer_than=deployed_at, tick=1.0)
    assert after.info.status == "UNHEALTHY" and after.as_of > deployed_at


def test_a_list_within_the_tick_and_after_the_deploy_is_shared(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "one", runtime_version=TARGET)
    sim.add_deployment("dep-2", "two", runtime_version="12.4.0")
    time = SimulatedTime()
    board = StatusBoard(reader(sim, time), "ws-1", clock=time.clock)
    deployed_at = datetime.now(UTC)
    before = sim.requests()
    first = board.read("dep-1", newer_than=deployed_at, tick=60.0)
    second = board.read("dep-2", newer_than=deployed_at, tick=60.0)
    assert (first.info.runtime_version, second.info.runtime_version) == (TARGET, "12.4.0")
    assert first.as_of == second.as_of > deployed_at
    # dep-1's next look, a tick later, wants Astro after its last answer: a new list call.
    time.now += 60.0
    again = board.read("dep-1", newer_than=first.as_of, tick=60.0)
    assert again.as_of > first.as_of
    assert grown(sim, before) == {LIST: 2}


def test_deployments_the_list_lacks_are_read_one_by_one(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "one")
    sim.add_deployment("dep-2", "two", workspace_id="ws-2")
    sim.add_deployment("gone", "deleted")
    sim.set_fault("gone", missing=True)
    board = StatusBoard(reader(sim, SimulatedTime()), "ws-1")
    since = datetime.now(UTC)
    before = sim.requests()
    assert board.read("dep-1", newer_than=since, tick=60.0).info.name == "one"
    with pytest.raises(DeploymentNotFound, match="not in workspace ws-1.*in ws-2"):
        board.read("dep-2", newer_than=since, tick=60.0)
    with pytest.raises(DeploymentNotFound, match="404"):
        board.read("gone", newer_than=since, tick=60.0)
    assert grown(sim, before) == {LIST: 1, GET: 2}


def test_a_listed_deployment_without_a_field_verification_reads_is_read_alone(
        http_server) -> None:
    # A real HTTP server with the documented shapes, less one field of one listed item.
    listed = [{**DEPLOYMENT, "id": "cldep0001"},
              {k: v for k, v in {**DEPLOYMENT, "id": "cldep0002"}.items() if k != "status"}]
    http_server.script(f"/v1/organizations/{ORG}/deployments",
                       ("json", 200, {"deployments": listed, "totalCount": 2, "offset": 0,
                                      "limit": 1000}))
    http_server.script(f"/v1/organizations/{ORG}/deployments/cldep0002",
                       ("json", 200, {**DEPLOYMENT, "id": "cldep0002", "status": "DEPLOYING"}))
    api = PlatformReader(f"http://127.0.0.1:{http_server.port}/v1", TOKEN, timeout=2.0)
    with api:
        board = StatusBoard(api, "clws0001")
        since = datetime.now(UTC)
        assert board.read("cldep0001", newer_than=since, tick=60.0).info.status == "HEALTHY"
        assert board.read("cldep0002", newer_than=since, tick=60.0).info.status == "DEPLOYING"
    assert [s.path.rsplit("/", 1)[-1] for s in http_server.seen] == ["deployments",
                                                                     "cldep0002"]


def test_closing_the_control_plane_ends_its_list_threads(sim: SimHandle) -> None:
    sim.add_deployment("dep-1", "one")
    # Other tests in this process may have left control planes open: count only ours.
    before = set(threading.enumerate())
    cp = plane(sim, tick=0.5)
    cp.read_status("dep-1", "ws-1", newer_than=datetime.now(UTC), poll=1.0)
    listers = [t for t in set(threading.enumerate()) - before if t.name == "status-list-ws-1"]
    assert len(listers) == 1
    cp.close()
    listers[0].join(timeout=30)
    assert not listers[0].is_alive()
    with pytest.raises(PlatformError, match="after the control plane was closed"):
        cp.read_status("dep-1", "ws-1", newer_than=datetime.now(UTC), poll=1.0)
