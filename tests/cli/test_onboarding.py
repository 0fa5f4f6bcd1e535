"""A fleet from nothing: `astro-fleet init` in an empty directory, `discover` from what the
(simulated) Astro knows, then `plan`; and what init and discover refuse."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from simulators import SimHandle, control_plane_settings
from support import ASTRO_FLEET, SampleFleet

from upgrade.config.inventory_loader import load_inventory
from upgrade.controlplane.deploy_record import normalise_remote
from upgrade.plan.discover import suggest_wave


def as_user(sim: SimHandle) -> dict[str, str]:
    """What a user trying the simulator has: its fake token exported and the venv's bin (with
    astro-sim) on PATH."""
    return {"ASTRO_API_TOKEN": sim.env["ASTRO_API_TOKEN"],
            "PATH": f"{Path(sim.astro_bin).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def with_control_plane(settings: dict) -> str:
    """An inventory with no repos whose control plane is ``settings``."""
    return yaml.safe_dump({"target": "12.4", "control_plane": settings, "repos": {}})


def fleet(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("ASTRO_API_TOKEN", "ASTRO_SIM_URL", "ASTRO_FLEET_INVENTORY")}
    return subprocess.run([ASTRO_FLEET, *args], cwd=cwd, capture_output=True, text=True,
                          env={**clean, "COLUMNS": "200", **(env or {})}, timeout=120)


def test_init_writes_a_valid_fleet_repo_and_never_overwrites(tmp_path: Path):
    out = fleet(tmp_path, "init", "--target", "12.4")
    assert out.returncode == 0, out.stderr
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    # No CI pipeline unless asked for (init --ci github|gitlab: tests/cli/test_ci_templates.py).
    assert files == [".gitignore", "inventory.yaml", "playbooks/upgrade.yaml", "tasks.py",
                     "templates/os-packages-private-index.Dockerfile.j2",
                     "templates/standard.Dockerfile.j2"]
    inv = load_inventory(tmp_path / "inventory.yaml")
    assert str(inv.target) == "12.4" and inv.deployments == () and sorted(inv.waves) == [1, 2, 3]
    assert inv.playbook.path == tmp_path / "playbooks" / "upgrade.yaml"
    assert inv.templates.path == tmp_path / "templates"
    assert (tmp_path / "tasks.py").read_text().count("\n") == 2
    assert ".upgrade/" in (tmp_path / ".gitignore").read_text()
    assert inv.journal.backend == "sqlite"
    # `invoke` works there too, through the two-line tasks.py.
    listed = subprocess.run([str(Path(ASTRO_FLEET).parent / "invoke"), "--list"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert listed.returncode == 0 and "discover" in listed.stdout, listed.stderr

    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    (tmp_path / "inventory.yaml").write_text("# mine\n")
    again = fleet(tmp_path, "init")
    assert again.returncode == 2
    assert again.stderr.startswith(f"error: {tmp_path} already has inventory.yaml, tasks.py, ")
    assert "init writes nothing over existing files" in again.stderr
    assert (tmp_path / "inventory.yaml").read_text() == "# mine\n"
    assert {p for p in tmp_path.rglob("*") if p.is_file()} == set(before)


@pytest.mark.parametrize("where", [".sim", "http://sim.example.com:18764", "ftp://127.0.0.1:1"])
def test_init_wants_the_simulator_s_url_on_this_machine(tmp_path: Path, where: str):
    out = fleet(tmp_path, "init", "--simulator", where)
    assert out.returncode == 2
    assert out.stderr.strip() == (f"error: --simulator {where}: expected the simulator's http:// "
                                  "URL on this machine, e.g. http://127.0.0.1:18764 (`fleet-sim "
                                  "start` prints it).")
    assert list(tmp_path.iterdir()) == []


def test_init_into_a_directory_with_one_clashing_file_names_it_and_writes_nothing(tmp_path: Path):
    (tmp_path / "tasks.py").write_text("# someone else's tasks\n")
    out = fleet(tmp_path, "init", str(tmp_path))
    assert out.returncode == 2
    assert out.stderr.strip() == (f"error: {tmp_path} already has tasks.py: init writes nothing "
                                  "over existing files. Move them away, or init another "
                                  "directory (astro-fleet init DIR).")
    assert [p.name for p in tmp_path.iterdir()] == ["tasks.py"]


def _deploy_all(sim: SimHandle, sample: SampleFleet, skip: set[str]) -> None:
    """Each Deployment deployed once from its repo's clean checkout, as the astro CLI does."""
    inv = load_inventory(sample.inventory, check_repos=False)

    def one(dep) -> None:
        repo = inv.repos[dep.repo].path
        out = sim.run("deploy", dep.id, "--workspace-id", dep.workspace_id, cwd=repo)
        assert out.returncode == 0, out.stdout + out.stderr

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, [d for d in inv.deployments if d.name not in skip]))


