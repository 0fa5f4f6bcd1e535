"""The soak analysis end to end, through the real commands: a wave whose canary's DAG runs
start failing after its upgrade closes the gate of the next wave, naming the DAG and its
figures; after the fix the analysis is retried and passes, and the next wave starts.

The simulator serves each Deployment's scripted history (``demo.sample_fleet``: a run a
simulated minute, two simulated hours of it before the seed) and fails one Deployment's
scheduled runs from its upgrade on (fault ``scheduled_runs_fail``) until the fix clears
it. The analysis lasts 2 s (``interval: 1s, count: 2``); the commands wait for it
themselves (``analyze --watch``), the test never sleeps.
"""

from __future__ import annotations

import pytest
from simulators import SimHandle
from support import SAMPLE_ANALYSIS, SampleFleet

from upgrade.journal.store import Journal

BROKEN = "cm1salesdev0001"  # sales-etl-dev: its provider breaks on the new Runtime
ANALYSIS = "        - {name: analysis, interval: 1s, count: 2, min_runs: 3}\n"


def two_waves(fleet: SampleFleet, sim: SimHandle, *, wave2_soak: str = "1s") -> None:
    text = fleet.inventory.read_text()
    text = text.replace("soak: 10s", "soak: 1s", 1).replace("soak: 10s", f"soak: {wave2_soak}")
    # The sample's own analysis (6 s), made 2 s.
    lines = [ANALYSIS if line.startswith(SAMPLE_ANALYSIS) else line
             for line in text.splitlines(keepends=True)]
    text = "".join(lines)
    assert ANALYSIS in text
    text = text[:text.index("\n  finance-reports:")] + "\n"  # two repos: quick
    fleet.inventory.write_text(text)
    fleet.use_simulator(sim.url)
    fleet.seed()


@pytest.mark.slow
def test_a_regression_closes_the_gate_until_the_fix_passes(sample_fleet: SampleFleet,
                                                           sim: SimHandle) -> None:
    fleet = sample_fleet
    two_waves(fleet, sim)
    sim.set_fault(BROKEN, scheduled_runs_fail=True)

    one = fleet.invoke("upgrade", "--wave", "1")
    assert one.returncode == 0, one.stdout + one.stderr

    watched = fleet.invoke("analyze", "--wave", "1", "--watch")
    assert watched.returncode == 4, watched.stdout + watched.stderr
    assert "sales-etl-dev (wave 1): analysis fail" in watched.stdout
    assert "DAG sales_etl_daily: succeeded before" in watched.stdout

    refused = fleet.invoke("upgrade", "--wave", "2")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    said = " ".join(refused.stderr.split())
    assert "sales-etl-dev (wave 1): analysis fail" in said
    assert "DAG sales_etl_daily: succeeded before" in said and "before 0/" in said
    assert "failed task(s): load" in said
    assert 'astro-fleet analyze --wave 1 --accept --reason "..."' in said
    assert 'astro-fleet analyze --wave 1 --retry --reason "..."' in said
    # One decision: the dry run and the plan say the same, from the journal.
    for preview in (("upgrade", "--wave", "2", "--dry-run"), ("plan", "--wave", "2")):
        dry = fleet.invoke(*preview)
        assert dry.returncode == 3, dry.stdout + dry.stderr
        assert "DAG sales_etl_daily: succeeded before" in " ".join((dry.stdout + dry.stderr
                                                                    ).split())
    # A refusal changes nothing: no wave 2 in the journal.
    with Journal.open(fleet.root / ".upgrade" / "journal.db") as journal:
        rollout = journal.active_rollout()
        assert rollout is not None
        assert journal.wave(rollout.id, 2) is None

    # The team fixes the DAG; the analysis starts again from now, and passes.
    sim.set_fault(BROKEN, scheduled_runs_fail=None)
    retried = fleet.invoke("analyze", "--wave", "1", "--retry", "--reason", "pinned the provider")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "sales-etl-dev: analysis restarted from now" in retried.stdout
    again = fleet.invoke("analyze", "--wave", "1", "--watch")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "fail" not in again.stdout.split("soak analysis", 1)[1].split("\n", 3)[3]

    two = fleet.invoke("upgrade", "--wave", "2")
    assert two.returncode == 0, two.stdout + two.stderr

    assert "gate: soak analysis of sales-etl-dev (wave 1): analysis pass" in two.stdout
    wave2 = (fleet.root / ".upgrade" / "reports" / "rollout-1-wave-2.md").read_text()
    assert "## Soak analysis of earlier waves" in wave2
    assert "| sales-etl-dev | 1 | pass |" in wave2
    status = fleet.invoke("status")
    assert "soak analysis" in status.stdout and "sales-etl-dev" in status.stdout
    html = fleet.invoke("report", "--offline")
    assert html.returncode == 0, html.stderr
    page = (fleet.root / ".upgrade" / "reports" / "rollout-1.html").read_text()
    assert "<h3>Soak analysis</h3>" in page
    assert "A✗" in page and "analysis failed: sales-etl-dev (wave 1)" in page
    assert "A↻" in page and "pinned the provider" in page
    with Journal.open(fleet.root / ".upgrade" / "journal.db") as journal:
        kinds = [e.kind for e in journal.events(rollout.id)
                 if e.deployment_id == BROKEN and e.kind.startswith("analysis")]
        assert kinds[0] == "analysis" and "analysis_retry" in kinds
        retry = next(e for e in journal.events(rollout.id, kind="analysis_retry"))
        assert (retry.data or {})["reason"] == "pinned the provider"
        measured = [e.data or {} for e in journal.events(rollout.id, kind="analysis")
                    if e.deployment_id == BROKEN]
        # What a measurement costs (docs/verification.md): the status read, one page of
        # runs, one of DAGs; and one more to name the failing DAG's failed task.
        assert (measured[0]["status"], measured[0]["requests"]) == ("fail", 4)
        assert (measured[-1]["status"], measured[-1]["requests"]) == ("pass", 3)


