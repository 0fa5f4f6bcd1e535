"""Verification settings: read and checked with the inventory, then merged playbook → wave →
Deployment; every refusal names its file, line and key."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from upgrade.config import verify
from upgrade.config.inventory import Inventory
from upgrade.config.inventory_loader import load_inventory
from upgrade.config.playbook import step_context
from upgrade.config.playbook_loader import load_playbook
from upgrade.errors import InventoryError, PlaybookError

INVENTORY = """\
target: "13.8"
groups:
  prod:
    vars:
      verify:
        checks: [{name: import_errors, timeout: 5m}]
waves:
  1:
    match: billing-dev
  2:
    match: [billing-prod, billing-eu]
    verify:
      inconclusive: pass
      checks:
        - {name: http, url: "https://billing.example.com/health", expect_status: 204}
        - {name: import_errors, max_new: 1}
repos:
  billing:
    path: repos/billing
    deployments:
      - id: clbdev
        name: billing-dev
        workspace_id: ws-np
      - id: clbprod
        name: billing-prod
        workspace_id: ws-p
        vars:
          verify:
            timeout: 20m
            checks:
              - {name: health, enabled: false}
              - {name: command, argv: [pytest, tests/smoke], expect_exit: 0}
      - id: clbeu
        name: billing-eu
        workspace_id: ws-p
        groups: [prod]
"""

PLAYBOOK = """\
name: Upgrade
steps:
  - deploy: {}
  - verify:
      timeout: 900
      poll_interval: 10
      checks: [health, version, {name: import_errors, max_new: 0}, airflow_version]
"""


def write_inventory(tmp_path: Path, text: str) -> Inventory:
    (tmp_path / "repos" / "billing").mkdir(parents=True)
    (tmp_path / "repos" / "billing" / "Dockerfile").write_text(
        "FROM quay.io/astronomer/astro-runtime:12.4.0\n")
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    return load_inventory(path)


def playbook_args(tmp_path: Path) -> dict:
    """The verify step's arguments exactly as the executor renders them."""
    path = tmp_path / "upgrade.yaml"
    path.write_text(PLAYBOOK)
    step = next(s for s in load_playbook(path).steps if s.kind == "verify")
    ctx = step_context(
        target="13.8.0", rollout="r1", wave=2, repo=SimpleNamespace(name="billing", path="/r"),
        vars={}, runtime=SimpleNamespace(version="13.8.0", airflow="2.11.2", python="3.12"),
        deployment=SimpleNamespace(name="billing-prod", id="clbprod", workspace_id="ws-p"))
    return step.render_args(ctx)


def verify_layer(tmp_path: Path, level: object) -> verify.VerifyLayer:
    """``level`` as one Deployment's ``vars.verify`` in an inventory, read as ``load_inventory``
    reads it (InventoryError on problems)."""
    root = tmp_path / f"layer-{len(list(tmp_path.glob('layer-*')))}"
    root.mkdir()
    text = (
        'target: "12.4"\nrepos:\n  billing:\n    path: repos/billing\n    deployments:\n'
        "      - id: clbdev\n        name: billing-dev\n        workspace_id: ws-np\n        wave: 1\n"
        "        vars:\n          verify: "
        + yaml.safe_dump(level, default_flow_style=True, width=10**6).strip() + "\n")
    [deployment] = write_inventory(root, text).deployments
    assert deployment.verify is not None
    return deployment.verify


def line_of(text: str, needle: str, nth: int = 1) -> int:
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return lines[nth - 1]


def summary(cfg: verify.VerifyConfig) -> list[tuple]:
    return [(c.name, c.timeout, dict(c.settings)) for c in cfg.checks]


def test_defaults_without_any_settings():
    cfg = verify.merge_verify_config(None, None, None)
    assert summary(cfg) == [("version", 600.0, {}), ("healthy", 600.0, {})]
    assert (cfg.inconclusive, cfg.timeout, cfg.poll_interval) == ("fail", 900.0, 10.0)


def test_the_playbook_list_is_the_start_and_version_runs_first(tmp_path: Path):
    cfg = verify.merge_verify_config(playbook_args(tmp_path), None, None)

    assert cfg.names() == ["version", "health", "import_errors", "airflow_version"]
    by = {c.name: c for c in cfg.checks}
    assert by["import_errors"].settings == {"max_new": 0}
    assert by["import_errors"].timeout == verify.CHECK_TIMEOUTS["import_errors"]
    # Unset in the playbook, so upgrade.verify applies its own 60 s default.
    assert by["health"].settings == {}
    assert by["version"].poll_interval == 10.0


