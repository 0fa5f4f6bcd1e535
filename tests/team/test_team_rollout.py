"""Team state on PostgreSQL, end to end with the real `invoke` command: two working copies
(two laptops, or a laptop and a CI runner) share one journal and one run lock.

Every fleet here is generated (tests/rollout/helpers.py) against the test's simulator,
with its journal in a schema of its own in a real PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest
from pg_server import PostgresServer, script, start_server
from simulators import SimHandle

from tests.cli.test_json_contracts import document
from tests.git_modes.helpers import make_git_fleet
from tests.rollout.facts import incomplete_facts
from tests.rollout.helpers import TARGET, deploy_children, kill_group, make_fleet, wait_for
from tests.team.helpers import events, journal, records, states, use_postgres, working_copy
from upgrade.journal.records import os_user

HOLDER = f"by {os_user()} on {socket.gethostname()}, pid "


def slow_builds(sim: SimHandle, fleet, milliseconds: int) -> None:  # type: ignore[no-untyped-def]
    for dep in fleet.deps:
        sim.set_fault(dep.id, deploy_extra_seconds=milliseconds)


def test_two_orchestrators_racing_for_one_rollout(tmp_path: Path, sim: SimHandle,
                                                  pg_url: str) -> None:
    fleet = make_fleet(tmp_path / "a", sim, repos=4, wave={"parallel": 4})
    settings = use_postgres(fleet, pg_url)
    other = working_copy(fleet, tmp_path / "b" / "fleet")
    slow_builds(sim, fleet, 1500)  # the winner holds the lock for seconds, not milliseconds

    racers = [fleet.start("upgrade", "--wave", "1"), other.start("upgrade", "--wave", "1")]
    outcomes = [(proc, *proc.communicate(timeout=120)) for proc in racers]

    codes = sorted(proc.returncode for proc, _, _ in outcomes)
    assert codes == [0, 6], [(p.returncode, out, err) for p, out, err in outcomes]
    (winner, _, _), = [o for o in outcomes if o[0].returncode == 0]
    (_, _, refused), = [o for o in outcomes if o[0].returncode == 6]
    assert f"another run holds the journal lock: astro-fleet upgrade --wave 1 {HOLDER}{winner.pid}," \
        in refused
    # One run did the work: each Deployment deployed once, one rollout, every step once.
    assert fleet.deploy_counts() == {d.name: 1 for d in fleet.deps}
    assert {r.state for r in records(settings).values()} == {"verified"}
    assert {r.deploys for r in records(settings).values()} == {1}
    assert len(events(settings, "rollout_started")) == 1


def test_kill_9_of_the_holder_and_take_over_from_another_working_copy(
        tmp_path: Path, sim: SimHandle, pg_url: str) -> None:
    fleet = make_fleet(tmp_path / "a", sim, repos=2, wave={"parallel": 2})
    settings = use_postgres(fleet, pg_url)
    other = working_copy(fleet, tmp_path / "b" / "fleet")
    stuck = fleet.dep("r00-d0")
    sim.set_fault(stuck.id, deploy_extra_seconds=20_000)  # a 20 s build: surely caught in it
    proc = fleet.start("upgrade", "--wave", "1")
    try:
        children = wait_for(
            lambda: states(settings).get("r00-d0") == "deploying"
            and states(settings).get("r01-d0") == "verified"
            and deploy_children(proc.pid, stuck.id),
            what="r00-d0 deploying, r01-d0 verified")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    for child in children:  # the orphaned `astro deploy` dies with its machine
        kill_group(child)
    sim.clear_faults(stuck.id)

    again = other.invoke("upgrade", "--wave", "1")

    assert again.returncode == 0, again.stdout + again.stderr
    note = f"note: took over the journal lock left by astro-fleet upgrade --wave 1 {HOLDER}{proc.pid},"
    assert note in again.stderr and "its database session ended" in again.stderr
    taken = events(settings, "lock_taken_over")
    assert len(taken) == 1 and (taken[0].message or "") in again.stderr
    rows = records(settings)
    assert {r.state for r in rows.values()} == {"verified"}
    # The killed deploy never reached Astro; the other working copy deployed it once.
    assert rows["r00-d0"].deploys == 2 and rows["r01-d0"].deploys == 1
    with journal(settings) as j:
        assert incomplete_facts(j, {}) == {}
    assert fleet.deploy_counts() == {"r00-d0": 1, "r01-d0": 1}
    assert sim.deployment(stuck.id)["runtime_version"] == TARGET


@pytest.fixture
def own_postgres(tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> PostgresServer:
    """A cluster of this test's own: it is stopped and started again mid-test."""
    server = start_server(tmp_path_factory.mktemp("postgres-outage"))
    monkeypatch.setenv("PGPASSWORD", server.password)
    yield server  # type: ignore[misc]
    script("stop", str(server.dir), timeout=120)


