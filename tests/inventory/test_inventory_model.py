"""A valid inventory becomes plain data: paths, runners, waves, layered variables."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from upgrade.config.checker import parse_duration
from upgrade.config.control_plane import ControlPlaneConfig
from upgrade.config.inventory import Inventory, merge
from upgrade.config.settings import PACKAGED_PLAYBOOK, PathSetting
from upgrade.config.waves import WaveSettings
from upgrade.errors import InputError, InventoryError

from .conftest import FleetDir


def test_realistic_fleet_loads_into_plain_data(realistic: Inventory) -> None:
    root = realistic.root
    assert [d.name for d in realistic.deployments] == [
        "billing-dev", "billing-staging", "billing-prod", "search-dev", "search-prod", "etl-prod",
    ]
    assert str(realistic.target) == "12.4" and realistic.target.for_line("airflow2").kind == "line"
    assert realistic.catalog.feed == str(root / "feeds" / "runtime.json")
    assert realistic.catalog.mode == "extend"
    assert realistic.journal.dir == root / "state" / "journal"
    assert realistic.journal.file == root / "state" / "journal" / "journal.db"
    # Settings sections come typed, validated when loaded, paths resolved.
    assert realistic.control_plane.api_url == "http://127.0.0.1:18764/v1"
    assert realistic.control_plane.wait_timeout == 600.0
    assert realistic.notifications is not None
    assert realistic.notifications.events == ("wave_halted",)

    billing = realistic.repos["billing"]
    assert billing.path == root / "repos" / "billing" and billing.path.is_absolute()
    assert billing.dockerfile == "Dockerfile" and billing.template is None
    assert billing.runner == "local" and billing.groups == ("eu",)
    search = realistic.repos["search"]
    assert search.dockerfile_path == root / "repos" / "search" / "docker" / "Dockerfile.astro"
    etl = realistic.repos["etl"]
    assert etl.path == Path("/srv/astro/etl")
    assert etl.template is not None and etl.template.name == "standard.Dockerfile.j2"
    assert dict(etl.template.vars) == {"python": "3.12"}

    build = realistic.runners["build-1"]
    assert (build.host, build.port, build.user, build.known_hosts, build.parallel) == (
        "build-1.internal", 22, "deploy", "accept-new", 8)
    assert build.key_file == root / "keys" / "build" and not build.is_local
    assert realistic.runners["local"].parallel == 2 and realistic.runners["local"].is_local
    etl_prod = realistic.deployment("etl-prod")
    assert realistic.runner_of(etl_prod) is build

    staging = realistic.deployment("clb0stg")  # by id
    assert staging.name == "billing-staging" and staging.workspace_id == "ws-np"
    assert staging.groups == frozenset({"staging", "nonprod", "eu"})  # ancestors included


def test_wave_settings(realistic: Inventory) -> None:
    w1, w2, w3 = (realistic.waves[n] for n in (1, 2, 3))
    assert (w1.match, w1.batch, w1.soak_seconds, w1.approval) == (("canary",), (1,), 600, False)
    assert (w2.batch, w2.max_fail_percentage, w2.soak_seconds) == ((1, "50%"), 25, 5400)
    assert (w3.parallel, w3.batch, w3.max_failures, w3.approval, w3.soak_seconds) == (
        4, ("20%",), 1, True, 7200)
    assert w3.verify is not None and w3.verify.label == "waves.3.verify"
    assert w3.verify.checks == ({"name": "import_errors", "max_new": 0},)
    assert list(realistic.waves) == [1, 2, 3]


def test_waves_used_but_not_configured_get_defaults(fleet: FleetDir) -> None:
    inventory = fleet.load("""
        target: latest
        repos:
          app:
            path: repos/app
            deployments:
              - {id: a, name: a, workspace_id: w, wave: 5}
        """)
    assert inventory.waves == {5: WaveSettings(5)}
    assert inventory.waves[5].batch_sizes(7) == [7]


@pytest.mark.parametrize(("batch", "total", "sizes"), [
    ((), 5, [5]),
    ((10,), 23, [10, 10, 3]),
    (("30%",), 20, [6, 6, 6, 2]),  # of the whole wave, rounded down
    (("29%",), 100, [29, 29, 29, 13]),  # no float rounding down to 28
    (("10%",), 3, [1, 1, 1]),  # never 0
    ((1, 5, "20%"), 30, [1, 5, 6, 6, 6, 6]),  # a ramp: the last entry repeats
    ((4,), 0, []),
])
def test_batch_sizes_follow_ansible_serial(
    batch: tuple[int | str, ...], total: int, sizes: list[int]
) -> None:
    assert WaveSettings(1, batch=batch).batch_sizes(total) == sizes


def test_durations() -> None:
    assert [parse_duration(t) for t in ("30s", "10m", "1h30m", "2d", "1d2h3m4s")] == [
        30, 600, 5400, 172800, 93784]
    for bad in ("", "10", "1m1h", "10 m", "ten minutes"):
        with pytest.raises(InputError):
            parse_duration(bad)


# -- wave precedence -------------------------------------------------------------------

WAVES = """
target: "12.4"
groups:
  prod: {wave: 3}
  eu: {wave: 2}
  emea: {children: [eu]}
  late: {wave: 4}
