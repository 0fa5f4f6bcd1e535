"""``init --ci github|gitlab``: the pipelines are real, linted by the tools CI systems' users
run (actionlint with shellcheck for GitHub Actions; check-jsonschema's vendored
github-workflows and gitlab-ci schemas, the SchemaStore ones GitHub's and GitLab's editors
use), and say what the issue asks: team state in the PostgreSQL journal, the plan on pull
requests, one wave per manual run behind an approval, a pinned astro CLI, the reports as
artifacts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cli.test_onboarding import fleet
from upgrade.config.inventory_loader import load_inventory
from upgrade.config.scaffold import ASTRO_CLI_VERSION, JOURNAL_ENV
from upgrade.errors import InventoryError
from upgrade.plan.facts import GENERIC_GIT_METADATA, GITHUB_GIT_METADATA

BIN = Path(sys.executable).parent
FILES = {"github": ".github/workflows/runtime-upgrade.yml", "gitlab": ".gitlab-ci.yml"}
SCHEMAS = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}
JOURNAL = "postgresql://fleet@db.example/fleet"


def tool(*argv: str) -> subprocess.CompletedProcess[str]:
    """A linter from the venv, with the venv first on PATH (actionlint finds shellcheck)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fleet repo written by `init --ci` for each CI system."""
    roots = {}
    for ci in FILES:
        root = tmp_path_factory.mktemp(ci)
        out = fleet(root, "init", "--ci", ci, "--target", "12.4")
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"export its postgresql:// URL in {JOURNAL_ENV} here" in out.stdout
        roots[ci] = root
    return roots


@pytest.mark.parametrize("ci", FILES)
def test_the_pipeline_validates_against_its_published_schema(written: dict[str, Path],
                                                             ci: str) -> None:
    out = tool("check-jsonschema", "--builtin-schema", SCHEMAS[ci], str(written[ci] / FILES[ci]))
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_github_workflow_passes_actionlint_with_shellcheck(written: dict[str, Path]) -> None:
    assert tool("shellcheck", "--version").returncode == 0
    out = tool("actionlint", "-no-color", str(written["github"] / FILES["github"]))
    assert (out.returncode, out.stdout + out.stderr) == (0, "")


def test_the_gitlab_scripts_pass_shellcheck(written: dict[str, Path], tmp_path: Path) -> None:
    doc = yaml.safe_load((written["gitlab"] / FILES["gitlab"]).read_text("utf-8"))
    setup = doc["default"]["before_script"]
    for job in ("plan", "wave"):
        script = tmp_path / f"{job}.sh"
        lines = ["#!/bin/bash", *setup, *doc[job]["script"]]
        script.write_text("\n".join(lines) + "\n", "utf-8")
        out = tool("shellcheck", "--shell=bash", "--exclude=SC2154", str(script))
        assert out.returncode == 0, out.stdout  # SC2154: variables come from GitLab


def test_the_linters_catch_a_broken_pipeline(written: dict[str, Path], tmp_path: Path) -> None:
    """So that the checks above can fail: each tool refuses a broken copy."""
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    text = (written["github"] / FILES["github"]).read_text("utf-8")
    broken.write_text(text.replace('--wave "$WAVE"', "--wave ${{ inputs.wav }}"), "utf-8")
    out = tool("actionlint", "-no-color", str(broken))
    assert out.returncode == 1 and 'property "wav" is not defined' in out.stdout, out.stdout
    gitlab = tmp_path / "gitlab-ci.yml"
    gitlab.write_text((written["gitlab"] / FILES["gitlab"]).read_text("utf-8")
                      .replace("  resource_group:", "  resource_groupe:"), "utf-8")
    assert tool("check-jsonschema", "--builtin-schema", SCHEMAS["gitlab"],
                str(gitlab)).returncode == 1


def test_the_github_workflow_plans_prs_and_runs_one_approved_wave_per_dispatch(
        written: dict[str, Path]) -> None:
    doc = yaml.safe_load((written["github"] / FILES["github"]).read_text("utf-8"))
    on = doc[True]  # YAML 1.1 reads the key `on` as true
    assert on["workflow_dispatch"]["inputs"]["wave"]["type"] == "number"
    assert doc["concurrency"] == {"group": "runtime-upgrade", "cancel-in-progress": False}
    assert doc["env"][JOURNAL_ENV] == "${{ secrets." + JOURNAL_ENV + " }}"
    plan, wave = doc["jobs"]["plan"], doc["jobs"]["wave"]
    assert plan["if"] == "github.event_name == 'pull_request'"
    assert any("astro-fleet plan --detailed-exitcode" in s.get("run", "") for s in plan["steps"])
    assert wave["if"] == "github.event_name == 'workflow_dispatch'"
    assert wave["environment"] == "production"
    runs = [s.get("run", "") for s in wave["steps"]]
    assert any(r == 'astro-fleet upgrade --wave "$WAVE" --log-file astro-fleet.log' for r in runs)
    assert any('bash -s -- "v${ASTRO_CLI_VERSION}"' in r for r in runs)
    # A wave without the shared journal stops first, saying why.
    assert wave["steps"][0]["if"] == f"env.{JOURNAL_ENV} == ''"
    upload = wave["steps"][-1]
    assert upload["if"] == "always()" and upload["uses"].startswith("actions/upload-artifact@")
    assert {".upgrade/reports/*.html", ".upgrade/reports/*.md"} <= set(
        upload["with"]["path"].split())


def test_the_gitlab_pipeline_plans_mrs_and_runs_one_approved_wave_per_manual_run(
        written: dict[str, Path]) -> None:
    doc = yaml.safe_load((written["gitlab"] / FILES["gitlab"]).read_text("utf-8"))
    plan, wave = doc["plan"], doc["wave"]
    assert plan["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert "astro-fleet plan --detailed-exitcode" in "\n".join(plan["script"])
    assert wave["rules"][0]["when"] == "manual" and wave["allow_failure"] is False
    assert wave["environment"] == {"name": "production"}
    assert wave["resource_group"] == "runtime-upgrade"
    assert 'astro-fleet upgrade --wave "$WAVE" --log-file astro-fleet.log' in wave["script"]
    assert wave["artifacts"]["when"] == "always"
    assert {".upgrade/reports/*.html", ".upgrade/reports/*.md"} <= set(
        wave["artifacts"]["paths"])
    assert any("bash -s -- \"v${ASTRO_CLI_VERSION}\"" in line
               for line in doc["default"]["before_script"])


@pytest.mark.parametrize("ci", FILES)
def test_the_pinned_astro_cli_passes_the_git_mode_preflight(written: dict[str, Path],
                                                            ci: str) -> None:
    pinned = tuple(int(part) for part in ASTRO_CLI_VERSION.split("."))
    assert pinned >= GENERIC_GIT_METADATA >= GITHUB_GIT_METADATA
    assert f'ASTRO_CLI_VERSION: "{ASTRO_CLI_VERSION}"' in (written[ci] / FILES[ci]).read_text()


@pytest.mark.parametrize("ci", FILES)
def test_the_inventory_keeps_team_state_in_postgresql(written: dict[str, Path], ci: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(JOURNAL_ENV, raising=False)
    with pytest.raises(InventoryError) as refused:
        load_inventory(written[ci] / "inventory.yaml")
    assert f"journal.url_env: environment variable {JOURNAL_ENV} is not set" in str(refused.value)
    monkeypatch.setenv(JOURNAL_ENV, JOURNAL)
    inventory = load_inventory(written[ci] / "inventory.yaml")
    assert inventory.journal.backend == "postgresql" and inventory.journal.url == JOURNAL
