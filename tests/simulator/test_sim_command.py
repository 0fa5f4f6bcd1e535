"""``fleet-sim``: the simulators' own command (start, seed from a file, token, stop), the
seed file's refusals, and the feed the simulated Astro serves."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from simulators import SimHandle

from fleet_sim.astro.catalog import CATALOG_PATH
from fleet_sim.astro.seeds import load_seed_file
from fleet_sim.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
FLEET_SIM = str(Path(sys.executable).parent / "fleet-sim")
ASTRO_SIM = str(Path(sys.executable).parent / "astro-sim")

SEEDS = """\
deployments:
  - {id: cm1salesdev0001, name: sales-etl-dev, workspace_id: ws-analytics, runtime_version: 12.1.0}
  - id: cm1evtdev000018
    name: events-stream-dev
    workspace_id: ws-analytics
    runtime_version: 3.1-12
    dags: [fleet_canary]
    import_errors: [{filename: broken.py, stack_trace: boom, timestamp: "2024-05-01T10:00:00Z"}]
"""
BAD = """\
deployments:
  - {id: dep-1, name: one, workspace_id: ws-1, runtime_version: banana}
  - id: dep-1
    name: ""
    workspace_id: ws-1
    runtime_version: 12.1.0
    dags: [{dag_id: x, tasks: 3}]
    colour: red
  - {name: three, workspace_id: ws-1, runtime_version: 12.1.0}