waves:
  1:
    match: ["*-canary"]
  2:
    match: [app-canary, app-staging]
repos:
  app:
    path: repos/app
    deployments:
      - {id: d1, name: app-canary, workspace_id: w, groups: [prod]}
      - {id: d2, name: app-staging, workspace_id: w, groups: [prod]}
      - {id: d3, name: app-prod, workspace_id: w, groups: [prod, late]}
      - {id: d4, name: app-prod-eu, workspace_id: w, groups: [prod, eu]}
      - {id: d5, name: app-pinned, workspace_id: w, groups: [prod], wave: 7}
      - {id: d6, name: app-emea, workspace_id: w, groups: [late, emea]}
"""


def test_wave_precedence(fleet: FleetDir) -> None:
    inventory = fleet.load(WAVES)
    got = {d.name: (d.wave, d.wave_source) for d in inventory.deployments}
    assert got == {
        "app-canary": (1, "waves.1.match"),  # first matching rule in ascending order wins
        "app-staging": (2, "waves.2.match"),  # a rule beats the group's wave
        "app-prod": (3, "group prod"),  # lowest group wave
        "app-prod-eu": (2, "group eu"),
        "app-pinned": (7, "deployment"),  # the Deployment's own wave beats everything
        "app-emea": (4, "group late"),  # a child's wave does not flow up to its parent
    }


def test_group_wave_applies_through_parent_groups(fleet: FleetDir) -> None:
    inventory = fleet.load("""
        target: "12.4"
        groups:
          emea: {children: [eu], wave: 2}
          eu: {}
        repos:
          app:
            path: repos/app
            deployments:
              - {id: d1, name: app-eu, workspace_id: w, groups: [eu]}
        """)
    assert (inventory.deployments[0].wave, inventory.deployments[0].wave_source) == (
        2, "group emea")


# -- variable layering -----------------------------------------------------------------

def test_layering_order_and_merged_view(realistic: Inventory) -> None:
    view = realistic.merged_view("billing-staging")
    assert view["layers"] == [
        "defaults", "group eu", "group nonprod", "group staging", "repo billing",
        "deployment billing-staging",
    ]
    assert view["vars"] == {
        "owner": "platform", "alert": "email", "tier": "staging", "region": "eu",
        "team": "payments",
    }
    assert view["var_sources"] == {
        "owner": "defaults", "alert": "group nonprod", "tier": "group staging",
        "region": "group eu", "team": "repo billing",
    }
    assert (view["repo"], view["wave"], view["wave_source"], view["runner"]) == (
        "billing", 2, "group staging", "local")
    assert view["groups"] == ["eu", "nonprod", "staging"]
    assert view["id"] == "clb0stg" and view["workspace_id"] == "ws-np"
    assert view["path"] == str(realistic.root / "repos" / "billing")
    assert realistic.deployment("billing-staging").vars == view["vars"]


def test_deployment_vars_win_over_everything(realistic: Inventory) -> None:
    view = realistic.merged_view("clb0prd")
    assert view["vars"]["alert"] == "sms"
    assert view["var_sources"]["alert"] == "deployment billing-prod"
    assert view["vars"]["tier"] == "prod"


def test_template_appears_in_the_merged_view(realistic: Inventory) -> None:
    view = realistic.merged_view("etl-prod")
    assert view["template"] == {"name": "standard.Dockerfile.j2", "vars": {"python": "3.12"}}
    assert view["runner"] == "build-1"


def test_child_group_beats_parent_even_when_alphabetically_first(fleet: FleetDir) -> None:
    inventory = fleet.load("""
        target: "12.4"
        groups:
          zz-parent: {children: [aa-child], vars: {x: parent, y: parent}}
          aa-child: {vars: {x: child}}
          mm-unrelated: {vars: {y: unrelated}}
        repos:
          app:
            path: repos/app
            deployments:
              - {id: d1, name: a, workspace_id: w, wave: 1, groups: [aa-child, mm-unrelated]}
        """)
    view = inventory.merged_view("a")
    assert view["layers"][1:4] == ["group mm-unrelated", "group zz-parent", "group aa-child"]
    assert view["vars"] == {"x": "child", "y": "parent"}


def test_unrelated_groups_merge_alphabetically_later_wins(fleet: FleetDir) -> None:
    inventory = fleet.load("""
        target: "12.4"
        groups:
          b-team: {vars: {x: b}}
          a-team: {vars: {x: a}}
        repos:
          app:
            path: repos/app
            deployments:
              - {id: d1, name: a, workspace_id: w, wave: 1, groups: [b-team, a-team]}
        """)
    assert inventory.deployment("a").vars == {"x": "b"}


def test_a_layer_replaces_a_variable_whole(fleet: FleetDir) -> None:
    inventory = fleet.load("""
        target: "12.4"
        defaults:
          vars: {env: {A: "1", B: "2"}}
        repos:
          app:
            path: repos/app
            vars: {env: {A: "9"}}
            deployments:
              - {id: d1, name: a, workspace_id: w, wave: 1}
        """)
    assert inventory.deployment("a").vars == {"env": {"A": "9"}}


def test_merge_logs_each_layer_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="upgrade.config.inventory"):
        values, sources = merge([("defaults", {"a": 1}), ("repo x", {}), ("deployment d", {"a": 2})])
    assert values == {"a": 2} and sources == {"a": "deployment d"}
    assert [r.getMessage() for r in caplog.records] == [
        "vars from defaults: a", "vars from deployment d: a"]


def test_unknown_deployment_has_a_did_you_mean(realistic: Inventory) -> None:
    with pytest.raises(InputError) as caught:
        realistic.merged_view("billing-prd")
    assert str(caught.value).startswith(
        "no Deployment is named 'billing-prd' or has that id. Did you mean 'billing-prod'?")


def test_catalog_url_feed_and_absolute_journal(fleet: FleetDir, tmp_path: Path) -> None:
    inventory = fleet.load(f"""
        target: "12.4"
        catalog:
          feed: https://updates.astronomer.io/astronomer-runtime
          mode: replace
        journal: {tmp_path / 'elsewhere'}
        repos:
          app:
            path: repos/app
            deployments: []
        """)
    assert inventory.catalog.mode == "replace"
    assert inventory.journal.dir == tmp_path / "elsewhere"
    assert inventory.deployments == () and list(inventory.repos) == ["app"]


def test_defaults_are_documented_values(fleet: FleetDir) -> None:
    inventory = fleet.load("""
        target: "12.4"
        repos:
          app:
            path: repos/app
            deployments: [{id: d1, name: a, workspace_id: w, wave: 1}]
        """)
    assert inventory.journal.dir == fleet.root / ".upgrade"
    assert inventory.catalog.feed is None and inventory.catalog.mode == "extend"
    assert list(inventory.runners) == ["local"] and inventory.runners["local"].parallel == 4
    assert inventory.control_plane == ControlPlaneConfig() and inventory.notifications is None
    assert inventory.repos["app"].dockerfile == "Dockerfile"


def test_defaults_dockerfile_and_runner_apply_to_repos(fleet: FleetDir) -> None:
    fleet.repo("odd", dockerfile="build/Dockerfile")
    inventory = fleet.load("""
        target: "12.4"
        runners:
          b1: {host: b1.internal}
        defaults:
          dockerfile: build/Dockerfile
          runner: b1
        repos:
          odd:
            path: repos/odd
            runner: local
            deployments: [{id: d1, name: a, workspace_id: w, wave: 1}]
          remote:
            path: /srv/remote
            deployments: [{id: d2, name: b, workspace_id: w, wave: 1}]
        """)
    assert inventory.repos["odd"].dockerfile == "build/Dockerfile"
    assert inventory.repos["remote"].runner == "b1"
    assert inventory.repos["remote"].path == Path("/srv/remote")


def test_the_documented_example_is_a_valid_inventory(tmp_path: Path, monkeypatch) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "inventory.md").read_text()
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    fleet = FleetDir(tmp_path)
    fleet.repo("billing")
    monkeypatch.setenv("FLEET_WEBHOOK_URL", "https://hooks.example.com/services/T0/B0/x")
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "runtime.json").write_text("{}")
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "upgrade.yaml").write_text(PACKAGED_PLAYBOOK.read_text())
    (tmp_path / "templates").mkdir()
    # The example's template-managed repo names its template, which must exist.
    (tmp_path / "templates" / "standard.Dockerfile.j2").write_text("FROM {{ runtime.image }}\n")
    inventory = fleet.load(example)
    assert inventory.playbook == PathSetting(tmp_path / "playbooks" / "upgrade.yaml",
                                             "inventory key playbook")
    assert inventory.templates.path == tmp_path / "templates"
    assert {d.name: d.wave for d in inventory.deployments} == {
        "billing-dev": 1, "billing-prod": 3, "etl-prod": 3, "reports-prod": 3}
    reports = inventory.repos["reports"]
    assert reports.managed is not None
    assert reports.path == tmp_path / ".upgrade" / "checkouts" / "reports" / "astro"
    assert inventory.merged_view("billing-dev")["vars"] == {
        "owner": "platform", "region": "eu", "alert": "email", "tier": "dev", "team": "payments"}


def test_playbook_and_templates_come_from_the_key_else_beside_else_the_package(tmp_path: Path):
    fleet = FleetDir(tmp_path)
    fleet.repo("billing")
    text = ("target: '12.4'\nrepos:\n  billing:\n    path: repos/billing\n    deployments:\n"
            "      - {id: b1, name: billing-dev, workspace_id: ws, wave: 1}\n")
    packaged = fleet.load(text)
    assert packaged.playbook.packaged and packaged.templates.packaged
    assert packaged.playbook.path == PACKAGED_PLAYBOOK
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "upgrade.yaml").write_text("name: mine\nsteps: []\n")
    beside = fleet.load(text)
    assert (beside.playbook.path, beside.playbook.source) == (
        tmp_path / "playbooks" / "upgrade.yaml", "beside the inventory")
    with pytest.raises(InventoryError) as caught:
        fleet.load("playbook: books/other.yaml\ntemplates: tpl\n" + text)
    assert [(p.line, p.key) for p in caught.value.problems] == [(1, "playbook"), (2, "templates")]
    assert "does not exist. Fix the path" in str(caught.value)