def test_postgresql_stopped_mid_wave_then_restarted_and_the_same_command_resumes(
        tmp_path: Path, sim: SimHandle, own_postgres: PostgresServer) -> None:
    fleet = make_fleet(tmp_path, sim, repos=4, wave={"parallel": 2}, runner_parallel=2)
    settings = use_postgres(fleet, own_postgres.url(own_postgres.new_schema()))
    slow_builds(sim, fleet, 2000)
    first, rest = [d.name for d in fleet.deps[:2]], [d.name for d in fleet.deps[2:]]
    proc = fleet.start("upgrade", "--wave", "1")
    try:
        wait_for(lambda: all(states(settings).get(n) == "deploying" for n in first),
                 what="two deploys in flight")
        own_postgres.halt()  # the database goes away under two running deploys
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()

    assert proc.returncode == 7, stdout + stderr
    assert "the journal's database is unreachable: no new step starts" in stderr
    assert "failed or cannot be reached" in stderr and "run the same command again" in stderr
    # In flight: both deploys finished at Astro before the run stopped; nothing else started.
    for name in first:
        assert sim.deployment(fleet.dep(name).id)["runtime_version"] == TARGET
    assert {n: c for n, c in fleet.attempts().items() if n in rest} == {n: 0 for n in rest}

    own_postgres.restart()
    # The run could not say why it stopped (the database was gone); its lock went with its
    # session, so the wave reads as stopped, not running.
    [rollout] = document(fleet.invoke("status", "--json"), "status")["rollouts"]
    [stopped] = rollout["waves"]
    assert stopped["status"] == "stopped", stopped
    # Nothing is recorded as done that was not committed: the journal still says deploying.
    assert {n: s for n, s in states(settings).items()} == {
        **{n: "deploying" for n in first}, **{n: "pending" for n in rest}}

    for dep in fleet.deps:
        sim.clear_faults(dep.id)
    again = fleet.invoke("upgrade", "--wave", "1")

    assert again.returncode == 0, again.stdout + again.stderr
    assert "its database session ended" in again.stderr  # the lost run left its name
    rows = records(settings)
    assert {r.state for r in rows.values()} == {"verified"}
    # Astro was asked before deploying again: the two in flight were already at target.
    assert fleet.deploy_counts() == {d.name: 1 for d in fleet.deps}
    assert {n: r.deploys for n, r in rows.items()} == {d.name: 1 for d in fleet.deps}
    with journal(settings) as j:
        assert incomplete_facts(j, {}) == {}


@pytest.mark.slow
def test_status_and_unlock_read_the_team_journal(tmp_path: Path, sim: SimHandle,
                                                 pg_url: str) -> None:
    fleet = make_fleet(tmp_path, sim, repos=1)
    use_postgres(fleet, pg_url)
    empty = fleet.invoke("status")
    assert empty.returncode == 0, empty.stderr
    assert "no journal yet (postgresql://upgrade@127.0.0.1:" in empty.stdout
    assert fleet.invoke("upgrade", "--wave", "1").returncode == 0
    shown = fleet.invoke("status")
    assert shown.returncode == 0 and "rollout 1" in shown.stdout.lower()
    unlocked = fleet.invoke("unlock")
    assert unlocked.returncode == 0 and "the journal was not locked" in unlocked.stdout


@pytest.mark.slow
def test_a_laptop_journal_moves_to_postgresql_and_the_team_goes_on(
        tmp_path: Path, sim: SimHandle, pg_url: str) -> None:
    fleet = make_fleet(tmp_path / "laptop", sim, repos=2)  # journal: .upgrade (SQLite)
    assert fleet.invoke("upgrade", "--wave", "1").returncode == 0
    exported = fleet.invoke("journal.export", "--file", "journal.jsonl")
    assert exported.returncode == 0, exported.stderr
    assert "exported 1 rollouts, 1 waves, 2 deployments," in exported.stdout

    settings = use_postgres(fleet, pg_url)
    imported = fleet.invoke("journal.import", "--file", "journal.jsonl")
    assert imported.returncode == 0, imported.stderr
    assert "imported 1 rollouts, 1 waves, 2 deployments," in imported.stdout
    twice = fleet.invoke("journal.import", "--file", "journal.jsonl")
    assert twice.returncode == 2 and "is not empty (1 rollouts" in twice.stderr

    ci = working_copy(fleet, tmp_path / "ci" / "fleet")
    shown = ci.invoke("status", "--json")
    assert shown.returncode == 0, shown.stderr
    # The high-water marks came along: verify-all on the CI runner sees no drift.
    checked = ci.invoke("verify-all")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert ci.invoke("upgrade", "--wave", "1").returncode == 0
    assert fleet.deploy_counts() == {d.name: 1 for d in fleet.deps}  # nothing deployed again
    assert {r.state for r in records(settings).values()} == {"verified"}


@pytest.mark.slow
def test_postgresql_stopped_mid_wave_in_direct_mode_recovers_every_fact(
        tmp_path: Path, sim: SimHandle, own_postgres: PostgresServer) -> None:
    fleet = make_git_fleet(tmp_path, sim, None, {f"r{r:02d}": {"mode": "direct"} for r in range(3)},
                           wave={"parallel": 2})
    settings = use_postgres(fleet, own_postgres.url(own_postgres.new_schema()))
    slow_builds(sim, fleet, 2000)
    first = [d.name for d in fleet.deps[:2]]
    proc = fleet.start("upgrade", "--wave", "1")
    try:
        wait_for(lambda: all(states(settings).get(n) == "deploying" for n in first),
                 what="two deploys in flight")
        own_postgres.halt()  # their deploys finish at Astro while nothing can be recorded
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 7, stdout + stderr
    for name in first:
        assert fleet.sim_dep(name)["runtime_version"] == TARGET
    own_postgres.restart()
    for dep in fleet.deps:
        sim.clear_faults(dep.id)

    again = fleet.invoke("upgrade", "--wave", "1")

    assert again.returncode == 0, again.stdout + again.stderr
    assert fleet.deploy_counts() == {d.name: 1 for d in fleet.deps}
    rows = records(settings)
    for dep in fleet.deps:  # each commit read back from Astro's deploy record, or deployed now
        assert rows[dep.name].deployed_commit == fleet.remote_rev(dep.repo), dep.name
    with journal(settings) as j:
        assert incomplete_facts(j, {repo: "direct" for repo in fleet.remotes}) == {}
        recovered = [e for e in j.events(None, kind="transition")
                     if e.to_state == "deployed" and "deploy record" in (e.message or "")]
    assert len(recovered) == len(first)