def test_wave_then_deployment_merge_into_the_playbook(tmp_path: Path):
    inv = write_inventory(tmp_path, INVENTORY)
    prod = inv.deployment("billing-prod")

    cfg = verify.merge_verify_config(playbook_args(tmp_path), inv.waves[2].verify, prod.verify)

    assert cfg.names() == ["version", "import_errors", "airflow_version", "http", "command"]
    by = {c.name: c for c in cfg.checks}
    # The wave's max_new replaced the playbook's; the Deployment dropped health.
    assert by["import_errors"].timeout == verify.CHECK_TIMEOUTS["import_errors"]
    assert by["import_errors"].settings == {"max_new": 1}
    assert by["import_errors"].origin == "waves.2.verify"
    assert by["http"].settings == {"url": "https://billing.example.com/health", "status": 204}
    assert by["command"].settings == {"argv": ("pytest", "tests/smoke"), "expect_exit": 0}
    assert by["command"].origin == "repos.billing.deployments[1].vars.verify"
    assert cfg.inconclusive == "pass"  # from the wave
    assert cfg.timeout == 1200.0  # "20m" from the Deployment


def test_a_groups_verify_variable_applies_to_its_deployments(tmp_path: Path):
    inv = write_inventory(tmp_path, INVENTORY)

    cfg = verify.merge_verify_config(playbook_args(tmp_path), inv.waves[2].verify,
                                     inv.deployment("billing-eu").verify)

    by = {c.name: c for c in cfg.checks}
    assert by["import_errors"].timeout == 300.0  # 5m from group prod, over the wave's entry
    assert by["import_errors"].settings == {"max_new": 1}  # kept from the wave
    assert by["import_errors"].origin == "groups.prod.vars.verify"
    assert "health" in by


def test_repeatable_checks_accumulate_and_can_be_switched_off(tmp_path: Path):
    pb = {"checks": ["version", {"name": "http", "url": "https://a.example/x"}]}
    wave = verify_layer(tmp_path, {"checks": [{"name": "http", "url": "https://b.example/y"}]})
    cfg = verify.merge_verify_config(pb, wave, None)
    assert [c.settings["url"] for c in cfg.checks if c.name == "http"] == [
        "https://a.example/x", "https://b.example/y"]

    off = verify_layer(tmp_path, {"checks": [{"name": "http", "enabled": False}]})
    cfg = verify.merge_verify_config(pb, wave, off)
    assert cfg.names() == ["version"]


def test_inventory_problems_name_file_line_and_key(tmp_path: Path):
    text = INVENTORY.replace(
        "      inconclusive: pass\n",
        "      inconclussive: pass\n      poll_interval: 2h\n",
    ).replace(
        '        - {name: http, url: "https://billing.example.com/health", expect_status: 204}\n',
        '        - {name: http, url: "ftp://billing.example.com/health", expect_status: 99}\n'
        "        - {name: helth}\n",
    )
    with pytest.raises(InventoryError) as caught:
        write_inventory(tmp_path, text)  # refused when loaded, before anything runs

    f = str(tmp_path / "inventory.yaml")
    http_line = line_of(text, "ftp://")
    assert str(caught.value).splitlines() == [
        f"{f}:{line_of(text, 'inconclussive')}: waves.2.verify.inconclussive: unknown key. "
        "Did you mean 'inconclusive'?",
        f"{f}:{line_of(text, 'poll_interval: 2h')}: waves.2.verify.poll_interval: must be a "
        "number of seconds > 0 and <= 3600, got the string '2h' (7200 s).",
        f"{f}:{http_line}: waves.2.verify.checks[0].expect_status: must be an integer >= 100 "
        "and <= 599, got the number 99.",
        f"{f}:{http_line}: waves.2.verify.checks[0].url: must be an http:// or https:// URL "
        "with a host, without spaces.",
        f"{f}:{line_of(text, 'helth')}: waves.2.verify.checks[1].name: unknown check 'helth'. "
        "Did you mean 'health'?",
    ]
    assert caught.value.exit_code == 2


def test_a_deployment_problem_points_at_its_own_vars(tmp_path: Path):
    text = INVENTORY.replace("argv: [pytest, tests/smoke]", "argv: pytest tests/smoke")
    with pytest.raises(InventoryError) as caught:
        write_inventory(tmp_path, text)

    assert str(caught.value) == (
        f"{tmp_path / 'inventory.yaml'}:{line_of(text, 'argv: pytest')}: "
        "repos.billing.deployments[1].vars.verify.checks[1].argv: must be a list of arguments, "
        "not one string: write ['pytest', 'tests/smoke'], nothing is split or given to a shell.")