def test_init_discover_plan_in_an_empty_directory(sample_fleet: SampleFleet, sim: SimHandle,
                                                  tmp_path_factory: pytest.TempPathFactory):
    sample_fleet.use_simulator(sim.url)
    assert sample_fleet.seed() == 24
    # Deployed from a dirty tree (no git metadata): partner-feeds and the Airflow 3 migration.
    _deploy_all(sim, sample_fleet,
                skip={"partner-feeds-prod", "customer-360-dev", "customer-360-prod"})
    empty = tmp_path_factory.mktemp("fleet")
    repos = sample_fleet.root / "demo-fleet"

    init = fleet(empty, "init", "--simulator", sim.url, "--target", "12.4")
    assert init.returncode == 0, init.stderr
    # The simulator as configuration: its API, its astro-sim, plain http, where astro-sim finds it.
    written = load_inventory(empty / "inventory.yaml").control_plane
    assert (written.api_url, written.astro_bin, written.airflow_scheme, dict(written.extra_env)) \
        == (f"{sim.url}/v1", "astro-sim", "http", {"ASTRO_SIM_URL": sim.url})
    found = fleet(empty, "discover", "--merge", "--repos", str(repos), env=as_user(sim))
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith(f"24 Deployment(s) in 4 workspace(s) at {sim.url}/v1: "
                                   "8 repo(s), 3 unmapped.\n")
    assert "inventory.yaml: added 21 Deployment(s) in 8 new repo(s)." in found.stdout
    assert ("unmapped: customer-360-dev, customer-360-prod, partner-feeds-prod: their deploys "
            "carry no git metadata") in found.stderr
    text = (empty / "inventory.yaml").read_text()
    assert "# Written by `astro-fleet init`" in text  # init's comments survive the merge
    assert "#   - {id: cm1ptnprd000017, name: partner-feeds-prod" in text
    inv = load_inventory(empty / "inventory.yaml")
    by_name = {d.name: d for d in inv.deployments}
    assert len(by_name) == 21
    assert (by_name["sales-etl-dev"].wave, by_name["sales-etl-staging"].wave,
            by_name["sales-etl-prod"].wave) == (1, 2, 3)
    assert "production" in by_name["ml-platform-prod"].groups
    assert inv.repos["sales-etl"].path == repos / "sales-etl"
    assert {d.repo for d in inv.deployments if d.repo == "marketing-dbt"} == {"marketing-dbt"}
    assert "wave suggested by the -staging suffix" in text

    plan = fleet(empty, "plan", "--detailed-exitcode", env=as_user(sim))
    assert plan.returncode == 8, plan.stdout + plan.stderr
    # The Airflow 3 repos have no target in init's `target: "12.4"`: shown, not refused.
    assert ("Plan: 16 to upgrade, 0 already at their target, 5 not targeted, 0 refused."
            in plan.stdout)

    # A second discover adds nothing and keeps a hand-written comment and key, and the
    # CRLF line endings an editor on Windows saved the file with.
    edited = text.replace("journal: .upgrade", "journal: .upgrade  # kept by hand")
    edited = edited.replace("\n", "\r\n")
    (empty / "inventory.yaml").write_bytes(edited.encode())
    again = fleet(empty, "discover", "--merge", "--repos", str(repos), env=as_user(sim))
    assert again.returncode == 0, again.stderr
    assert "added 0 Deployment(s); 21 already listed." in again.stdout
    after = (empty / "inventory.yaml").read_bytes().decode()
    assert "journal: .upgrade  # kept by hand" in after
    assert after.count("# --- unmapped:") == 1
    assert after == edited


