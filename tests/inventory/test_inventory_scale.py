"""Loading works at fleet scale: 2,000 repos, 10,000 Deployments.

How fast is benchmarks/plan.py's figure (the same fleet size, load and plan, against a bare
YAML parse as the peer): the suite may share the machine, so it asserts no time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from upgrade.config.inventory_loader import load_inventory
from upgrade.errors import InventoryError

REPOS = 2000
ENVS = ("dev", "staging", "prod", "prod-eu", "qa")


def _write_fleet(root: Path, extra: str = "") -> Path:
    lines = [
        'target: "12.4"',
        "defaults:",
        "  vars: {owner: platform}",
        "groups:",
        "  prod: {vars: {tier: prod}, wave: 4}",
        "  nonprod: {children: [dev, staging]}",
        "  dev: {vars: {tier: dev}}",
        "  staging: {vars: {tier: staging}, wave: 2}",
        "  eu: {children: [eu-prod]}",
        "  eu-prod: {wave: 3}",
        "waves:",
        "  1: {match: ['repo-000*-dev'], batch: 1, soak: 5m}",
        "  2: {match: ['*-dev', '*-qa'], batch: '25%'}",
        "repos:",
    ]
    group_of = {"dev": "dev", "staging": "staging", "prod": "prod", "prod-eu": "eu-prod",
                "qa": "dev"}
    for r in range(REPOS):
        name = f"repo-{r:04d}"
        repo = root / "repos" / name
        repo.mkdir(parents=True)
        (repo / "Dockerfile").write_text("FROM quay.io/astronomer/astro-runtime:12.1.0\n")
        lines += [f"  {name}:", f"    path: repos/{name}",
                  "    groups: [eu]" if r % 3 == 0 else "    groups: []",
                  f"    vars: {{team: t{r % 17}}}", "    deployments:"]
        for k, env in enumerate(ENVS):
            lines += [f"      - id: clz{r:04d}{k}abcdefghij", f"        name: {name}-{env}",
                      f"        workspace_id: ws{r % 40}", f"        groups: [{group_of[env]}]",
                      f"        vars: {{env: {env}}}"]
    path = root / "inventory.yaml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


@pytest.fixture(scope="module")
def big_fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_fleet(tmp_path_factory.mktemp("big"))


def test_ten_thousand_deployments_load(big_fleet: Path) -> None:
    inventory = load_inventory(big_fleet)
    assert len(inventory.repos) == REPOS and len(inventory.deployments) == REPOS * len(ENVS)
    waves = {d.name: d.wave for d in inventory.deployments}
    assert waves["repo-0003-dev"] == 1 and waves["repo-0123-dev"] == 2
    assert waves["repo-0123-qa"] == 2 and waves["repo-0123-staging"] == 2
    assert waves["repo-0123-prod-eu"] == 3 and waves["repo-0123-prod"] == 4
    assert inventory.deployment("repo-1999-prod").vars == {
        "owner": "platform", "tier": "prod", "team": "t10", "env": "prod"}
    chosen = inventory.select(4, ["eu,!repo-000*"])
    assert len(chosen) == 667 - 4  # repos 0, 3, ..., 1998 minus repo-0000 .. repo-0009 in eu


def test_a_problem_at_the_end_of_a_big_fleet_is_found(tmp_path: Path) -> None:
    extra = ("  late:\n    path: repos/repo-0000\n    deployments:\n"
             "      - {id: clz00000abcdefghij, name: late-1, workspace_id: w, wave: 1}\n")
    path = _write_fleet(tmp_path, extra)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    (problem,) = caught.value.problems
    assert problem.key == "repos.late.deployments[0].id"
    assert problem.line == len(path.read_text().splitlines())
    assert problem.message.startswith(
        "Deployment id 'clz00000abcdefghij' is already used at line 20 "
        "(repos.repo-0000.deployments[0].id).")
