"""`invoke plan`: the real command over the sample fleet, offline and against the simulator."""

from __future__ import annotations

import json

from simulators import SimHandle
from support import SampleFleet

PLAN_KEYS = {
    "deployment", "deployment_id", "workspace_id", "repo", "wave", "dockerfile", "line",
    "current", "deployed", "dockerfile_version", "target_spec", "target", "action", "reason",
    "refusal", "warnings", "diff",
}


def test_plan_json_schema_and_summary(sample_fleet: SampleFleet) -> None:
    out = sample_fleet.invoke("plan", "--offline", "--json")
    assert out.returncode == 3, out.stderr  # partner-feeds is refused
    doc = json.loads(out.stdout)
    assert {spec: t["version"] for spec, t in doc["targets"].items()} == {
        "13": "13.9.0", "3.1": "3.1-17", "12.4": "12.4.0", "3.0": "3.0-14"}
    assert doc["summary"] == {"upgrade": 21, "migrate": 2, "noop": 0, "not_targeted": 0,
                              "refuse": 1, "blocked": 0}
    assert len(doc["deployments"]) == 24
    for row in doc["deployments"]:
        assert set(row) == PLAN_KEYS
    by_name = {row["deployment"]: row for row in doc["deployments"]}
    refused = by_name["partner-feeds-prod"]
    assert refused["action"] == "refuse" and refused["refusal"] == "policy"
    assert refused["target_spec"] == "12.4"  # its repo's own target
    assert "already holds 12.5.0, newer than the target 12.4.0" in refused["reason"]
    assert refused["diff"] == ""
    dbt = by_name["marketing-dbt-dev"]
    assert (dbt["line"], dbt["current"], dbt["target_spec"], dbt["target"], dbt["wave"]) == (
        "airflow2", "12.2.0", "13", "13.9.0", 1)
    assert "-ARG ASTRO_RUNTIME_VERSION=12.2.0\n+ARG ASTRO_RUNTIME_VERSION=13.9.0\n" in dbt["diff"]
    events = by_name["events-stream-dev"]
    assert (events["line"], events["current"], events["target"], events["action"]) == (
        "airflow3", "3.1-12", "3.1-17", "upgrade")
    held = by_name["reverse-etl-prod"]
    assert (held["target_spec"], held["target"]) == ("3.0", "3.0-14")
    moving = by_name["customer-360-prod"]
    assert (moving["line"], moving["target"], moving["action"], moving["wave"]) == (
        "airflow2", "3.1-17", "migrate", 4)
    assert ("-FROM quay.io/astronomer/astro-runtime:13.8.0-python-3.12-base\n"
            "+FROM astrocrpublic.azurecr.io/runtime:3.1-17-python-3.12-base\n") in moving["diff"]


def test_plan_changes_nothing(sample_fleet: SampleFleet) -> None:
    before = {p: p.read_bytes() for p in sample_fleet.root.rglob("Dockerfile")}
    sample_fleet.invoke("plan", "--offline")
    assert {p: p.read_bytes() for p in sample_fleet.root.rglob("Dockerfile")} == before
    assert sample_fleet.git("sales-etl", "status", "--porcelain") == ""


def test_each_repo_diff_is_shown_once(sample_fleet: SampleFleet) -> None:
    out = sample_fleet.invoke("plan", "--offline")
    assert out.stdout.count("\nsales-etl: demo-fleet/sales-etl/Dockerfile\n") == 1  # 3 share it
    # Diff headers name the file as the repo holds it, the same on every machine.
    assert "--- a/demo-fleet" not in out.stdout and "--- a/Dockerfile\n" in out.stdout
    assert ("Plan: 21 to upgrade, 2 to migrate to Airflow 3, 0 already at their target, "
            "1 refused.") in out.stdout


def test_limit_and_wave_select(sample_fleet: SampleFleet) -> None:
    out = sample_fleet.invoke("plan", "--offline", "--json", "--wave", "3", "--limit", "!partner-feeds")
    assert out.returncode == 0, out.stderr
    names = [row["deployment"] for row in json.loads(out.stdout)["deployments"]]
    assert names == ["sales-etl-prod", "marketing-dbt-prod", "finance-reports-prod",
                     "ml-platform-prod", "data-quality-prod", "ingest-api-prod",
                     "events-stream-prod", "reverse-etl-prod"]


def test_crlf_file_keeps_its_line_endings_in_the_plan(sample_fleet: SampleFleet) -> None:
    doc = json.loads(sample_fleet.invoke("plan", "--offline", "--json", "--limit", "finance-reports-dev").stdout)
    diff = doc["deployments"][0]["diff"]
    assert "+FROM --platform=linux/amd64 quay.io/astronomer/astro-runtime:13.9.0-python-3.12-base AS stage1\r\n" in diff


