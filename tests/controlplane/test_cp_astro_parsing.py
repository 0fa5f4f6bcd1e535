"""Classify recorded ``astro`` outputs (tests/controlplane/recorded) into typed outcomes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from upgrade import errors
from upgrade.controlplane.astro_output import (
    classify_deploy,
    classify_inspect,
    classify_list,
    clean_output,
    extract_document,
)
from upgrade.controlplane.deployment import DeploymentInfo, DeployOutcome, parse_timestamp
from upgrade.errors import (
    EXIT_POLICY,
    AstroAuthError,
    AstroError,
    AstroOutputError,
    DeploymentNotFound,
    UpgradeError,
)
from upgrade.hosts.host import CommandResult

RECORDED = Path(__file__).parent / "recorded"
DEPLOY_CASES = sorted((RECORDED / "deploy").glob("*.yaml"))


def result(stdout: str, stderr: str = "", code: int = 0, argv: tuple = ("astro",)) -> CommandResult:
    return CommandResult(argv=argv, cwd=".", exit_code=code, stdout=stdout, stderr=stderr,
                         duration=0.1)


@pytest.mark.parametrize("case_file", DEPLOY_CASES, ids=[p.stem for p in DEPLOY_CASES])
def test_deploy_case(case_file: Path) -> None:
    case = yaml.safe_load(case_file.read_text())
    res = result(case["stdout"] or "", case["stderr"] or "", case["exit_code"])
    expect = case["expect"]
    if "outcome" in expect:
        outcome = classify_deploy(res, case["deployment_id"], case["workspace_id"])
        assert isinstance(outcome, DeployOutcome)
        got = {key: getattr(outcome, key) for key in expect["outcome"]}
        got["warnings"] = list(got.get("warnings", []))
        assert got == {**expect["outcome"], "warnings": expect["outcome"].get("warnings", [])}
        assert outcome.deployment_id == case["deployment_id"]
        return
    cls = getattr(errors, expect["raises"])
    with pytest.raises(cls) as info:
        classify_deploy(res, case["deployment_id"], case["workspace_id"])
    err = info.value
    assert type(err) is cls, f"{type(err).__name__}: {err}"
    assert isinstance(err, UpgradeError)
    assert err.deployment_id == case["deployment_id"]
    assert case["deployment_id"] in str(err)
    for key in ("reason", "current_version", "minimum_version", "image"):
        if key in expect:
            assert getattr(err, key) == expect[key]
    if "supported_versions" in expect:
        assert list(err.supported_versions) == [str(v) for v in expect["supported_versions"]]
    if "astro_message" in expect:
        # Astro's words are kept verbatim, both as an attribute and in the message.
        assert err.astro_message == expect["astro_message"]
        assert expect["astro_message"] in str(err)
    if "exit_code" in expect:
        assert err.exit_code == expect["exit_code"]


def test_downgrade_refusal_is_a_policy_refusal_with_exit_3() -> None:
    text = (RECORDED / "deploy" / "refused_downgrade.yaml").read_text()
    case = yaml.safe_load(text)
    with pytest.raises(errors.DeployRefused) as info:
        classify_deploy(result(case["stdout"], code=1), "d", "w")
    assert info.value.exit_code == EXIT_POLICY
    assert "12.4.0" in str(info.value)
    assert info.value.output.endswith("Canceling deploy...")


def test_every_deploy_case_file_is_covered() -> None:
    # The exit-0 traps and each runtime refusal the CLI prints have a recorded case.
    reasons = {yaml.safe_load(p.read_text())["expect"].get("reason") for p in DEPLOY_CASES}
    assert {
        "uncommitted-changes", "workspace-mismatch", "declined-prompt", "no-success-text",
        "downgrade", "unsupported", "af3-minimum", "not-runtime",
    } <= reasons


def test_success_requires_exit_zero_and_success_text() -> None:
    case = yaml.safe_load((RECORDED / "deploy" / "success.yaml").read_text())
    # Same text but the process was killed by a signal: not a success.
    with pytest.raises(errors.DeployFailed):
        classify_deploy(result(case["stdout"], code=-9), "d", "w")


def test_success_line_without_image_tag_is_still_a_deploy() -> None:
    out = "Successfully pushed image to Astronomer registry. Navigate to the Astronomer UI...\n"
    outcome = classify_deploy(result(out), "d", "w")
    assert outcome.image_tag is None


def test_refusal_wins_over_exit_code_zero() -> None:
    out = (
        "Cannot deploy a downgraded Astro Runtime version. Modify your Astro Runtime version "
        "to 13.1.0 or higher in your Dockerfile\nCanceling deploy...\n"
    )
    with pytest.raises(errors.DeployRefused) as info:
        classify_deploy(result(out, code=0), "d", "w")
    assert info.value.current_version == "13.1.0"


def test_colour_codes_do_not_hide_the_success_text() -> None:
    coloured = "\x1b[1mDeployed Image Tag:  \x1b[0mdeploy-2025-01-01T00-00\r\n"
    outcome = classify_deploy(result(clean_output(coloured)), "d", "w")
    assert outcome.image_tag == "deploy-2025-01-01T00-00"


# ------------------------------------------------------------------------- inspect


def _check_af2(info: DeploymentInfo) -> None:
    assert info.id == "clxk3h2v9000108l4c6z1a2b3"
    assert info.name == "analytics-prod"
    assert info.workspace_id == "clxk2yq7f000008l4bq9d8e7f"
    assert info.runtime_version == "12.4.0"
    assert info.airflow_version == "2.10.5"
    assert info.status == "HEALTHY" and info.is_healthy
    assert info.image_tag == "deploy-2025-09-18T03-59-02"
    assert info.airflow_api_url == "myorganization.astronomer.run/d8fe2wmv/api/v1"
    assert info.webserver_url == "myorganization.astronomer.run/d8fe2wmv?orgId=org_9a8b7c6d5e4f"
    assert info.deployment_url.startswith("cloud.astronomer.io/clxk2yq7f000008l4bq9d8e7f/")
    assert info.created_at == datetime(2025, 6, 2, 14, 21, 7, 513000, tzinfo=UTC)
    assert info.updated_at == datetime(2025, 9, 18, 4, 3, 11, 908000, tzinfo=UTC)
    assert info.workspace_name == "Data Platform"
    assert info.deployment_type == "STANDARD"
    assert info.executor == "CELERY"
    assert info.dag_deploy_enabled is True and info.ci_cd_enforcement is True


@pytest.mark.parametrize("name", ["inspect_af2.json", "inspect_af2.yaml", "inspect_preamble.yaml"])
def test_inspect_af2_json_and_yaml(name: str) -> None:
    info = classify_inspect(result((RECORDED / name).read_text()), "clxk3h2v9000108l4c6z1a2b3")
    _check_af2(info)


def test_inspect_af3_json() -> None:
    info = classify_inspect(
        result((RECORDED / "inspect_af3.json").read_text()), "cm1q8zt0r000301mz7w4e9k2p"
    )
    assert info.runtime_version == "3.0-7"
    assert info.airflow_version == "3.0.2"
    assert info.status == "DEPLOYING" and not info.is_healthy
    assert info.airflow_api_url.endswith("/api/v2")
    assert info.cluster_id == "cm0z1e4xq000001jv6m2n8s5d"
    assert info.dag_deploy_enabled is False  # omitempty: absent means false
    # Go prints 1 to 9 fractional digits; all must parse.
    assert info.created_at == datetime(2025, 7, 15, 8, 2, 55, 100000, tzinfo=UTC)
    assert info.updated_at == datetime(2025, 10, 2, 11, 41, 3, 4981, tzinfo=UTC)


def test_inspect_json_is_four_space_indented_in_struct_order() -> None:
    # Guard the recording itself: it must stay the shape astro-cli's inspect prints.
    text = (RECORDED / "inspect_af2.json").read_text()
    doc = json.loads(text)
    assert text == json.dumps(doc, indent=4) + "\n"
    assert list(doc["deployment"]) == [
        "environment_variables", "configuration", "worker_queues", "metadata", "alert_emails"
    ]
    assert list(doc["deployment"]["metadata"]) == [
        "deployment_id", "workspace_id", "cluster_id", "release_name", "airflow_version",
        "current_tag", "status", "created_at", "updated_at", "deployment_url",
        "webserver_url", "airflow_api_url",
    ]


def test_inspect_unknown_deployment() -> None:
    err = (
        "Error: the Deployment specified was not found in this workspace. Your account or API "
        "Key may not have access to the deployment specified\n"
    )
    with pytest.raises(DeploymentNotFound) as info:
        classify_inspect(result("", err, 1), "nope")
    assert "the Deployment specified was not found in this workspace" in info.value.astro_message
    assert "nope" in str(info.value)


def test_inspect_empty_workspace_exits_0_but_is_not_found() -> None:
    with pytest.raises(DeploymentNotFound):
        classify_inspect(result("no Deployments found in workspace ws-empty\n"), "d")


def test_inspect_auth_error() -> None:
    with pytest.raises(AstroAuthError):
        classify_inspect(result("", "Error: API Token is invalid or malformed\n", 1), "d")


def test_inspect_garbage_is_an_output_error() -> None:
    with pytest.raises(AstroOutputError):
        classify_inspect(result("something else entirely\n"), "d")


def test_inspect_of_a_different_deployment_is_refused() -> None:
    with pytest.raises(AstroOutputError, match="instead"):
        classify_inspect(result((RECORDED / "inspect_af2.json").read_text()), "other-id")


# ---------------------------------------------------------------------------- list


def test_list_skips_the_api_token_preamble() -> None:
    rows = classify_list(result((RECORDED / "list_workspace.txt").read_text()), "ws-1")
    assert [r.id for r in rows] == [
        "clxk3j9d2000308l4f1g2h3i4", "clxk3h2v9000108l4c6z1a2b3", "clxk3k4m1000408l4a5b6c7d8"
    ]
    assert [r.name for r in rows] == ["analytics-staging", "analytics-prod", "analytics-dev"]
    assert rows[2].runtime_version == "3.0-7" and rows[2].cluster_name == "dedicated-us"
    assert rows[2].remote_execution_enabled and not rows[2].dag_deploy_enabled
    assert rows[1].cicd_enforced and rows[1].type == "STANDARD"
    assert all(r.workspace_id == "ws-1" for r in rows)


def test_list_all_has_workspace_names() -> None:
    rows = classify_list(result((RECORDED / "list_all.txt").read_text()), None)
    assert {r.workspace_name for r in rows} == {"ML Engineering", "Data Platform"}
    assert all(r.workspace_id is None for r in rows)


def test_list_empty_workspace() -> None:
    assert classify_list(result((RECORDED / "list_empty.txt").read_text()), "ws") == []
    assert classify_list(result("no Deployments found in workspace ws\n"), "ws") == []


def test_list_on_a_cli_without_json_says_so() -> None:
    res = result("", "Error: unknown flag: --json\nUsage:\n  astro deployment list [flags]\n", 1)
    with pytest.raises(AstroError, match="v1.42.0"):
        classify_list(res, "ws")


# ------------------------------------------------------------------- small helpers


def test_extract_document_prefers_json_after_preamble_and_tolerates_trailing_text() -> None:
    text = 'Using an Astro API Token\n{"a": [1, 2]}\nA newer version of Astro CLI is available\n'
    assert extract_document(text) == {"a": [1, 2]}
    with pytest.raises(ValueError):
        extract_document("Using an Astro API Token\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-06-27T13:28:48.699Z", datetime(2023, 6, 27, 13, 28, 48, 699000, tzinfo=UTC)),
        ("2025-09-18T04:02:47.9408803Z", datetime(2025, 9, 18, 4, 2, 47, 940880, tzinfo=UTC)),
        ("2024-05-01T12:00:00+00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2023-06-27 13:28:48.699 +0000 UTC", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_timestamp(text: str | None, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected
