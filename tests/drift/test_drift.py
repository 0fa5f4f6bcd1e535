"""verify-all's drift check against the simulator: every kind, the outputs, the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from simulators import SimHandle, control_plane_settings, make_astro_project
from support import wait_healthy

from tests.drift.conftest import FLEET, Fleet, fast_cp
from upgrade.config.control_plane import ControlPlaneConfig
from upgrade.config.inventory_loader import load_inventory
from upgrade.controlplane.control_plane import ControlPlane
from upgrade.errors import InputError, ServiceError
from upgrade.model.versions import parse_version
from upgrade.plan.facts import RepoFile
from upgrade.report.drift import drift_markdown, print_report
from upgrade.run.verify import drift

V = parse_version
EXPECTED = {"below-1": V("12.5.0"), "clean-1": V("12.4.0"), "clean-2": V("12.3.0")}


def rows_by_id(report: drift.DriftReport) -> dict[str, drift.DriftRow]:
    return {row.id: row for row in report.rows}


def test_each_drift_kind_is_found_and_explained(fleet: Fleet):
    report = drift.check_fleet(fleet.cp, fleet.inventory, fleet.inventory.deployments,
                               fleet.files(), EXPECTED)
    rows = rows_by_id(report)

    assert {dep_id: row.kinds for dep_id, row in rows.items()} == {
        "clean-1": (), "clean-2": (), "sleepy-1": (), "errors-1": (),
        "ahead-1": ("deployed_ne_dockerfile",),
        "below-1": ("deployed_below_expected",),
        "sick-1": ("unhealthy",),
        "ghost-1": ("unknown_deployment",),
        "flaky-1": ("unreachable",),
        "latest-1": ("dockerfile_unreadable",),
    }
    assert rows["ahead-1"].messages == ("Astro runs 12.4.0 but the Dockerfile pins 12.5.0.",)
    assert rows["below-1"].messages == (
        "Astro runs 12.4.0, below 12.5.0, which the journal recorded as deployed.",)
    assert rows["sick-1"].messages == ("Astro reports status UNHEALTHY.",)
    assert rows["ghost-1"].messages == (
        "Astro has no Deployment ghost-1 in workspace ws-2; check 'id' and 'workspace_id' of "
        "ghost-1-name in the inventory.",)
    assert rows["flaky-1"].messages[0].startswith("the Airflow API could not be asked: ")
    assert "answered 503" in rows["flaky-1"].messages[0]
    assert "latest" in rows["latest-1"].messages[0]
    assert rows["latest-1"].dockerfile is None and rows["latest-1"].deployed == "12.4.0"

    clean = rows["clean-1"]
    assert (clean.deployed, clean.status, clean.dockerfile, clean.expected, clean.health,
            clean.import_errors) == ("12.4.0", "HEALTHY", "12.4.0", "12.4.0", "healthy", 0)
    assert rows["clean-2"].expected == "12.3.0"  # above the high-water mark is fine
    assert rows["errors-1"].import_errors == 2  # counted, but not drift without a baseline
    assert rows["sleepy-1"].health == "hibernating, not checked"
    assert (rows["ghost-1"].deployed, rows["ghost-1"].health) == (None, "not checked")

    assert report.exit_code == 5
    assert len(report.drifted) == 6
    # The git kinds need repos in git modes (tests/git_modes/test_drift_git.py).
    assert report.by_kind() == {kind: 0 if kind in (drift.DEPLOYED_FROM_UNMERGED_COMMIT,
                                                    drift.PENDING_PULL_REQUEST) else 1
                                for kind in drift.DRIFT_KINDS}
    assert report.notes == ()  # statuses came from the platform API, no fallback


def test_a_clean_selection_exits_0(fleet: Fleet):
    clean = [d for d in fleet.inventory.deployments if d.repo in ("clean", "sleepy")]

    report = drift.check_fleet(fleet.cp, fleet.inventory, clean, fleet.files(), EXPECTED)

    assert [row.id for row in report.rows] == ["clean-1", "clean-2", "sleepy-1"]
    assert report.drifted == [] and report.exit_code == 0
    assert report.summary().endswith(": no drift.")


def test_statuses_read_through_inspect_give_the_same_rows(fleet: Fleet):
    files = fleet.files()
    via_api = drift.check_fleet(fleet.cp, fleet.inventory, fleet.inventory.deployments, files,
                                EXPECTED, status_via="platform")
    via_inspect = drift.check_fleet(fleet.cp, fleet.inventory, fleet.inventory.deployments,
                                    files, EXPECTED, status_via="inspect", workers=4)

    def plain(report):
        # Heartbeat ages move between the two runs; everything else must agree.
        return [{k: v for k, v in row.to_json().items() if k != "health"}
                for row in report.rows]

    assert plain(via_inspect) == plain(via_api)
    assert via_inspect.exit_code == via_api.exit_code == 5


def test_control_plane_status_via_cli_is_honoured_and_the_shared_reader_stays_open(
        fleet: Fleet):
    files = fleet.files()
    via_api = drift.check_fleet(fleet.cp, fleet.inventory, fleet.inventory.deployments, files,
                                EXPECTED)
    # verify-all borrowed the control plane's reader: it must still work afterwards.
    assert fleet.cp.platform is not None
    assert fleet.cp.status("clean-1", "ws-1").runtime_version == "12.4.0"

    with fast_cp(fleet.sim, status_via="cli") as cli:
        via_cli = drift.check_fleet(cli, fleet.inventory, fleet.inventory.deployments, files,
                                    EXPECTED, workers=4)

    assert via_cli.notes == ("statuses read with one `astro deployment inspect` per Deployment "
                             "(control_plane.status_via is cli).",)
    assert [row.kinds for row in via_cli.rows] == [row.kinds for row in via_api.rows]
    assert [row.status for row in via_cli.rows] == [row.status for row in via_api.rows]


def test_a_stale_scheduler_after_a_deploy_is_unhealthy(sim: SimHandle, tmp_path: Path):
    sim.add_deployment("dep-1", "one", workspace_id="ws-1", runtime_version="12.4.0")
    sim.set_fault("dep-1", scheduler_stale_after_deploy=True)
    repo = make_astro_project(tmp_path / "repo",
                              "FROM quay.io/astronomer/astro-runtime:12.5.0\n")
    (tmp_path / "inventory.yaml").write_text(
        'target: "12.5"\nrepos:\n  repo:\n    path: repo\n    deployments:\n'
        "      - {id: dep-1, name: one, workspace_id: ws-1, wave: 1}\n")
    inv = load_inventory(tmp_path / "inventory.yaml")
    with fast_cp(sim) as cp:
        cp.deploy("dep-1", "ws-1", repo, "test")
        wait_healthy(cp, "dep-1", "ws-1", timeout=5)
        files = {"repo": RepoFile((repo / "Dockerfile").read_text())}
        report = drift.check_fleet(cp, inv, inv.deployments, files, {"dep-1": V("12.5.0")})

    row = report.rows[0]
    assert row.kinds == ("unhealthy",)
    assert row.status == "HEALTHY"  # Astro is happy; Airflow's scheduler is not
    assert row.health.startswith("scheduler is unhealthy (heartbeat 6")
    assert row.messages[0].startswith("Airflow: scheduler is unhealthy")


@pytest.mark.parametrize("case", ["token refused", "Astro unreachable"])
def test_an_astro_that_refuses_the_token_or_cannot_be_reached_is_exit_7_without_drift(
        fleet: Fleet, case: str):
    bad_token = "not-a-jwt-but-a-secret-value"
    if case == "token refused":
        env = {**fleet.cp.config.extra_env, "ASTRO_API_TOKEN": bad_token}
        cp = fast_cp(fleet.sim, extra_env=env)
    else:  # nothing listens there
        cp = ControlPlane(ControlPlaneConfig(**control_plane_settings(
            "http://127.0.0.1:9", http_retries=0, http_timeout=0.5,
            http_connect_timeout=0.5, http_total_timeout=1.5)))
    with cp, pytest.raises(ServiceError) as raised:
        drift.check_fleet(cp, fleet.inventory, fleet.inventory.deployments, fleet.files(),
                          EXPECTED)

    message = str(raised.value)
    assert raised.value.exit_code == 7 and "\n" not in message
    assert message.startswith("verify-all checked nothing: Astro could not be read (")
    assert "drift" not in message and bad_token not in message
    if case == "token refused":
        assert "was not authorised by Astro" in message, message


def test_a_hanging_airflow_api_is_unreachable(fleet: Fleet):
    fleet.sim.set_fault("clean-1", airflow_hang=5)
    clean = [d for d in fleet.inventory.deployments if d.id == "clean-1"]

    report = drift.check_fleet(fleet.cp, fleet.inventory, clean, fleet.files(), EXPECTED)

    row = report.rows[0]
    assert row.kinds == ("unreachable",)
    assert "timed out" in row.messages[0]
    assert (row.health, row.import_errors) == ("unreachable", None)


def test_json_document_follows_the_documented_schema(fleet: Fleet):
    report = drift.check_fleet(fleet.cp, fleet.inventory, fleet.inventory.deployments,
                               fleet.files(), EXPECTED)
    doc = json.loads(json.dumps(report.to_json()))

    assert set(doc) == {"schema", "schema_version", "checked_at", "duration_seconds",
                        "exit_code", "summary", "notes", "deployments"}
    assert (doc["schema"], doc["schema_version"], doc["exit_code"]) == (
        "astro-fleet-upgrade/verify-all", 1, 5)
    assert doc["summary"]["deployments"] == sum(len(d) for _, d in FLEET.values())
    assert doc["summary"]["drifted"] == 6
    assert list(doc["summary"]["by_kind"]) == list(drift.DRIFT_KINDS)
    row = next(r for r in doc["deployments"] if r["id"] == "ahead-1")
    assert row == {
        "deployment": "ahead-1-name", "id": "ahead-1", "workspace_id": "ws-1",
        "repo": "ahead", "deployed": "12.4.0", "status": "HEALTHY", "dockerfile": "12.5.0",
        "expected": None, "health": "healthy", "import_errors": 0,
        "drift": ["deployed_ne_dockerfile"],
        "messages": ["Astro runs 12.4.0 but the Dockerfile pins 12.5.0."],
    }


def test_markdown_report_lists_drift_then_every_deployment(fleet: Fleet):
    report = drift.check_fleet(fleet.cp, fleet.inventory, fleet.inventory.deployments,
                               fleet.files(), EXPECTED)
    text = drift_markdown(report)

    assert text.startswith("# verify-all\n")
    assert "10 Deployment(s) checked in " in text and "6 drifted" in text
    drift_part, all_part = text.split("## All Deployments")
    assert "| ahead-1-name | ahead | deployed_ne_dockerfile | Astro runs 12.4.0 but the " \
           "Dockerfile pins 12.5.0. |" in drift_part
    assert "clean-1-name" not in drift_part
    assert "| clean-1-name | clean | 12.4.0 | HEALTHY | 12.4.0 | 12.4.0 | healthy | 0 | none |" \
        in all_part
    assert all_part.count("\n| ") == 1 + 10  # header and one row per Deployment


def test_rich_table_shows_every_row_and_the_reasons(fleet: Fleet):
    report = drift.check_fleet(fleet.cp, fleet.inventory, fleet.inventory.deployments,
                               fleet.files(), EXPECTED)
    console = Console(record=True, width=250, color_system=None)

    print_report(report, console)

    out = console.export_text()
    for dep_id in rows_by_id(report):
        assert f"{dep_id}-name" in out
    assert "ghost-1-name: Astro has no Deployment ghost-1 in workspace ws-2" in out
    assert "6 drifted (1 deployed_ne_dockerfile, 1 deployed_below_expected" in out


def test_a_bad_status_source_is_refused(fleet: Fleet):
    with pytest.raises(InputError, match="status_via must be one of auto, platform, inspect"):
        drift.check_fleet(fleet.cp, fleet.inventory, [], {}, {}, status_via="psychic")