def test_hand_edited_template_managed_repo_is_refused_unless_adopted(sample_fleet: SampleFleet) -> None:
    dockerfile = sample_fleet.repo("data-quality") / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN pip install pandas\n")
    out = sample_fleet.invoke("plan", "--offline", "--json", "--limit", "data-quality")
    assert out.returncode == 2  # bad input: the file drifted from its template
    rows = json.loads(out.stdout)["deployments"]
    assert {r["action"] for r in rows} == {"refuse"}
    # The drift diff goes from the file to the template: the hand edit is what would be lost.
    assert "hand-edited" in rows[0]["reason"] and "-RUN pip install pandas" in rows[0]["reason"]
    adopted = sample_fleet.invoke("plan", "--offline", "--json", "--limit", "data-quality", "--adopt")
    assert adopted.returncode == 0
    row = json.loads(adopted.stdout)["deployments"][0]
    assert row["action"] == "upgrade" and "-RUN pip install pandas" in row["diff"]


def test_unpinned_dockerfile_is_an_input_refusal_naming_file_and_line(sample_fleet: SampleFleet) -> None:
    (sample_fleet.repo("sales-etl") / "Dockerfile").write_text(
        "# pinned later\nFROM quay.io/astronomer/astro-runtime:latest\n")
    out = sample_fleet.invoke("plan", "--offline", "--json", "--limit", "sales-etl")
    assert out.returncode == 2
    reason = json.loads(out.stdout)["deployments"][0]["reason"]
    assert reason.startswith("demo-fleet/sales-etl/Dockerfile:2: ") and "unpinned" in reason


def test_bad_inventory_is_one_clear_refusal(sample_fleet: SampleFleet) -> None:
    text = sample_fleet.inventory.read_text().replace("\ncontrol_plane:", "\ntraget: 12\ncontrol_plane:")
    sample_fleet.inventory.write_text(text)
    line = text[:text.index("traget:")].count("\n") + 1
    out = sample_fleet.invoke("plan", "--offline")
    assert out.returncode == 2
    assert f"inventory.yaml:{line}: traget: unknown key" in out.stderr and "target" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_target_is_refused_by_policy(sample_fleet: SampleFleet) -> None:
    out = sample_fleet.invoke("plan", "--offline", "--target", "12.4.9")
    assert out.returncode == 3
    assert "--target: 12.4.9 is not a known Astro Runtime release" in out.stderr


def test_deployed_versions_come_from_the_simulator(sample_fleet: SampleFleet, sim: SimHandle) -> None:
    sample_fleet.use_simulator(sim.url)
    sim.add_deployment("cm1salesdev0001", "sales-etl-dev", workspace_id="ws-analytics", runtime_version="12.1.0")
    sim.add_deployment("cm1salesstg0002", "sales-etl-staging", workspace_id="ws-analytics", runtime_version="12.5.0")
    sim.add_deployment("cm1salesprd0003", "sales-etl-prod", workspace_id="ws-analytics", runtime_version="12.4.0")
    out = sample_fleet.invoke("plan", "--json", "--limit", "sales-etl", "--target", "12.4")
    assert out.returncode == 3, out.stderr
    rows = {r["deployment"]: r for r in json.loads(out.stdout)["deployments"]}
    assert rows["sales-etl-dev"]["action"] == "upgrade" and rows["sales-etl-dev"]["deployed"] == "12.1.0"
    staging = rows["sales-etl-staging"]
    assert staging["action"] == "refuse"
    assert staging["reason"].startswith("Cannot deploy a downgraded Astro Runtime version. "
                                        "Modify your Astro Runtime version to 12.5.0 or higher")
    prod = rows["sales-etl-prod"]
    assert prod["action"] == "upgrade" and "rewrite it to match" in prod["reason"]
    assert any("Astro reports 12.4.0 deployed" in w for w in prod["warnings"])


def test_a_deployment_astro_does_not_know_is_refused(sample_fleet: SampleFleet, sim: SimHandle) -> None:
    sample_fleet.use_simulator(sim.url)
    out = sample_fleet.invoke("plan", "--json", "--limit", "ingest-api-dev")
    rows = json.loads(out.stdout)["deployments"]
    assert rows[0]["action"] == "refuse"
    assert "Astro has no Deployment cm1ingdev000015 in workspace ws-platform" in rows[0]["reason"]
