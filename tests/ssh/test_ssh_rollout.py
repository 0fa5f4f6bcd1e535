"""The same end-to-end rollout as the local tests, with the repos on SSH runners."""

from __future__ import annotations

import json
import socket

import pytest
from simulators import SimHandle
from support import SampleFleet

pytestmark = pytest.mark.sshd


def runner_block(sshd, known_hosts, name: str = "build-1", port: int | None = None,
                 policy: str = "strict") -> str:
    return (
        f"  {name}:\n    host: 127.0.0.1\n    port: {port or sshd.port}\n    user: {sshd.user}\n"
        f"    key_file: {sshd.key}\n    known_hosts: {policy}\n"
        f"    known_hosts_file: {known_hosts}\n    parallel: 3\n"
    )


def put_repos_on(fleet: SampleFleet, runners: str, assignment: dict[str, str]) -> None:
    """Add the runners and move each named repo onto its runner.

    A path on an SSH runner is the runner's own, used as written (relative paths start in
    the remote login directory), so these are absolute, as real remote inventories are.
    """
    text = fleet.inventory.read_text().replace("\nrepos:\n", f"\nrunners:\n{runners}\nrepos:\n")
    for repo, runner in assignment.items():
        text = text.replace(f"    path: demo-fleet/{repo}\n",
                            f"    path: {fleet.repo(repo)}\n    runner: {runner}\n")
    fleet.inventory.write_text(text)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_wave_1_over_ssh_renders_commits_deploys_and_verifies(
    sample_fleet: SampleFleet, sim: SimHandle, sshd, known_hosts
) -> None:
    fleet = sample_fleet
    put_repos_on(fleet, runner_block(sshd, known_hosts), {r: "build-1" for r in (
        "sales-etl", "marketing-dbt", "finance-reports", "ml-platform", "data-quality",
        "ingest-api", "partner-feeds")})
    fleet.use_simulator(sim.url)
    fleet.seed()
    check = fleet.invoke("runners")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "build-1 (" in check.stdout and "ok" in check.stdout

    out = fleet.invoke("upgrade", "--wave", "1", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["status"] == "passed" and doc["counts"] == {"ok": 8}
    # The work happened on the runner: committed there, deployed from there, once each.
    assert fleet.git("sales-etl", "log", "--format=%s", "-1") == "Upgrade Astro Runtime 12.1.0 → 13.9.0\n"
    # git.mode direct (the sample fleet's): pushed from the runner to the repo's bare origin.
    head = fleet.git("sales-etl", "rev-parse", "HEAD").strip()
    assert fleet.git("sales-etl", "ls-remote", "origin", "main").split()[0] == head
    assert sim.deployment("cm1salesdev0001")["deploys"][-1]["git"]["commitSha"] == head
    assert fleet.git("finance-reports", "status", "--porcelain") == ""
    crlf = (fleet.repo("finance-reports") / "Dockerfile").read_bytes()
    assert b"13.9.0-python-3.12-base AS stage1\r\n" in crlf
    for dep in ("cm1salesdev0001", "cm1mktdev000004", "cm1findev000007"):
        assert sim.deployment(dep)["deploy_count"] == 1
        assert sim.deployment(dep)["runtime_version"] == "13.9.0"


@pytest.mark.slow
def test_an_unreachable_runner_is_found_before_anything_runs_and_can_be_left_out(
    sample_fleet: SampleFleet, sim: SimHandle, sshd, known_hosts
) -> None:
    fleet = sample_fleet
    runners = runner_block(sshd, known_hosts) + runner_block(sshd, known_hosts, "build-2", closed_port())
    put_repos_on(fleet, runners, {"sales-etl": "build-2", "marketing-dbt": "build-1"})
    # No budget and one batch in wave 1 (a failed canary batch of one would stop the wave).
    text = fleet.inventory.read_text().replace("    max_fail_percentage: 0\n", "", 1)
    text = text.replace("    batch: [1, 100%]", "    batch: [100%]", 1)
    fleet.inventory.write_text(text)
    fleet.use_simulator(sim.url)
    fleet.seed()

    check = fleet.invoke("runners")
    assert check.returncode == 2 and "runner build-2" in check.stderr

    both = ("--limit", "sales-etl,marketing-dbt")
    dry = fleet.invoke("upgrade", "--wave", "1", "--dry-run", "--json", *both)
    refused = fleet.invoke("upgrade", "--wave", "1", "--json", *both)
    # The dry run predicts the real run: blocked, exit 7, and the real run writes nothing.
    assert dry.returncode == 7, dry.stdout + dry.stderr
    rows = {d["deployment"]: d for d in json.loads(dry.stdout)["deployments"]}
    assert (rows["sales-etl-dev"]["action"], rows["sales-etl-dev"]["refusal"]) == (
        "blocked", "unreachable")
    assert "build-2" in rows["sales-etl-dev"]["reason"]
    assert rows["marketing-dbt-dev"]["action"] == "upgrade"
    assert refused.returncode == 7, refused.stdout + refused.stderr
    assert "wave 1 cannot start: 1 Deployment(s) blocked (nothing was changed)" in refused.stderr
    assert "sales-etl-dev: " in refused.stderr and "build-2" in refused.stderr
    assert not (fleet.root / ".upgrade" / "journal.db").exists()

    # Left out, the others go on.
    out = fleet.invoke("upgrade", "--wave", "1", "--json", *both, "--limit", "!sales-etl-dev")
    assert out.returncode == 4, out.stdout + out.stderr  # the wave is not finished
    rows = {d["deployment"]: d for d in json.loads(out.stdout)["deployments"]}
    assert rows["marketing-dbt-dev"]["result"] == "ok"
    assert (rows["sales-etl-dev"]["result"], rows["sales-etl-dev"]["deploys"]) == (
        "not finished", 0)


def test_a_changed_host_key_is_refused_never_accepted(
    sample_fleet: SampleFleet, sim: SimHandle, sshd, tmp_path
) -> None:
    fleet = sample_fleet
    wrong = tmp_path / "known_hosts"
    # A key the server does not have, recorded for its address: a changed host key.
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    wrong.write_text(f"[127.0.0.1]:{sshd.port} {other}\n")
    put_repos_on(fleet, runner_block(sshd, wrong, policy="accept-new"), {"sales-etl": "build-1"})
    fleet.use_simulator(sim.url)
    fleet.seed()
    out = fleet.invoke("upgrade", "--wave", "1", "--json", "--limit", "sales-etl")
    # Found by the preflight, before anything is written: the runner cannot be trusted.
    assert out.returncode == 7, out.stdout + out.stderr
    assert "sales-etl-dev: " in out.stderr and "host key" in out.stderr.lower()
    assert wrong.read_text() == f"[127.0.0.1]:{sshd.port} {other}\n"  # not overwritten
    assert not (fleet.root / ".upgrade" / "journal.db").exists()