def test_discover_without_a_token_an_unknown_token_or_astro_unreachable_writes_nothing(
        tmp_path: Path, sim: SimHandle):
    no_token = fleet(tmp_path, "discover")
    assert no_token.returncode == 7
    assert no_token.stderr.startswith("error: cannot read https://api.astronomer.io/v1 (no "
                                      "token): set $ASTRO_API_TOKEN")
    assert list(tmp_path.iterdir()) == []

    (tmp_path / "inventory.yaml").write_text(with_control_plane(
        sim.control_plane_settings(extra_env={"ASTRO_API_TOKEN": "not-a-token"})))
    before = (tmp_path / "inventory.yaml").read_text()
    refused = fleet(tmp_path, "discover", "--merge")
    assert refused.returncode == 7, refused.stderr
    assert f"Astro's API refused the token (401) for GET {sim.url}/v1/organizations" in refused.stderr
    (tmp_path / "inventory.yaml").write_text(with_control_plane(
        control_plane_settings("http://127.0.0.1:9", http_retries=0)))
    before = (tmp_path / "inventory.yaml").read_text()
    down = fleet(tmp_path, "discover", "--merge")
    assert down.returncode == 7
    assert down.stderr.startswith("error: GET http://127.0.0.1:9/v1/organizations")
    assert down.stderr.strip().endswith("Nothing was written.")
    assert (tmp_path / "inventory.yaml").read_text() == before
    exists = fleet(tmp_path, "discover")
    assert exists.returncode == 2 and "--merge adds the Deployments it lacks" in exists.stderr


@pytest.mark.parametrize(("name", "wave", "why"), [
    ("sales-etl-dev", 1, "-dev"), ("x_development", 1, "-development"), ("a-stg", 2, "-stg"),
    ("a-staging", 2, "-staging"), ("a-prod", 3, "-prod"), ("a-production", 3, "-production"),
    ("adhoc", 3, "no -dev/-stg/-prod suffix"), ("devtools", 3, "no -dev"),
])
def test_waves_are_suggested_by_suffix(name, wave, why):
    got, reason = suggest_wave(name, (1, 2, 3))
    assert got == wave and why in reason and reason.startswith("suggested")
    assert suggest_wave("a-staging", (1,))[0] == 1  # a fleet with one wave


@pytest.mark.parametrize("url", ["git@gitlab.com:team/x.git", "https://gitlab.com/team/x",
                                 "ssh://git@GitLab.com:22/team/x.git/",
                                 "https://user:secret@gitlab.com/team/x.git"])
def test_one_repository_however_its_remote_is_written(url):
    assert normalise_remote(url) == "gitlab.com/team/x"


