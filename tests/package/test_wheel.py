"""The product as a platform team installs it: the wheel, built from pyproject, in a fresh
venv, run from a directory that holds only an inventory and the repos."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT

from upgrade.demo import sample_fleet

pytestmark = pytest.mark.slow


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "ASTRO_API_TOKEN", "ASTRO_SIM_URL",
                        "ASTRO_FLEET_INVENTORY")}
    env.update(COLUMNS="200", GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.invalid",
               GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="test@example.invalid")
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


# Each step has its own limit (_run: 300 s, the install 600 s); pytest's 120 s default ended
# the pip install on a loaded machine (load average 11), so the test's limit is a hang guard.
@pytest.mark.timeout(1800)
def test_the_wheel_installs_and_runs_a_wave_outside_the_checkout(tmp_path: Path):
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
    installed = _run([str(venv / "bin" / "pip"), "install", "-q", "-c",
                      str(ROOT / "requirements.lock"), str(wheel)], tmp_path, timeout=600)
    assert installed.returncode == 0, installed.stderr

    fleet = tmp_path / "fleet"
    fleet.mkdir()
    shutil.copy(ROOT / "inventory.yaml", fleet / "inventory.yaml")
    sample_fleet.create(fleet / "inventory.yaml", ROOT / "examples" / "sample-fleet")
    assert sorted(p.name for p in fleet.iterdir()) == ["demo-fleet", "inventory.yaml"]
    astro_fleet = str(venv / "bin" / "astro-fleet")

    where = _run([str(venv / "bin" / "python"), "-c", "import upgrade; print(upgrade.__file__)"],
                 fleet)
    assert where.stdout.startswith(str(venv)), where.stdout  # the wheel's, not the checkout's
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
        wave = _run([astro_fleet, "upgrade", "--wave", "1"], fleet)
        assert wave.returncode == 0, wave.stdout + wave.stderr
        assert "wave 1: PASSED" in wave.stdout
        # The packaged default playbook ran, and said so.
        assert "playbook: the packaged default" in wave.stderr
    finally:
        _run([astro_fleet, "sim.stop"], fleet)
    assert not (fleet / "playbooks").exists() and not (fleet / "templates").exists()