@pytest.mark.slow
def test_too_few_runs_is_inconclusive_and_blocks_until_accepted(sample_fleet: SampleFleet,
                                                                sim: SimHandle) -> None:
    fleet = sample_fleet
    two_waves(fleet, sim)
    # sales-etl-dev's DAG is paused all along: no runs before; after, only the canary's.
    doc = sim.deployment(BROKEN)
    sim.update_deployment(BROKEN, dags=["fleet_canary", {"dag_id": "sales_etl_daily"}])
    assert doc["id"] == BROKEN

    assert fleet.invoke("upgrade", "--wave", "1").returncode == 0
    # Right after the wave, before any measurement: status shows the analyses running.
    status = fleet.invoke("status")
    assert status.returncode == 0, status.stderr
    assert "analysis running: not measured yet" in status.stdout
    watched = fleet.invoke("analyze", "--wave", "1", "--watch")
    assert watched.returncode == 4, watched.stdout + watched.stderr
    assert ("analysis inconclusive: too few runs to judge: 0 before, 1 after (at least 3 "
            "each)") in watched.stdout

    refused = fleet.invoke("upgrade", "--wave", "2")
    assert refused.returncode == 3 and "analysis inconclusive" in refused.stderr

    accepted = fleet.invoke("analyze", "--wave", "1", "--accept", "--reason", "a quiet dev DAG")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "sales-etl-dev: analysis accepted" in accepted.stdout
    assert "(accepted)" in accepted.stdout
    two = fleet.invoke("upgrade", "--wave", "2")
    assert two.returncode == 0, two.stdout + two.stderr


def test_a_reason_is_needed_to_retry_or_accept(sample_fleet: SampleFleet) -> None:
    got = sample_fleet.invoke("analyze", "--wave", "1", "--accept")
    assert got.returncode == 2
    assert '--accept needs --reason "why"' in got.stderr
    both = sample_fleet.invoke("analyze", "--retry", "--accept", "--reason", "x")
    assert both.returncode == 2 and "not both" in both.stderr
