"""The product as a platform team installs it: the wheel, built from pyproject, in a fresh
venv, run from a directory that holds only an inventory and the repos.

Only the wheel's declared dependencies are installed (requirements.lock constrains their
versions, it adds nothing), so an import the package makes of an undeclared library fails
here: every module of the installed distribution is imported, then the commands a new
user runs first (`discover --merge`, `plan` with its Airflow 3 migration lint, a wave,
`report`) run from the venv's own `astro-fleet`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT

from upgrade.demo import sample_fleet

# Apart from `make test` (make test-package): pip makes it a minute quiet and several on a
# loaded machine. The time-out counts the test body, not the session's start-up; each step
# below has its own, so a stuck one fails with its output.
pytestmark = [pytest.mark.package, pytest.mark.timeout(1800, func_only=True)]

# Modules of the wheel that need an optional extra, with the extra: the simulator's pytest
# fixture is loaded by a test suite (the `test` extra), never by a command.
NEEDS_EXTRA = {"upgrade.sim.testing": "pytest"}

IMPORT_EVERY_MODULE = """
import importlib, importlib.metadata as md, json, sys
names = sorted(
    str(f)[:-3].replace("/", ".").removesuffix(".__init__")
    for f in md.files("astro-fleet-upgrade") if str(f).endswith(".py"))
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"imported": len(names) - len(failed), "failed": failed}))
"""


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "ASTRO_API_TOKEN", "ASTRO_SIM_URL",
                        "ASTRO_FLEET_INVENTORY")}
    env.update(COLUMNS="200", GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.invalid",
               GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="test@example.invalid")
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_wheel_installs_imports_everything_and_runs_a_wave_outside_the_checkout(
        tmp_path: Path):
    # Build from a copy of the sources (a build writes build/ and *.egg-info beside them).
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copytree(ROOT / "bin", src / "bin")
    shutil.copytree(ROOT / "upgrade", src / "upgrade",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    built = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                  str(tmp_path / "dist"), str(src)], tmp_path)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("astro_fleet_upgrade-*.whl"))
    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", str(venv)], tmp_path).returncode == 0
    # -c: the lock's versions for what the wheel declares; nothing the wheel does not name.
    installed = _run([str(venv / "bin" / "pip"), "install", "-q", "-c",
                      str(ROOT / "requirements.lock"), str(wheel)], tmp_path, timeout=600)
    assert installed.returncode == 0, installed.stderr
    python = str(venv / "bin" / "python")

    fleet = tmp_path / "fleet"
    fleet.mkdir()
    shutil.copy(ROOT / "inventory.yaml", fleet / "inventory.yaml")
    sample_fleet.create(fleet / "inventory.yaml", ROOT / "examples" / "sample-fleet")
    assert sorted(p.name for p in fleet.iterdir()) == ["demo-fleet", "inventory.yaml"]
    astro_fleet = str(venv / "bin" / "astro-fleet")

    where = _run([python, "-c", "import upgrade; print(upgrade.__file__)"], fleet)
    assert where.stdout.startswith(str(venv)), where.stdout  # the wheel's, not the checkout's
    imported = _run([python, "-c", IMPORT_EVERY_MODULE], fleet)
    assert imported.returncode == 0, imported.stderr
    import json

    doc = json.loads(imported.stdout)
    failed = {name: why for name, why in doc["failed"].items()
              if not (name in NEEDS_EXTRA and f"No module named '{NEEDS_EXTRA[name]}'" in why)}
    assert failed == {}, failed
    assert doc["imported"] > 100, doc
    print(f"fresh venv: {doc['imported']} modules of the wheel imported; needing an extra: "
          f"{sorted(doc['failed'])}")

    helped = _run([astro_fleet, "--help"], fleet)
    assert helped.returncode == 0 and "discover" in helped.stdout, helped.stderr
    version = _run([astro_fleet, "--version"], fleet)
    assert version.stdout.strip().startswith("astro-fleet ")
    planned = _run([astro_fleet, "plan", "--offline"], fleet)
    assert planned.returncode == 3, planned.stdout + planned.stderr  # partner-feeds is refused
    assert "Plan: 21 to upgrade, 2 to migrate to Airflow 3, 0 already at" in planned.stdout

    started = _run([astro_fleet, "sim.start", "--time-scale", "0.02"], fleet)
    assert started.returncode == 0, started.stderr
    try:
        assert _run([astro_fleet, "sim.seed"], fleet).returncode == 0
        # The Airflow 3 migration lint: the venv's own ruff over the migrating repo's DAGs.
        # (customer-360 opens pull requests: with no forge token here, the pre-flight blocks
        # it first, exit 7, naming the variable; the lint's findings are listed still.)
        linted = _run([astro_fleet, "plan", "--wave", "4", "--limit", "customer-360-prod",
                       "--json"], fleet)
        assert linted.returncode == 7, linted.stdout + linted.stderr
        [row] = json.loads(linted.stdout)["deployments"]
        assert "$GITHUB_TOKEN is not set" in row["reason"], row
        findings = json.loads(linted.stdout)["findings"]["customer-360"]
        assert findings and all(" AIR3" in f for f in findings), findings
        wave = _run([astro_fleet, "upgrade", "--wave", "1"], fleet)
        assert wave.returncode == 0, wave.stdout + wave.stderr
        assert "wave 1: PASSED" in wave.stdout
        # The packaged default playbook ran, and said so.
        assert "playbook: the packaged default" in wave.stderr
        # discover --merge round-trips the inventory (ruamel.yaml): the wave's deploys carry
        # git metadata, the seeded rest does not.
        found = _run([astro_fleet, "discover", "--merge", "--repos", "demo-fleet"], fleet)
        assert found.returncode == 0, found.stdout + found.stderr
        assert "inventory.yaml: added 0 Deployment(s);" in found.stdout, found.stdout
        report = _run([astro_fleet, "report"], fleet)
        assert report.returncode == 0, report.stdout + report.stderr
        html = fleet / ".upgrade" / "reports" / "rollout-1.html"
        assert f"report: {html}" in report.stdout and html.stat().st_size > 10_000
    finally:
        _run([astro_fleet, "sim.stop"], fleet)
    assert not (fleet / "playbooks").exists() and not (fleet / "templates").exists()
