"""The shipped default playbook, the docs' examples, and contexts built from a real inventory."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from upgrade.config.inventory import Inventory
from upgrade.config.inventory_loader import load_inventory
from upgrade.config.playbook import Playbook, shared_vars, step_context
from upgrade.config.playbook_loader import load_playbook
from upgrade.config.settings import PACKAGED_PLAYBOOK
from upgrade.model.image import parse_image
from upgrade.model.template import RuntimeContext

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = PACKAGED_PLAYBOOK


@pytest.fixture(scope="module")
def shipped() -> Playbook:
    return load_playbook(SHIPPED)


@pytest.fixture
def fleet(tmp_path: Path) -> Inventory:
    """A small inventory: one repo feeding dev and prod, dev opting in to the parse step."""
    repo = tmp_path / "repos" / "billing"
    repo.mkdir(parents=True)
    (repo / "Dockerfile").write_text("FROM quay.io/astronomer/astro-runtime:12.1.0\n")
    (tmp_path / "inventory.yaml").write_text(textwrap.dedent("""\
        target: "12.4"
        defaults:
          vars: {owner: data-platform}
        repos:
          billing:
            path: repos/billing
            vars: {suite: smoke}
            deployments:
              - {id: cl-dev, name: billing-dev, workspace_id: ws1, wave: 1,
                 vars: {run_parse: true}}
              - {id: cl-prod, name: billing-prod, workspace_id: ws2, wave: 2}
    """))
    return load_inventory(tmp_path / "inventory.yaml")


def _runtime(version: str = "12.4.1") -> RuntimeContext:
    image = parse_image(f"quay.io/astronomer/astro-runtime:{version}-python-3.12")
    return RuntimeContext.from_image(image, airflow="2.10.5")


def test_the_shipped_playbook_loads_cleanly(shipped: Playbook) -> None:
    assert shipped.name == "Upgrade Astro Runtime"
    assert shipped.warnings == ()
    assert shipped.path == SHIPPED == ROOT / "upgrade" / "config" / "data" / "playbooks" / "upgrade.yaml"


def test_the_shipped_playbook_order_and_scopes(shipped: Playbook) -> None:
    assert [(s.kind, s.scope, s.safe_to_repeat) for s in shipped.steps] == [
        ("render", "repo", True),
        ("commit", "repo", True),
        ("run", "repo", True),
        ("deploy", "deployment", False),
        ("verify", "deployment", True),
    ]
    assert [s.kind for s in shipped.steps if s.scope == "repo"] == ["render", "commit", "run"]
    assert [s.kind for s in shipped.steps if s.scope == "deployment"] == ["deploy", "verify"]
    assert shipped.deploys


def test_the_shipped_playbook_renders_for_a_real_deployment(
    shipped: Playbook, fleet: Inventory
) -> None:
    dev = fleet.deployment("billing-dev")
    repo = fleet.repos[dev.repo]
    ctx = step_context(target="12.4.1", rollout="r1", wave=1, repo=repo, vars=dev.vars,
                       runtime=_runtime(), deployment=dev)
    render, commit, run, deploy, verify = shipped.steps
    assert render.render_args(ctx) == {"adopt": False}
    assert commit.render_args(ctx) == {
        "branch": "runtime-upgrade/12.4.1", "push": False, "remote": "origin", "message": None,
    }
    assert run.render_args(ctx)["argv"] == ["astro", "dev", "parse"]
    assert deploy.render_args(ctx)["description"] == (
        "Astro Runtime upgrade to 12.4.1 (rollout r1, wave 1)")
    assert verify.render_args(ctx)["checks"] == [{"name": "version"}, {"name": "healthy"}]
    assert ctx["deployment"] == {"name": "billing-dev", "id": "cl-dev", "workspace_id": "ws1"}
    assert ctx["repo"] == {"name": "billing", "path": str(repo.path)}
    assert ctx["runtime"] == {"version": "12.4.1", "airflow": "2.10.5", "python": "3.12"}
    assert ctx["vars"] == {"owner": "data-platform", "suite": "smoke", "run_parse": True}


def test_the_parse_step_is_off_unless_every_deployment_of_the_repo_opts_in(
    shipped: Playbook, fleet: Inventory
) -> None:
    run = next(s for s in shipped.steps if s.kind == "run")
    dev, prod = fleet.deployment("billing-dev"), fleet.deployment("billing-prod")
    repo = fleet.repos["billing"]

    def repo_context(*deployments: object) -> dict[str, object]:
        return step_context(target="12.4.1", rollout="r1", wave=1, repo=repo,
                            vars=shared_vars(deployments), runtime=_runtime())

    assert run.enabled(repo_context(dev)) is True
    assert run.enabled(repo_context(prod)) is False  # default: off
    # dev opts in, prod does not: the repo step sees only what both agree on.
    assert shared_vars([dev, prod]) == {"owner": "data-platform", "suite": "smoke"}
    assert run.enabled(repo_context(dev, prod)) is False
    assert "deployment" not in repo_context(dev)


def test_the_simulator_has_no_dev_parse_so_the_default_keeps_it_off() -> None:
    # If astro-sim ever implements `dev parse`, the shipped playbook can turn it on.
    done = subprocess.run([sys.executable, "-m", "fleet_sim.astro_cli.main", "dev", "parse"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode != 0
    assert 'unknown command "dev"' in done.stdout + done.stderr


def _doc_playbooks() -> list[str]:
    text = (ROOT / "docs" / "playbooks.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    return [b for b in blocks if b.lstrip().startswith(("name:", "steps:", "# playbooks/"))]


def test_the_docs_show_whole_playbooks() -> None:
    assert len(_doc_playbooks()) >= 2


@pytest.mark.parametrize("index", range(len(_doc_playbooks())))
def test_every_playbook_in_the_docs_loads(tmp_path: Path, index: int) -> None:
    path = tmp_path / "playbooks" / "example.yaml"
    path.parent.mkdir()
    path.write_text(_doc_playbooks()[index])
    playbook = load_playbook(path)
    assert playbook.steps


def test_the_docs_example_of_adding_a_pytest_step(tmp_path: Path) -> None:
    text = next(b for b in _doc_playbooks() if "pytest" in b and "deploy:" in b)
    path = tmp_path / "upgrade.yaml"
    path.write_text(text)
    playbook = load_playbook(path)
    tests = next(s for s in playbook.steps if s.kind == "run" and "pytest" in s.args["argv"])
    ctx = {"target": "12.4.1", "rollout": "r", "wave": 1, "vars": {},
           "repo": {"name": "billing", "path": "/r"}, "runtime": {"version": "12.4.1"}}
    assert tests.render_args(ctx)["argv"][:3] == ["astro", "dev", "pytest"]
    assert playbook.steps.index(tests) < [s.kind for s in playbook.steps].index("deploy")
