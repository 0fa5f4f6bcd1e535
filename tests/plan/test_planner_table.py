"""The planner decided from plain facts, in-process: one table row per rule it applies.

``build_plan`` is pure: it takes the targets (``upgrade.plan.targets.Targets``), the
Dockerfile texts and Astro's answers as data and decides. Each row is one repo of one
inventory, loaded once; its facts (the Dockerfile's text or why it could not be read,
what Astro reports deployed) are written in the row, never read from a repo or a
system. The policy's own rules are tests/core/test_policy.py's; these are the planner's:
which spec applies on which Runtime line, a Dockerfile that cannot be read or parsed,
pins that do not hold a spec, one Dockerfile asked for two targets, --target over every
layer, and the text the rewrite writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.core import decisions
from upgrade.config.inventory import Inventory
from upgrade.config.inventory_loader import load_inventory
from upgrade.config.targets import TargetSource, single
from upgrade.model.versions import parse_spec, parse_version
from upgrade.plan.facts import DeployedFact, RepoFile
from upgrade.plan.plan import PlannedDeployment, PlanOptions
from upgrade.plan.planner import build_plan, resolve_pinned, resolve_targets
from upgrade.plan.targets import Targets

AF2 = "quay.io/astronomer/astro-runtime"
AF3 = "astrocrpublic.azurecr.io/runtime"
CATALOG = decisions.catalog()
OPTIONS = PlanOptions(today=date(2026, 11, 25))
BOTH = {"airflow2": "13", "airflow3": "3.1"}


@dataclass(frozen=True)
class Row:
    """One repo with one Deployment (``name``-d), its facts, and what the plan says."""

    name: str
    target: Any  # the repo's target as the inventory writes it
    dockerfile: RepoFile
    deployed: DeployedFact
    action: str
    to: str | None = None  # the target version decided
    spec: str | None = None
    line: str | None = None
    refusal: str | None = None
    reason: str = ""  # a fragment of the reason
    writes: str | None = None  # a fragment of the new Dockerfile text (None: nothing written)
    vars: Mapping[str, Any] = field(default_factory=dict)


def text(image: str, tag: str) -> RepoFile:
    return RepoFile(f"FROM {image}:{tag}\n")


def at(version: str) -> DeployedFact:
    return DeployedFact(parse_version(version))


ROWS = (
    Row("af2-line", BOTH, text(AF2, "12.3.0"), at("12.3.0"), "upgrade", "13.9.0", "13",
        "airflow2", writes=f"FROM {AF2}:13.9.0\n"),
    Row("af3-line", BOTH, text(AF3, "3.1-11"), at("3.1-11"), "upgrade", "3.1-12", "3.1",
        "airflow3", writes=f"FROM {AF3}:3.1-12\n"),
    # Astro says nothing: the Dockerfile's line decides.
    Row("line-from-dockerfile", BOTH, text(AF2, "12.3.0"), DeployedFact(None), "upgrade",
        "13.9.0", "13", "airflow2", writes=f"FROM {AF2}:13.9.0\n"),
    # Astro's answer decides the line over the Dockerfile's.
    Row("line-from-astro", BOTH, text(AF2, "13.9.0"), at("3.1-11"), "upgrade", "3.1-12", "3.1",
        "airflow3", writes=f"FROM {AF3}:3.1-12\n"),
    Row("af3-not-named", {"airflow2": "13"}, text(AF3, "3.1-11"), at("3.1-11"), "not_targeted",
        line="airflow3", reason="which its target (Airflow 2 13; from repo af3-not-named) does "
        "not name"),
    Row("af2-not-named", {"airflow3": "3.1"}, text(AF2, "13.9.0"), at("13.9.0"), "not_targeted",
        line="airflow2", reason="(set allow_airflow3: true to migrate it)"),
    Row("af2-migrates", {"airflow3": "3.1"}, text(AF2, "13.9.0"), at("13.9.0"), "migrate",
        "3.1-12", "3.1", "airflow2", vars={"allow_airflow3": True},
        writes=f"FROM {AF3}:3.1-12\n"),
    Row("at-target", "13", text(AF2, "13.9.0"), at("13.9.0"), "noop", "13.9.0", "13",
        "airflow2"),
    Row("dockerfile-newer", "12.4", text(AF2, "13.6.0"), at("12.3.0"), "refuse", "12.4.0",
        "12.4", "airflow2", "policy", "newer than the target 12.4.0"),
    Row("runner-unreachable", "13", RepoFile(None, "runner 'far' is unreachable",
                                             blocked="unreachable"),
        at("12.3.0"), "blocked", "13.9.0", "13", "airflow2", "unreachable",
        "runner 'far' is unreachable"),
    Row("repo-missing", "13", RepoFile(None, "no such directory", blocked="input"),
        at("12.3.0"), "blocked", "13.9.0", "13", "airflow2", "input", "no such directory"),
    Row("not-astro", "13", RepoFile("FROM python:3.12-slim\n"), at("12.3.0"), "refuse",
        "13.9.0", "13", "airflow2", "input", "Astro Runtime"),
    Row("astro-unsure", "13", text(AF2, "12.3.0"),
        DeployedFact(None, error="Astro did not answer for it"), "refuse", "13.9.0", "13",
        "airflow2", "input", "Astro did not answer for it",
        # The repo's rewrite is still planned: another Deployment of it may go ahead.
        writes=f"FROM {AF2}:13.9.0\n"),
)


def _inventory(root: Path) -> Inventory:
    repos = {
        row.name: {"path": f"repos/{row.name}", "target": row.target, "deployments": [
            {"id": f"cl{i:03d}", "name": f"{row.name}-d", "workspace_id": "ws", "wave": 1,
             **({"vars": dict(row.vars)} if row.vars else {})}]}
        for i, row in enumerate(ROWS)
    }
    repos["two-targets"] = {"path": "repos/two-targets", "deployments": [
        {"id": "cl900", "name": "two-a", "workspace_id": "ws", "wave": 1, "target": "12.4"},
        {"id": "cl901", "name": "two-b", "workspace_id": "ws", "wave": 1, "target": "13"}]}
    path = root / "inventory.yaml"
    path.write_text(yaml.safe_dump({"target": "13", "repos": repos}, sort_keys=False))
    return load_inventory(path, check_repos=False)


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    # The inventory is the one file: it is loaded once, every row's facts are data.
    return _inventory(tmp_path_factory.mktemp("planner"))


def decide(inventory: Inventory, names: list[str], targets: Targets,
           files: Mapping[str, RepoFile], deployed: Mapping[str, DeployedFact]
           ) -> dict[str, PlannedDeployment]:
    chosen = [inventory.deployment(n) for n in names]
    plan = build_plan(inventory, chosen, targets, CATALOG, files,
                      {inventory.deployment(n).id: f for n, f in deployed.items()}, {}, OPTIONS)
    return {p.deployment.name: p for p in plan.deployments}


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_the_planner_decides_each_row(inventory: Inventory, row: Row) -> None:
    name = f"{row.name}-d"
    planned = decide(inventory, [name], resolve_targets(inventory, CATALOG),
                     {row.name: row.dockerfile}, {name: row.deployed})[name]
    got = (planned.action, str(planned.target) if planned.target else None, planned.spec,
           planned.line, planned.refusal)
    assert got == (row.action, row.to, row.spec, row.line, row.refusal), planned.reason
    assert row.reason in planned.reason
    if row.writes is None:
        assert not planned.repo.changes
    else:
        assert planned.repo.new_text == row.writes


def test_one_dockerfile_asked_for_two_targets_is_refused_for_both(inventory: Inventory) -> None:
    decided = decide(inventory, ["two-a", "two-b"], resolve_targets(inventory, CATALOG),
                     {"two-targets": text(AF2, "12.3.0")},
                     {"two-a": at("12.3.0"), "two-b": at("12.3.0")})
    for planned in decided.values():
        assert (planned.action, planned.refusal) == ("refuse", "input")
        assert "different targets (12.4 → 12.4.0, 13 → 13.9.0)" in planned.reason


def test_a_spec_the_pins_do_not_hold_is_refused_by_policy(inventory: Inventory) -> None:
    pinned = Targets(resolve_pinned(CATALOG, {"3.1": parse_version("3.1-11")},
                                    pinned_by="rollout 4"), TargetSource.PINNED)
    decided = decide(inventory, ["af2-line-d", "af3-line-d"], pinned,
                     {"af2-line": text(AF2, "12.3.0"), "af3-line": text(AF3, "3.1-11")},
                     {"af2-line-d": at("12.3.0"), "af3-line-d": at("3.1-11")})
    af2, af3 = decided["af2-line-d"], decided["af3-line-d"]
    assert (af2.action, af2.target, af2.spec, af2.refusal) == ("refuse", None, "13", "policy")
    assert "its target '13' (from repo af2-line) is not one the active rollout pinned " \
           "('3.1' → 3.1-11)" in af2.reason
    # The pin holds even where the catalog has a newer patch: 3.1-11 is already there.
    assert (af3.action, str(af3.target)) == ("noop", "3.1-11")


def test_a_given_target_replaces_every_layer(inventory: Inventory) -> None:
    given = single(parse_spec("12.4"))
    targets = Targets(resolve_pinned(CATALOG, {"12.4": parse_version("12.4.0")},
                                     pinned_by="rollout 2"),
                      TargetSource.PINNED, given, "rollout 2 (--target 12.4)")
    decided = decide(inventory, ["af2-line-d", "af3-line-d"], targets,
                     {"af2-line": text(AF2, "12.3.0"), "af3-line": text(AF3, "3.1-11")},
                     {"af2-line-d": at("12.3.0"), "af3-line-d": at("3.1-11")})
    assert (decided["af2-line-d"].action, str(decided["af2-line-d"].target)) == \
        ("upgrade", "12.4.0")
    assert decided["af3-line-d"].action == "not_targeted"
    assert "from rollout 2 (--target 12.4)" in decided["af3-line-d"].reason


def test_fresh_targets_say_where_they_come_from(inventory: Inventory) -> None:
    layers = resolve_targets(inventory, CATALOG)
    assert (layers.source, layers.given) == (TargetSource.INVENTORY, None)
    assert set(layers.resolutions) == {"13", "3.1", "12.4"}
    flagged = resolve_targets(inventory.overridden(single(parse_spec("12.4"))), CATALOG)
    assert (flagged.source, str(flagged.given), set(flagged.resolutions)) == \
        (TargetSource.FLAG, "12.4", {"12.4"})
