"""Targets per line and per layer, not_targeted, and the Airflow 2 -> 3 migration rules.

Each test writes a real inventory and real Dockerfiles and plans them offline (the
Dockerfiles decide, the bundled catalog resolves): the same loader, planner and policy as
`invoke plan`, without a control plane.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from support import INVOKE, ROOT

from upgrade.config.inventory_loader import load_inventory
from upgrade.errors import InventoryError
from upgrade.plan.plan import Plan
from upgrade.run.session import Session

AF2_IMAGE = "quay.io/astronomer/astro-runtime"
AF3_IMAGE = "astrocrpublic.azurecr.io/runtime"


def write_fleet(root: Path, top: dict, repos: dict[str, tuple[str, dict]]) -> Path:
    """``repos``: name -> (FROM image:tag, repo settings); one Deployment ``<name>-d`` each
    unless the settings list their own."""
    specs = {}
    for i, (name, (image, settings)) in enumerate(repos.items()):
        path = root / "repos" / name
        path.mkdir(parents=True)
        (path / "Dockerfile").write_text(f"FROM {image}\n")
        deployments = settings.pop("deployments", None) or [
            {"id": f"cl{i:03d}", "name": f"{name}-d", "workspace_id": "ws", "wave": 1}]
        specs[name] = {"path": f"repos/{name}", **settings, "deployments": deployments}
    doc = {**top, "repos": specs}
    (root / "inventory.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return root / "inventory.yaml"


def plan(path: Path, target: str | None = None) -> Plan:
    with Session.load(path, target=target) as fleet:
        return fleet.plan(fleet.select(None, ()), offline=True)


def by_name(result: Plan) -> dict:
    return {p.deployment.name: p for p in result.deployments}


def test_targets_layer_like_variables_and_the_merged_view_says_where(tmp_path: Path) -> None:
    path = write_fleet(tmp_path, {
        "target": {"airflow2": "13", "airflow3": "3.1"},
        "groups": {"legacy": {"target": "12.4", "children": ["team-a"]}, "team-a": {}},
    }, {
        "plain": (f"{AF2_IMAGE}:12.1.0", {}),
        "events": (f"{AF3_IMAGE}:3.0-10", {"target": {"airflow3": "3.0"}}),
        "held": (f"{AF2_IMAGE}:12.1.0", {"groups": ["team-a"]}),
        "pinned": (f"{AF2_IMAGE}:12.1.0", {"groups": ["legacy"], "deployments": [
            {"id": "clp", "name": "pinned-d", "workspace_id": "ws", "wave": 1,
             "target": "13.7.0"}]}),
        "streams": (f"{AF3_IMAGE}:3.1-12", {}),
    })
    inventory = load_inventory(path)
    seen = {name: (inventory.merged_view(name)["target"], inventory.merged_view(name)["target_source"])
            for name in ("plain-d", "events-d", "held-d", "pinned-d", "streams-d")}
    assert seen == {
        "plain-d": ("airflow2: 13, airflow3: 3.1", "inventory"),
        "events-d": ("airflow3: 3.0", "repo events"),
        "held-d": ("12.4", "group legacy"),  # a parent group's, through team-a
        "pinned-d": ("13.7.0", "deployment pinned-d"),
        "streams-d": ("airflow2: 13, airflow3: 3.1", "inventory"),
    }
    decided = {n: (p.action, str(p.target)) for n, p in by_name(plan(path)).items()}
    assert decided == {
        "plain-d": ("upgrade", "13.9.0"), "events-d": ("upgrade", "3.0-14"),
        "held-d": ("upgrade", "12.4.0"), "pinned-d": ("upgrade", "13.7.0"),
        "streams-d": ("upgrade", "3.1-17"),
    }


def test_target_flag_replaces_every_layer(tmp_path: Path) -> None:
    path = write_fleet(tmp_path, {"target": "13"}, {
        "held": (f"{AF2_IMAGE}:12.1.0", {"target": "12.4"}),
        "events": (f"{AF3_IMAGE}:3.1-12", {}),
    })
    inventory = load_inventory(path, target_override="12.4")
    assert inventory.merged_view("held-d")["target_source"] == "--target"
    decided = by_name(plan(path, target="12.4"))
    assert (decided["held-d"].action, str(decided["held-d"].target)) == ("upgrade", "12.4.0")
    assert decided["events-d"].action == "not_targeted"


def test_a_line_without_a_target_is_not_targeted_and_plan_exits_0(tmp_path: Path) -> None:
    write_fleet(tmp_path, {"target": "13"}, {
        "etl": (f"{AF2_IMAGE}:12.1.0", {}),
        "events": (f"{AF3_IMAGE}:3.1-12", {}),
    })
    out = subprocess.run([INVOKE, "-r", str(ROOT), "plan", "--offline", "--json"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    events = next(r for r in doc["deployments"] if r["deployment"] == "events-d")
    assert (events["action"], events["target"], events["refusal"]) == ("not_targeted", None, None)
    assert events["reason"] == ("on Airflow 3 (Runtime 3.1-12), which its target (Airflow 2 13; "
                                "from inventory) does not name")
    assert "downgrade" not in events["reason"]
    assert doc["summary"]["not_targeted"] == 1 and doc["summary"]["upgrade"] == 1
    assert doc["targets"] == {"13": {"version": "13.9.0", "warnings": doc["targets"]["13"]["warnings"]}}


@pytest.mark.parametrize(("target", "problem"), [
    ({"airflow2": "3.1"}, "2: target.airflow2: '3.1' is an Airflow 3 Runtime, not an Airflow 2 "
                          "one. Put it under airflow3."),
    ({"airflow4": "4.0"}, "2: target.airflow4: unknown Runtime line. Did you mean 'airflow3'?"),
    ({}, "1: target: names no line. Give airflow2 and/or airflow3"),
])
def test_a_wrong_target_mapping_is_refused_where_it_is_written(
    tmp_path: Path, target: dict, problem: str
) -> None:
    path = write_fleet(tmp_path, {"target": target}, {"etl": (f"{AF2_IMAGE}:12.1.0", {})})
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert str(caught.value).startswith(f"{path}:{problem}")


def test_one_dockerfile_with_two_targets_is_an_input_error_naming_both(tmp_path: Path) -> None:
    path = write_fleet(tmp_path, {"target": "13"}, {"etl": (f"{AF2_IMAGE}:12.1.0", {
        "deployments": [
            {"id": "c1", "name": "etl-dev", "workspace_id": "ws", "wave": 1},
            {"id": "c2", "name": "etl-prod", "workspace_id": "ws", "wave": 1, "target": "12.4"},
        ]})})
    decided = by_name(plan(path))
    for name in ("etl-dev", "etl-prod"):
        assert (decided[name].action, decided[name].refusal) == ("refuse", "input")
        assert decided[name].reason == (
            "repos/etl/Dockerfile:1: its Deployments have different targets (12.4 → 12.4.0, 13 → "
            "13.9.0), but one Dockerfile holds one Runtime. Give the repo's Deployments one "
            "target.")


MIGRATION = {"target": {"airflow2": "13"}, "groups": {
    "to-af3": {"target": "3.1", "vars": {"allow_airflow3": True}}}}


def test_a_migration_switches_the_registry_and_keeps_the_variants(tmp_path: Path) -> None:
    path = write_fleet(tmp_path, MIGRATION, {
        "c360": (f"{AF2_IMAGE}:13.8.0-python-3.12-base", {"groups": ["to-af3"]}),
        "etl": (f"{AF2_IMAGE}:13.2.0", {}),
    })
    result = plan(path)
    decided = by_name(result)
    c360 = decided["c360-d"]
    assert (c360.action, str(c360.target), c360.line) == ("migrate", "3.1-17", "airflow2")
    assert c360.reason == "Migrate 13.8.0 → 3.1-17 (Airflow 2 → 3)."
    assert (f"-FROM {AF2_IMAGE}:13.8.0-python-3.12-base\n"
            f"+FROM {AF3_IMAGE}:3.1-17-python-3.12-base\n") in c360.repo.diff()
    assert (decided["etl-d"].action, str(decided["etl-d"].target)) == ("upgrade", "13.9.0")
    assert result.summary() == "1 to upgrade, 1 to migrate to Airflow 3, 0 already at their target, 0 refused"


def test_a_migration_from_below_13_7_0_is_refused_with_the_version_to_reach(tmp_path: Path) -> None:
    path = write_fleet(tmp_path, MIGRATION, {
        "c360": (f"{AF2_IMAGE}:13.6.0", {"groups": ["to-af3"]})})
    c360 = by_name(plan(path))["c360-d"]
    assert (c360.action, c360.refusal) == ("refuse", "policy")
    assert "needs Runtime 13.7.0 or later" in c360.reason


def test_without_allow_airflow3_an_airflow3_only_target_leaves_it_not_targeted(
    tmp_path: Path
) -> None:
    top = {"target": {"airflow2": "13"}, "groups": {"to-af3": {"target": "3.1"}}}
    path = write_fleet(tmp_path, top, {"c360": (f"{AF2_IMAGE}:13.8.0", {"groups": ["to-af3"]})})
    c360 = by_name(plan(path))["c360-d"]
    assert c360.action == "not_targeted"
    assert c360.reason.endswith("does not name (set allow_airflow3: true to migrate it)")


def test_a_repo_without_its_dockerfile_is_refused_at_its_inventory_entry(tmp_path: Path) -> None:
    # Found by tests/hostile: a template-managed repo (the loader does not require its
    # Dockerfile) at `path: ~root`, a directory that is no Astro project.
    path = write_fleet(tmp_path, {"target": "13"}, {
        "plain": (f"{AF2_IMAGE}:12.1.0", {}),
        "managed": (f"{AF2_IMAGE}:12.1.0", {"template": {"name": "standard.Dockerfile.j2"}}),
    })
    (tmp_path / "repos" / "managed" / "Dockerfile").unlink()
    refused = by_name(plan(path))["managed-d"]
    line = path.read_text().splitlines().index("  managed:") + 1
    assert (refused.action, refused.refusal) == ("refuse", "input")
    assert refused.reason == (
        f"{path}:{line}: repos.managed: {tmp_path}/repos/managed/Dockerfile does not exist. "
        "Point 'path' at the Astro project's checkout, or set 'dockerfile' to its Dockerfile "
        "(relative to 'path').")
    assert by_name(plan(path))["plain-d"].action == "upgrade"