def test_discover_json_is_the_document(tmp_path: Path, sim: SimHandle):
    sim.add_deployment("dep-1", "billing-dev", runtime_version="12.4.0")
    (tmp_path / "inventory.yaml").write_text(with_control_plane(sim.control_plane_settings()))
    out = fleet(tmp_path, "discover", "--output", "-", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["written"] is None and doc["unmapped"][0]["name"] == "billing-dev"


def _found(dep_id: str, name: str, repository: tuple[str, str, str] | None):
    from upgrade.controlplane.deploy_record import DeployGit
    from upgrade.controlplane.deployment import DeploymentInfo
    from upgrade.plan.discover import Found

    info = DeploymentInfo(id=dep_id, name=name, workspace_id="ws", runtime_version="12.4.0",
                          airflow_version="", status="HEALTHY", image_tag="",
                          airflow_api_url="", webserver_url="", ci_cd_enforcement=True)
    if repository is None:
        return Found(info)
    account, repo, path = repository
    return Found(info, DeployGit("GITHUB", "a" * 40, account=account, repo=repo, path=path))


def test_repo_names_stay_unique_and_a_monorepo_gives_one_entry_per_project():
    from upgrade.plan.discover import discover

    found = discover([
        _found("d1", "dags-dev", ("acme", "dags", "")),
        _found("d2", "dags-prod", ("acme", "dags", "")),
        _found("d3", "other-dev", ("globex", "dags", "")),
        _found("d4", "mono-a-dev", ("acme", "mono", "astro/a")),
        _found("d5", "mono-b-dev", ("acme", "mono", "astro/b")),
        _found("d6", "orphan", None),
    ], {"github.com/acme/dags": "/src/dags"})
    assert {r.name: [d.id for d in r.deployments] for r in found.repos} == {
        "acme-dags": ["d1", "d2"], "globex-dags": ["d3"], "mono-astro-a": ["d4"],
        "mono-astro-b": ["d5"]}
    by_name = {r.name: r for r in found.repos}
    assert by_name["acme-dags"].path("/fleet") == "../src/dags"
    assert by_name["mono-astro-a"].path("/fleet") == "repos/mono/astro/a"  # one clone, two projects
    assert by_name["mono-astro-b"].path("/fleet") == "repos/mono/astro/b"
    assert by_name["globex-dags"].clone_url == "https://github.com/globex/dags.git"
    assert [d.id for d in found.unmapped] == ["d6"]
    assert found.unmapped[0].note() == ("Runtime 12.4.0; CI/CD enforced; wave suggested: no "
                                        "-dev/-stg/-prod suffix, so the last wave")


def test_init_targets_both_airflow_lines(tmp_path: Path):
    out = fleet(tmp_path, "init")
    assert out.returncode == 0, out.stderr
    inv = load_inventory(tmp_path / "inventory.yaml")
    specs = {line: str(spec) for line, spec in inv.target.specs.items()}
    assert set(specs) == {"airflow2", "airflow3"}, specs
    assert specs["airflow2"].startswith("13.") and specs["airflow3"].startswith("3."), specs


def test_discover_says_why_a_checkouts_deploys_carry_no_git_metadata(tmp_path: Path,
                                                                      sim: SimHandle):
    from simulators import make_astro_project

    src = tmp_path / "src"
    reasons = {
        "plain-path": ("/srv/git/plain-path.git", "origin '/srv/git/plain-path.git' is not a URL"),
        "no-origin": (None, "it has no 'origin' remote"),
        "mapped": ("git@gitlab.example.invalid:team/mapped.git", None),
    }
    for i, (name, (origin, _)) in enumerate(reasons.items()):
        make_astro_project(src / name, "FROM quay.io/astronomer/astro-runtime:12.4.0\n",
                           origin=origin)
        sim.add_deployment(f"dep-{i}", f"{name}-dev", runtime_version="12.4.0")
        deployed = sim.run("deploy", f"dep-{i}", "--workspace-id", "ws-1", cwd=src / name)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    (tmp_path / "fleet").mkdir()
    init = fleet(tmp_path / "fleet", "init", "--simulator", sim.url)
    assert init.returncode == 0, init.stderr

    found = fleet(tmp_path / "fleet", "discover", "--merge", "--repos", str(src), env=as_user(sim))

    assert found.returncode == 0, found.stdout + found.stderr
    assert "unmapped: no-origin-dev, plain-path-dev: their deploys carry no git metadata" in found.stderr
    for name, (_, why) in reasons.items():
        line = next((ln for ln in found.stderr.splitlines()
                     if ln.startswith(f"{src / name}: ")), None)
        if why is None:
            assert line is None, found.stderr
        else:
            assert line is not None and why in line, found.stderr
            assert "deploys from it carry no git metadata" in line
