"""CI-grade contracts: every --json document carries its schema and validates against
docs/schemas/ (real outputs of the real command), and plan --detailed-exitcode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from simulators import SimHandle
from support import ROOT, SampleFleet, without_soak

from upgrade.report.documents import PREFIX, SCHEMAS

SCHEMA_DIR = ROOT / "docs" / "schemas"


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def document(out, name: str, code: int = 0) -> dict:
    assert out.returncode == code, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    assert (doc["schema"], doc["schema_version"]) == (PREFIX + name, SCHEMAS[name])
    assert list(doc)[:2] == ["schema", "schema_version"]
    errors = sorted(validator(name).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
    return doc


def test_every_document_has_a_schema_file_and_every_file_a_document():
    files = {p.name.removesuffix(".schema.json") for p in SCHEMA_DIR.glob("*.schema.json")}
    assert files == set(SCHEMAS)
    for name in files:
        validator(name)


def test_the_schemas_reject_what_they_should():
    v = validator("plan")
    assert not v.is_valid({"schema": "astro-fleet-upgrade/plan", "schema_version": 1})
    assert not v.is_valid({"schema": "astro-fleet-upgrade/plan", "schema_version": 2,
                           "target": {}, "summary": {}, "deployments": []})


def test_real_outputs_validate(sample_fleet: SampleFleet, sim: SimHandle, tmp_path: Path):
    run = sample_fleet.invoke
    text = without_soak(sample_fleet.inventory.read_text())
    sample_fleet.inventory.write_text(text)
    document(run("catalog", "--json"), "catalog")
    document(run("catalog", "--resolve", "12.4", "--json"), "catalog-resolve")
    inventory = document(run("inventory", "--json"), "inventory")
    assert len(inventory["deployments"]) == 24
    document(run("inventory", "--name", "sales-etl-prod", "--json"), "inventory-deployment")
    document(run("plan", "--offline", "--json"), "plan", code=3)  # partner-feeds is refused
    empty = document(run("status", "--json"), "status")
    assert empty["rollouts"] == []

    sample_fleet.use_simulator(sim.url)
    assert sample_fleet.seed() == 24
    dry = document(run("upgrade", "--wave", "1", "--dry-run", "--json"), "plan")
    assert [s["kind"] for s in dry["steps"]][:2] == ["render", "commit"]
    wave = document(run("upgrade", "--wave", "1", "--json"), "upgrade")
    assert wave["status"] == "passed" and len(wave["runs"]) == 1
    status = document(run("status", "--json"), "status")
    assert status["rollouts"][0]["waves"][0]["status"] == "passed"
    # Waves 2 and 3 share repos whose remotes now pin the target: the rollout in flight,
    # not drift (each such row says so).
    drift = document(run("verify-all", "--json"), "verify-all", code=0)
    assert drift["exit_code"] == 0 and drift["summary"]["deployments"] == 24
    in_flight = [r for r in drift["deployments"] if any("in flight" in m for m in r["messages"])]
    assert {r["deployment"] for r in in_flight} >= {"sales-etl-staging", "sales-etl-prod"}

    # Wave 1 deployed from each repo's clean checkout with a file:// origin: discover maps
    # those Deployments to their repos; the rest have no deploy with git metadata yet.
    found = document(run("discover", "--output", str(tmp_path / "found.yaml"), "--json"),
                     "discover")
    assert found["summary"] == {"deployments": 24, "repos": 8, "unmapped": 16,
                                "missing_checkouts": 0}
    assert found["written"] == str(tmp_path / "found.yaml")


@pytest.mark.parametrize(("args", "code"), [
    (("--limit", "!partner-feeds-prod"), 8),   # changes pending, nothing refused
    ((), 3),                                    # partner-feeds is refused
    (("--limit", "partner-feeds-prod", "--target", "12.5.0"), 0),  # nothing to do
    (("--wave", "x"), 2),
])
def test_plan_detailed_exitcode(sample_fleet: SampleFleet, args, code):
    out = sample_fleet.invoke("plan", "--offline", "--detailed-exitcode", *args)
    assert out.returncode == code, out.stdout + out.stderr
    plain = sample_fleet.invoke("plan", "--offline", *args)
    assert plain.returncode == (0 if code == 8 else code)
