"""Create the sample fleet's repos (examples/sample-fleet) as real Astro projects with git,
and the simulated Astro's Deployments they feed.

`make demo` runs this so the committed inventory.yaml points at real repositories; the
tests use it to get a believable fleet. Template-managed repos get their Dockerfile
rendered from their template at the version given in ``STARTING_VERSIONS``. Each repo has
an ``origin``: a bare repository beside the checkouts (``<dir>/.remotes/<repo>.git``),
reached by a ``file://`` URL, so deploys carry git metadata as from a hosted remote. A repo
whose ``git.deploy`` is ``ci`` gets a ``post-receive`` hook standing in for its CI's deploy
action (``fleet_sim.ci``): a push to ``main`` deploys its Deployments through the simulator
the inventory's ``control_plane`` reaches. ``seed_specs`` is what the simulated Astro holds
before the demo starts: every inventory Deployment at its Dockerfile's version.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from fleet_sim import ci
from upgrade.config.inventory import Deployment, Inventory
from upgrade.config.inventory_loader import load_inventory
from upgrade.config.settings import PACKAGED_TEMPLATES
from upgrade.model.catalog import load_catalog
from upgrade.model.dockerfile import find_base_image
from upgrade.model.template import render_template
from upgrade.model.versions import parse_version
from upgrade.plan.planner import runtime_context

# Seconds between a push to main and the CI stand-in's deploy.
CI_DELAY = 1.0

# The version a template-managed sample repo starts from (its Dockerfile is rendered).
STARTING_VERSIONS = {"data-quality": "12.1.0"}

ASTRO_CONFIG = "project:\n  name: {name}\n"
EXAMPLE_DAG = '''"""A small DAG so every sample project has something to parse and deploy."""

from datetime import datetime

from airflow.decorators import dag, task


@dag(start_date=datetime(2024, 1, 1), schedule="@daily", catchup=False, tags=["{name}"])
def {ident}_daily():
    @task
    def extract() -> int:
        return 42

    extract()


{ident}_daily()
'''
# The DAG wave 1's canary check triggers once the new Runtime runs (inventory.yaml).
CANARY_DAG = '''"""The fleet's canary: one task, triggered by the upgrade's dag_run check."""

from datetime import datetime

from airflow.decorators import dag, task


@dag(dag_id="fleet_canary", start_date=datetime(2024, 1, 1), schedule=None, catchup=False,
     tags=["canary"])
def fleet_canary():
    @task
    def ping() -> str:
        return "pong"

    ping()


fleet_canary()
'''
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Sample Fleet",
    "GIT_AUTHOR_EMAIL": "sample-fleet@example.invalid",
    "GIT_COMMITTER_NAME": "Sample Fleet",
    "GIT_COMMITTER_EMAIL": "sample-fleet@example.invalid",
}


def create(inventory_path: Path, examples: Path, *, fresh: bool = True) -> list[Path]:
    """Materialise every inventory repo found in ``examples/<repo>`` as a git repository.

    Reads the inventory as plain YAML: the repos do not exist yet, so the validating
    loader (which checks that repo paths exist) cannot be used before this runs.
    """
    doc = yaml.safe_load(inventory_path.read_text("utf-8")) or {}
    root = inventory_path.resolve().parent
    catalog = load_catalog()
    created = []
    for name, spec in (doc.get("repos") or {}).items():
        source = examples / name
        if not source.is_dir():
            continue
        path = root / spec["path"]
        if fresh and path.exists():
            shutil.rmtree(path)
        shutil.copytree(source, path, dirs_exist_ok=True)
        (path / ".astro").mkdir(exist_ok=True)
        (path / ".astro" / "config.yaml").write_text(ASTRO_CONFIG.format(name=name))
        (path / "dags").mkdir(exist_ok=True)
        ident = name.replace("-", "_")
        (path / "dags" / f"{ident}.py").write_text(EXAMPLE_DAG.format(name=name, ident=ident))
        (path / "dags" / "fleet_canary.py").write_text(CANARY_DAG)
        template = spec.get("template")
        if template:
            version = parse_version(STARTING_VERSIONS.get(name, "12.1.0"))
            templates = root / doc["templates"] if doc.get("templates") else PACKAGED_TEMPLATES
            text = render_template(
                templates,
                template["name"],
                runtime=runtime_context(version, catalog),
                vars=dict(template.get("vars") or {}),
            )
            (path / spec.get("dockerfile", "Dockerfile")).write_text(text, newline="")
        remote = path.parent / ".remotes" / f"{name}.git"
        if fresh and remote.exists():
            shutil.rmtree(remote)
        _git_init(path, remote)
        if (spec.get("git") or {}).get("deploy") == "ci":
            ci.install(remote, branch="main", astro_bin=astro_sim(), delay=CI_DELAY,
                       sim_url=simulator_url(doc),
                       deployments=[{"id": d["id"], "workspace_id": d["workspace_id"]}
                                    for d in spec.get("deployments") or ()])
        created.append(path)
    return created


def astro_sim() -> str:
    """``astro-sim`` installed beside this interpreter (the venv's bin), else on $PATH."""
    beside = Path(sys.executable).parent / "astro-sim"  # not resolved: a venv's python is a link
    return str(beside) if beside.exists() else "astro-sim"


def simulator_url(doc: dict[str, Any]) -> str:
    """The simulator an inventory reaches: the ``ASTRO_SIM_URL`` its control plane gives
    astro-sim."""
    return doc["control_plane"]["extra_env"]["ASTRO_SIM_URL"]


def seed_specs(inventory_path: Path) -> list[dict[str, Any]]:
    """The simulated Astro's Deployments for an inventory: each at its Dockerfile's version,
    with the DAGs its ``dag_run`` checks trigger (paused, as new DAGs are in Airflow)."""
    inv = load_inventory(inventory_path, check_repos=False)
    specs = []
    for dep in inv.deployments:
        dockerfile = inv.repos[dep.repo].dockerfile_path
        version = find_base_image(dockerfile.read_text("utf-8"), path=str(dockerfile)).version
        specs.append({"id": dep.id, "name": dep.name, "workspace_id": dep.workspace_id,
                      "runtime_version": str(version),
                      "dags": [*canary_dags(inv, dep), scheduled_dag(dep.repo)]})
    return specs


def scheduled_dag(repo: str) -> dict[str, Any]:
    """The repo's example DAG as the simulated Airflow runs it: a run every simulated
    minute (a "daily" DAG, sped up so a soak sees runs), with two hours of history before
    the seed (the soak analysis's baseline reads it), each run taking 5 s."""
    return {"dag_id": f"{repo.replace('-', '_')}_daily", "is_paused": False,
            "schedule_seconds": 60, "history_seconds": 7200, "run_seconds": 5,
            "tasks": ["extract", "load"]}


def write_seed_file(inventory_path: Path, seed_file: Path) -> int:
    """Write ``seed_specs`` as a seed file for ``fleet-sim seed --file``; how many."""
    specs = seed_specs(inventory_path)
    lines = ["# What the simulated Astro holds when the demo starts: every Deployment of",
             "# inventory.yaml at its Dockerfile's version (fleet-sim seed --file THIS).",
             "deployments:"]
    lines += [f"  - {yaml.safe_dump(spec, default_flow_style=True, sort_keys=False).strip()}"
              for spec in specs]
    seed_file.write_text("\n".join(lines) + "\n", "utf-8")
    return len(specs)


def canary_dags(inv: Inventory, dep: Deployment) -> list[str]:
    """The DAGs the inventory's ``dag_run`` checks (its wave's, its own) expect it to have."""
    wave = inv.waves.get(dep.wave)
    found: list[str] = []
    for layer in (wave.verify if wave else None, dep.verify):
        for check in (layer.checks or ()) if layer else ():
            dag_id = check.get("dag_id")
            if check["name"] == "dag_run" and dag_id and dag_id not in found:
                found.append(dag_id)
    return found


def remote_of(inventory_path: Path, name: str) -> Path:
    """The bare ``origin`` of sample repo ``name``."""
    doc = yaml.safe_load(inventory_path.read_text("utf-8")) or {}
    path = inventory_path.resolve().parent / doc["repos"][name]["path"]
    return path.parent / ".remotes" / f"{name}.git"


def _git_init(path: Path, remote: Path) -> None:
    env = {**os.environ, **GIT_ENV}

    def git(*args: str, cwd: Path = path) -> None:
        subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "Initial Astro project")
    remote.parent.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "--bare", "-b", "main", str(remote), cwd=remote.parent)
    git("remote", "add", "origin", remote.resolve().as_uri())
    git("push", "-q", "-u", "origin", "main")
