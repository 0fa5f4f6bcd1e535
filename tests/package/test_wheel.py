"""The product as a platform team installs it: the wheel, built from this checkout as
`pip wheel .` builds it, in a fresh venv, run from a directory that holds only an inventory
and the repos.

Only the wheel's declared dependencies are installed (requirements.lock constrains their
versions, it adds nothing), so an import the package makes of an undeclared library fails
here: every module of the installed distribution is imported, then the commands a new
user runs first (`discover --merge`, `plan` with its Airflow 3 migration lint, a wave,
`report`) run from the venv's own `astro-fleet`. The simulators are another distribution:
not one of their files is in the product's wheel, and the installed product reaches them
through its inventory alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support import ROOT, SampleFleet

from demo import sample_fleet
from fleet_sim import lifecycle

# Apart from `make test` (make test-package): pip makes it a minute quiet and several on a
# loaded machine. The time-out counts the test body, not the session's start-up; each step
# below has its own, so a stuck one fails with its output.
pytestmark = [pytest.mark.package, pytest.mark.timeout(1800, func_only=True)]

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


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel .` of a copy of the checkout (every tracked file; a build writes build/ and
    *.egg-info beside the sources, so not in the checkout itself)."""
    tmp = tmp_path_factory.mktemp("wheel")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode().split("\0")
    src = tmp / "src"
    for name in filter(None, tracked):
        # The packaged templates and playbook are symlinks to the root's (one source):
        # copied as links, so the build follows them as it does in the checkout.
        if (ROOT / name).is_symlink() or (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name, follow_symlinks=False)
    built = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                  str(tmp / "dist"), "."], src)
    assert built.returncode == 0, built.stderr
    return next((tmp / "dist").glob("astro_fleet_upgrade-*.whl"))


def test_the_product_wheel_holds_no_simulator_file(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        scripts = next(archive.read(n).decode() for n in names
                       if n.endswith(".dist-info/entry_points.txt"))
    assert any(n.startswith("upgrade/controlplane/") for n in names)  # the listing is real
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"upgrade"}, tops
    assert not [n for n in names if "sim" in Path(n).name.lower() or "demo" in n]
    assert "astro-fleet = upgrade.cli.program:main" in scripts and "astro-sim" not in scripts


def test_the_wheel_carries_the_sample_fleets_templates_and_playbook(wheel: Path):
    """templates/ and playbooks/ at the root are the one source of what the wheel packages
    (and ``init`` copies): the same files, byte for byte."""
    sources = sorted([*(ROOT / "templates").iterdir(), *(ROOT / "playbooks").iterdir()])
    assert len(sources) >= 3
    with zipfile.ZipFile(wheel) as archive:
        packaged = {n: archive.read(n) for n in archive.namelist()
                    if n.startswith(("upgrade/config/data/templates/",
                                     "upgrade/config/data/playbooks/"))}
    expected = {f"upgrade/config/data/{p.parent.name}/{p.name}": p.read_bytes() for p in sources}
    assert packaged == expected


def test_the_wheel_installs_imports_everything_and_runs_a_wave_outside_the_checkout(wheel: Path, tmp_path: Path):
    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", str(venv)], tmp_path).returncode == 0
    # -c: the lock's versions for what the wheel declares; nothing the wheel does not name.
    installed = _run([str(venv / "bin" / "pip"), "install", "-q", "-c",
                      str(ROOT / "requirements.lock"), str(wheel)], tmp_path, timeout=600)
    assert installed.returncode == 0, installed.stderr

    fleet = tmp_path / "fleet"
    fleet.mkdir()
    shutil.copy(ROOT / "inventory.yaml", fleet / "inventory.yaml")
    sample_fleet.create(fleet / "inventory.yaml", ROOT / "examples" / "sample-fleet")
    assert sorted(p.name for p in fleet.iterdir()) == ["demo-fleet", "inventory.yaml"]
    astro_fleet, python = str(venv / "bin" / "astro-fleet"), str(venv / "bin" / "python")

    where = _run([python, "-c", "import upgrade; print(upgrade.__file__)"], fleet)
    assert where.stdout.startswith(str(venv)), where.stdout  # the wheel's, not the checkout's
    alone = _run([python, "-c", "import fleet_sim"], fleet)
    assert "No module named 'fleet_sim'" in alone.stderr  # the simulators are not installed
    imported = _run([python, "-c", IMPORT_EVERY_MODULE], fleet)
    assert imported.returncode == 0, imported.stderr
    doc = json.loads(imported.stdout)
    assert doc["failed"] == {}, doc["failed"]
    assert doc["imported"] > 100, doc
    print(f"fresh venv: {doc['imported']} modules of the wheel imported, none failed")

    helped = _run([astro_fleet, "--help"], fleet)
    assert helped.returncode == 0 and "discover" in helped.stdout, helped.stderr
    version = _run([astro_fleet, "--version"], fleet)
    assert version.stdout.strip().startswith("astro-fleet ")
    planned = _run([astro_fleet, "plan", "--offline"], fleet)
    assert planned.returncode == 3, planned.stdout + planned.stderr  # partner-feeds is refused
    assert "Plan: 21 to upgrade, 2 to migrate to Airflow 3, 0 already at" in planned.stdout

    # The simulator runs from the checkout's venv; the installed product knows it only as the
    # inventory's control_plane (its URL, this venv's astro-sim, a fake token).
    info = lifecycle.start(tmp_path / "sim", time_scale=0.02)
    try:
        SampleFleet(fleet).use_simulator(info.url)
        assert "control_plane:\n  api_url: " in (fleet / "inventory.yaml").read_text()
        lifecycle.seed(info.url, sample_fleet.seed_specs(fleet / "inventory.yaml"))
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
        lifecycle.stop(tmp_path / "sim")
    assert not (fleet / "playbooks").exists() and not (fleet / "templates").exists()
