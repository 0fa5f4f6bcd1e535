"""Messages about a file carry the file and line the user fixes, printed as plain text.

Found by the adversarial campaign of issue 14: an id Astro would refuse passed `inventory`;
a template mistake was reported at the template, not the inventory line that caused it; the
"newer than the target" refusal named no file; and a location on line 100 printed as 💯.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.harness import plan_offline, run_command
from upgrade.config.inventory_loader import load_inventory
from upgrade.errors import EXIT_INPUT, EXIT_POLICY, InventoryError
from upgrade.model.catalog import Catalog

BASE = """\
target: "13"
repos:
  app:
    path: repos/app
    deployments:
      - {id: cl1, name: app-dev, workspace_id: ws1, wave: 1}
"""


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    repo = tmp_path / "repos" / "app"
    repo.mkdir(parents=True)
    (repo / "Dockerfile").write_text("# app\nFROM quay.io/astronomer/astro-runtime:12.4.0\n")
    return tmp_path


def problems(path: Path) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(("key", "value"), [
    ("workspace_id", "ws-evil;x"),
    ("workspace_id", "-rf"),
    ("workspace_id", "ws 1"),
    ("id", "$(id)"),
    ("id", "a" * 101),
])
def test_an_id_astro_would_refuse_is_refused_at_load(fleet: Path, key: str, value: str) -> None:
    path = fleet / "inventory.yaml"
    path.write_text(BASE.replace(f"{key}: {'ws1' if key == 'workspace_id' else 'cl1'}",
                                 f"{key}: '{value}'"))
    found = problems(path)
    assert len(found) == 1, found
    assert found[0].startswith(f"{path}:6: repos.app.deployments[0].{key}: '"), found
    assert "is not an Astro id" in found[0]


def test_the_inventory_command_refuses_a_bad_workspace_id(fleet: Path) -> None:
    (fleet / "inventory.yaml").write_text(BASE.replace("workspace_id: ws1",
                                                       "workspace_id: 'ws-evil;x'"))
    run = run_command(["inventory"], fleet)
    assert run.code == EXIT_INPUT, run.stdout + run.stderr
    assert "inventory.yaml:6: repos.app.deployments[0].workspace_id: 'ws-evil;x'" in run.stderr


TEMPLATED = """\
target: "13"
repos:
  app:
    path: repos/app
    template:
      name: {name}
      vars:
        env: {env}
    deployments:
      - {{id: cl1, name: app-dev, workspace_id: ws1, wave: 1}}
"""


def test_a_missing_template_is_refused_at_the_inventory_line(fleet: Path) -> None:
    path = fleet / "inventory.yaml"
    path.write_text(TEMPLATED.format(name="standrad.Dockerfile.j2", env="{}"))
    found = problems(path)
    assert len(found) == 1 and found[0].startswith(
        f"{path}:6: repos.app.template.name: no template 'standrad.Dockerfile.j2' in "), found
    assert "standard.Dockerfile.j2" in found[0]  # what there is


@pytest.mark.parametrize("env", ['"oops"', "[1, 2]", "{A: {b: c}}", "{'not an env': x}"])
def test_a_template_var_of_the_wrong_type_is_reported_at_the_inventory_line(
        fleet: Path, catalog: Catalog, env: str) -> None:
    path = fleet / "inventory.yaml"
    path.write_text(TEMPLATED.format(name="standard.Dockerfile.j2", env=env))
    outcome = plan_offline(path, catalog)
    assert outcome.code == EXIT_INPUT, outcome.text
    assert len(outcome.located) == 1, outcome.located
    reason = outcome.located[0]
    # The inventory line first (where the var is fixed), then the template's own line.
    assert reason.startswith(f"{path}:7: repos.app.template.vars: rendering this repo's "
                             "template failed: templates/standard.Dockerfile.j2:"), reason


def test_the_newer_than_the_target_refusal_names_the_dockerfile_line(
        fleet: Path, catalog: Catalog) -> None:
    (fleet / "repos" / "app" / "Dockerfile").write_text(
        "# app\nARG V=12.5.0\nFROM quay.io/astronomer/astro-runtime:${V}\n")
    path = fleet / "inventory.yaml"
    path.write_text(BASE.replace('target: "13"', 'target: "12.4"'))
    outcome = plan_offline(path, catalog)
    assert outcome.code == EXIT_POLICY, outcome.text
    assert len(outcome.refusals) == 1, outcome.refusals
    assert outcome.refusals[0].startswith(
        "repos/app/Dockerfile:2: The Dockerfile already holds 12.5.0, newer than the target "
        "12.4."), outcome.refusals


@pytest.mark.parametrize("line", [100, 1234])
def test_a_location_on_line_100_or_1234_prints_as_text_not_an_emoji(fleet: Path,
                                                                    line: int) -> None:
    """rich reads ``:100:`` as an emoji code unless told not to (``inventory.yaml💯``)."""
    (fleet / "inventory.yaml").write_text(BASE + "#\n" * (line - 7) + "colour: red\n")
    run = run_command(["inventory"], fleet)
    assert run.code == EXIT_INPUT
    assert f"inventory.yaml:{line}: colour: unknown key." in run.stderr, run.stderr
    assert "💯" not in run.stderr