"""


def fleet_sim(*args: str, cwd: Path, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FLEET_SIM, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env=env)


def test_start_seed_from_a_file_token_and_stop(tmp_path: Path) -> None:
    (tmp_path / "deployments.yaml").write_text(SEEDS)
    (tmp_path / "bad.yaml").write_text(BAD)
    assert fleet_sim("status", cwd=tmp_path).returncode == 7  # nothing started yet
    started = fleet_sim("start", "--port", "0", "--time-scale", "0.01", cwd=tmp_path)
    try:
        assert started.returncode == 0, started.stderr
        url = json.loads((tmp_path / ".sim" / "server.json").read_text())["url"]
        assert started.stdout.startswith(f"simulator running at {url} (pid ")
        assert "time scale 0.01" in started.stdout
        seeded = fleet_sim("seed", "--file", "deployments.yaml", cwd=tmp_path)
        assert (seeded.returncode, seeded.stdout) == (
            0, f"seeded 2 Deployments into the simulator at {url}\n"), seeded.stderr
        refused = fleet_sim("seed", "--file", "bad.yaml", cwd=tmp_path)
        assert refused.returncode == 2
        assert refused.stderr.startswith("fleet-sim: bad.yaml:2: deployments[0].runtime_version: "
                                         "'banana' is not an Astro Runtime version")
        token = fleet_sim("token", cwd=tmp_path).stdout.strip()
        listed = subprocess.run(
            [ASTRO_SIM, "deployment", "list", "--workspace-id", "ws-analytics", "--json"],
            capture_output=True, text=True, timeout=60,
            env={"ASTRO_SIM_URL": url, "ASTRO_API_TOKEN": token, "PATH": ""})
        assert listed.returncode == 0, listed.stderr
        found = json.loads(listed.stdout.split("\n", 1)[1])["deployments"]
        # The bad file seeded nothing: only the two good ones, at their versions.
        assert sorted((d["deploymentId"], d["runtimeVersion"]) for d in found) == [
            ("cm1evtdev000018", "3.1-12"), ("cm1salesdev0001", "12.1.0")]
        again = fleet_sim("start", cwd=tmp_path)
        assert again.returncode == 0 and again.stdout.startswith("simulator already running")
        assert fleet_sim("status", cwd=tmp_path).stdout.startswith(f"simulator running at {url}")
    finally:
        stopped = fleet_sim("stop", cwd=tmp_path)
    assert stopped.stdout == "simulator stopped\n"
    gone = fleet_sim("status", cwd=tmp_path)
    assert gone.returncode == 7 and "fleet-sim start" in gone.stderr
    assert fleet_sim("seed", "--file", "deployments.yaml", cwd=tmp_path).returncode == 7


def test_a_seed_file_is_refused_whole_with_the_line_of_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    with pytest.raises(InputError) as err:
        load_seed_file(bad)
    assert str(err.value).splitlines() == [
        f"{bad}:2: deployments[0].runtime_version: 'banana' is not an Astro Runtime version "
        "(X.Y.Z, or A.B-N for Airflow 3)",
        f"{bad}:3: deployments[1].id: dep-1 is listed twice (also deployments[0])",
        f"{bad}:4: deployments[1].name: expected a non-empty string",
        f"{bad}:7: deployments[1].dags[0].tasks: expected a list of task ids",
        f"{bad}:8: deployments[1].colour: unknown field; known: airflow_api_url, "
        "airflow_version, cloud_provider, dags, description, executor, id, image_tag, "
        "import_errors, is_cicd_enforced, is_dag_deploy_enabled, name, namespace, "
        "organization_id, region, runtime_version, status, type, workspace_id, workspace_name",
        f"{bad}:9: deployments[2].id: this field is required",
    ]
    for text, problem in (("deployments: {}\n", "1: deployments: expected a list"),
                          ("[1, 2]\n", "1: deployments: expected a list"),
                          ("deployments: [\n", "2: not valid YAML"),
                          ("", " deployments: expected a list")):
        bad.write_text(text)
        with pytest.raises(InputError, match=re.escape(f"{bad}:{problem}")):
            load_seed_file(bad)
    with pytest.raises(InputError, match="cannot read the seed file"):
        load_seed_file(tmp_path / "missing.yaml")


def test_seeded_import_errors_and_dags_are_what_the_file_says(sim: SimHandle,
                                                                 tmp_path: Path) -> None:
    (tmp_path / "deployments.yaml").write_text(SEEDS)
    done = fleet_sim("seed", "--url", sim.url, "--file", "deployments.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    dep = sim.deployment("cm1evtdev000018")
    assert dep["import_errors"][0]["filename"] == "/usr/local/airflow/dags/broken.py"
    assert dep["import_errors"][0]["timestamp"].startswith("2024-05-01T10:00:00")
    assert dep["dags"]["fleet_canary"]["is_paused"] is True


def test_the_simulated_feed_is_the_product_s_catalog_snapshot() -> None:
    # Astronomer's feed (the simulator) and the product's bundled snapshot of it are one
    # file kept twice, because neither distribution may reach into the other.
    product = ROOT / "upgrade" / "model" / "data" / "runtime-catalog.yaml"
    assert CATALOG_PATH.read_bytes() == product.read_bytes(), (
        f"copy {product} over {CATALOG_PATH} (or the other way round): they must agree")


def test_fleet_sim_forge_serves_github_s_pull_requests_until_stopped(tmp_path: Path) -> None:
    bare = tmp_path / "x.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    url_file = tmp_path / "forge.url"
    forge = subprocess.Popen([FLEET_SIM, "forge", "--port", "0", "--url-file", str(url_file),
                              "acme/x=x.git"], cwd=tmp_path, env={**os.environ,
                                                                 "FORGE_SIM_TOKEN": "t0k"},
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30  # until it has bound its port (it writes the URL then)
        while not url_file.exists() and forge.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert url_file.exists(), forge.stderr.read() if forge.poll() is not None else "no URL"
        url = url_file.read_text().strip()
        listed = httpx.get(f"{url}/repos/acme/x/pulls", headers={"Authorization": "Bearer t0k"})
        assert (listed.status_code, listed.json()) == (200, [])
        refused = httpx.get(f"{url}/repos/acme/x/pulls", headers={"Authorization": "Bearer no"})
        assert refused.status_code == 401
        state = httpx.get(f"{url}/_forge/state").json()
        assert state["projects"]["acme/x"]["bare"] == str(bare)  # absolute, as git needs it
    finally:
        forge.terminate()
        forge.wait(timeout=30)
    bad = fleet_sim("forge", "acme/x", cwd=tmp_path)
    assert bad.returncode == 2 and "expected OWNER/NAME=PATH of a bare repository" in bad.stderr
