"""The validation the forge fixture applies can fail: answers the public descriptions do not
allow are refused (tests/forge_schemas/README.md names the sources)."""

from __future__ import annotations

import json

import pytest

from forge_schemas.validate import GITHUB, Invalid, validate

SHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e"


def test_a_check_run_needs_githubs_fields_and_enums() -> None:
    with pytest.raises(Invalid, match="node_id"):
        validate("GET", f"/repos/o/r/commits/{SHA}/check-runs", 200,
                 {"total_count": 1, "check_runs": [{"id": 1, "status": "completed"}]})
    conclusion = json.loads(GITHUB.read_text())["components"]["schemas"]["check-run"][
        "properties"]["conclusion"]
    assert set(conclusion["enum"]) == {"success", "failure", "neutral", "cancelled", "skipped",
                                      "timed_out", "action_required"}


def test_the_combined_status_and_merge_answers_are_checked() -> None:
    with pytest.raises(Invalid, match="repository"):
        validate("GET", f"/repos/o/r/commits/{SHA}/status", 200,
                 {"state": "pending", "sha": SHA, "total_count": 0, "statuses": []})
    validate("PUT", "/repos/o/r/pulls/1/merge", 405, {"message": "Pull Request is not mergeable"})
    with pytest.raises(Invalid, match="merged"):
        validate("PUT", "/repos/o/r/pulls/1/merge", 200, {"sha": SHA, "message": "ok"})
    with pytest.raises(Invalid, match="not an operation"):
        validate("GET", "/repos/o/r/branches/main", 200, {})


def test_a_gitlab_merge_request_needs_its_documented_fields() -> None:
    with pytest.raises(Invalid, match="required property"):
        validate("GET", "/api/v4/projects/g%2Fp/merge_requests/1", 200,
                 {"id": 1, "iid": 1, "detailed_merge_status": "mergeable_now"})
    validate("PUT", "/api/v4/projects/g%2Fp/merge_requests/1/merge", 409,
             {"message": "SHA does not match HEAD of source branch"})
    with pytest.raises(Invalid):
        validate("PUT", "/api/v4/projects/g%2Fp/merge_requests/1/merge", 405, ["no"])