@pytest.mark.parametrize(("level", "message"), [
    ({"checks": "version"}, "vars.verify.checks: must be a list of check names"),
    ({"checks": [{"name": "command"}]}, "vars.verify.checks[0]: check 'command' needs 'argv'."),
    ({"checks": [{"timeout": 5}]}, "vars.verify.checks[0]: 'name' is missing."),
    ({"checks": ["version", "version"]}, "vars.verify.checks[1]: check 'version' is listed twice"),
    ({"checks": [{"name": "health", "components": ["scheduler", "webserver"]}]},
     "vars.verify.checks[0].components: 'webserver' is not one of metadatabase, scheduler"),
    ({"checks": [{"name": "http", "url": "https://x.example", "status": 200,
                  "expect_status": 200}]},
     "vars.verify.checks[0].expect_status: give 'status' or 'expect_status', not both"),
    ({"checks": [{"name": "import_errors", "settle": -1}]},
     "vars.verify.checks[0].settle: must be a number of seconds >= 0 and <= 86400, got the "
     "number -1"),
    ({"checks": [{"name": "dag_run"}]}, "vars.verify.checks[0]: check 'dag_run' needs 'dag_id'."),
    ({"checks": [{"name": "dag_run", "dag_id": "my dag"}]},
     "vars.verify.checks[0].dag_id: 'my dag' is not a DAG id: Airflow allows letters, digits"),
    ({"checks": [{"name": "dag_run", "dag_id": "c", "conf": ["x"]}]},
     "vars.verify.checks[0].conf: must be a mapping, got a list"),
    ({"checks": [{"name": "dag_run", "dag_id": "c", "conf": {"when": float("inf")}}]},
     "vars.verify.checks[0].conf: holds the number inf under 'when', which is not a JSON value"),
    ({"checks": [{"name": "dag_run", "dag_id": "c", "unpause": "yes"}]},
     "vars.verify.checks[0].unpause: must be true or false, got the string 'yes'"),
    ({"checks": [{"name": "health", "fresh_heartbeats": 0}]},
     "vars.verify.checks[0].fresh_heartbeats: must be an integer >= 1 and <= 10, got the "
     "number 0"),
    ({"timeout": True}, "vars.verify.timeout: must be a number of seconds"),
    ({"inconclusive": "maybe"}, "vars.verify.inconclusive: must be one of fail, pass"),
    (["version"], "vars.verify: must be a mapping"),
])
def test_each_refusal_names_its_key(tmp_path: Path, level, message):
    with pytest.raises(InventoryError, match=None) as caught:
        verify_layer(tmp_path, level)
    assert message in str(caught.value)


def test_a_bad_playbook_level_is_a_playbook_error():
    with pytest.raises(PlaybookError) as caught:
        verify.merge_verify_config({"checks": [{"name": "http", "url": "nope"}]}, None, None)
    assert str(caught.value) == ("playbook: verify.checks[0].url: must be an http:// or "
                                 "https:// URL with a host, without spaces.")


def test_dag_run_settings_are_typed_and_the_check_may_repeat(tmp_path: Path):
    layer = verify_layer(tmp_path, {"checks": [
        {"name": "dag_run", "dag_id": "canary", "conf": {"n": 1, "tags": ["a"]},
         "unpause": True, "timeout": "5m"},
        {"name": "dag_run", "dag_id": "second"}]})
    cfg = verify.merge_verify_config(None, layer, None)
    first, second = [c for c in cfg.checks if c.name == "dag_run"]
    assert first.settings == {"dag_id": "canary", "conf": {"n": 1, "tags": ["a"]},
                              "unpause": True}
    assert first.timeout == 300.0 and second.timeout == verify.CHECK_TIMEOUTS["dag_run"] == 600


def test_a_playbook_dag_run_check_is_validated_when_loaded(tmp_path: Path):
    path = tmp_path / "playbook.yaml"
    path.write_text(PLAYBOOK.replace(
        "checks: [health, version, {name: import_errors, max_new: 0}, airflow_version]",
        "checks: [version, {name: dag_run, dag_id: x, conf: [1]}]"))
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path)
    assert "checks[1].conf: must be a mapping, got a list." in str(caught.value)
