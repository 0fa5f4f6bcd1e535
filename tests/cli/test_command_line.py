"""The command line's contract: flags declared once with help, refusals in one line and
exit 2 before anything changes, the exit code of a system that fails us."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest
from support import ASTRO_FLEET, SampleFleet

from upgrade.cli.flags import COMMANDS
from upgrade.cli.tasks import namespace


def test_every_command_and_flag_has_help():
    for name, command in COMMANDS.items():
        assert command.summary, name
        for flag in command.flags:
            assert flag.help.strip().endswith((".", ")")), (name, flag.name)


def test_each_flag_means_one_thing_everywhere():
    seen: dict[str, tuple] = {}
    for command in COMMANDS.values():
        for flag in command.flags:
            kind = (flag.type, flag.default)
            assert seen.setdefault(flag.name, kind) == kind, flag.name


def test_the_invoke_collection_offers_every_command():
    names = set(namespace.task_names) | {f"{group}.{n}" for group, sub in
                                         namespace.collections.items() for n in sub.tasks}
    assert set(COMMANDS) <= names


def refused_in_one_line(out, code: int = 2) -> str:
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr
    return lines[0]


@pytest.mark.parametrize(("args", "message"), [
    (("approve", "--wave", "3"), "error: approve needs --reason: Why (recorded with your name)."),
    (("abandon",), "error: abandon needs --reason: Why (recorded with your name)."),
    (("upgrade",), "error: upgrade needs --wave: The wave to run."),
    (("plan", "--wave", "two"), "error: --wave must be a whole number, got 'two'."),
    (("plan", "--limit", " "), "error: --limit '': an empty value selects nothing."),
    (("plan", "--limit", ""), "error: --limit '': an empty value selects nothing."),
    (("plan", "--wave", "9"), "error: --wave 9: the inventory has no wave 9. Its waves are: 1, 2, 3, 4."),
])
def test_bad_flags_are_refused_before_anything_happens(sample_fleet: SampleFleet, args, message):
    line = refused_in_one_line(sample_fleet.invoke(*args))
    assert line.startswith(message)
    assert not (sample_fleet.root / ".upgrade").exists()


BAD_SETTINGS = {
    "webhook URL": ("\ncontrol_plane:", "\nnotifications:\n  webhook: {url: 'ftp://hooks.example/x'}\n"
                    "control_plane:", "notifications.webhook.url: must be an http:// or https:// URL"),
    "verify block": ("{name: dag_run, dag_id: fleet_canary", "{name: helth, dag_id: fleet_canary",
                     "waves.1.verify.checks[0].name: unknown check 'helth'. Did you mean 'health'?"),
    "control-plane key": ("  astro_bin: astro-sim ", "  deploy_timout: 600\n  astro_bin: astro-sim ",
                          "control_plane.deploy_timout: unknown key. Did you mean 'deploy_timeout'?"),
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_bad_settings_stop_plan_at_load_and_leave_no_journal(sample_fleet: SampleFleet, case):
    old, new, expected = BAD_SETTINGS[case]
    text = sample_fleet.inventory.read_text()
    assert old in text
    sample_fleet.inventory.write_text(text.replace(old, new, 1))
    for command in (("plan",), ("inventory",), ("upgrade", "--wave", "1")):
        line = refused_in_one_line(sample_fleet.invoke(*command))
        assert line.startswith("error: inventory.yaml:")
        assert expected in line
    assert not (sample_fleet.root / ".upgrade").exists()


def test_a_control_plane_that_cannot_be_reached_is_exit_7(sample_fleet: SampleFleet):
    # The inventory names a simulator nobody started (a port where nothing listens).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sample_fleet.use_simulator(f"http://127.0.0.1:{port}")
    line = refused_in_one_line(sample_fleet.invoke("plan"), code=7)
    assert f"127.0.0.1:{port}" in line
    offline = sample_fleet.invoke("plan", "--offline")  # no Astro needed: the Dockerfiles only
    assert offline.returncode == 3, offline.stderr  # partner-feeds is refused by policy


@pytest.mark.parametrize(("args", "message"), [
    (("plna",), "error: no command 'plna'. Did you mean 'plan'? `astro-fleet --list` lists the commands."),
    (("plan", "--wavee", "1"), "error: plan has no flag --wavee. Did you mean '--wave'? `astro-fleet --help plan` lists its flags."),
    (("plan", "--wave"), "error: --wave needs a value (command plan)."),
    (("--frobnicate",), "error: unknown option --frobnicate. `astro-fleet --help` lists the core options."),
    (("--list", "nope"), "error: Sub-collection 'nope' not found!"),
])
def test_the_parser_refuses_in_one_line_with_exit_2(sample_fleet: SampleFleet, args, message):
    assert refused_in_one_line(sample_fleet.invoke(*args)) == message


def test_version_verbose_and_a_json_lines_log_file(sample_fleet: SampleFleet):
    from upgrade import __version__

    version = sample_fleet.invoke("--version")
    assert (version.returncode, version.stdout) == (0, f"astro-fleet {__version__}\n")
    token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    log = sample_fleet.root / "ci" / "run.jsonl"
    out = sample_fleet.invoke("-v", "--log-file", str(log), "plan", "--offline", "--limit",
                              "sales-etl-dev", "--target", token)
    assert out.returncode == 2  # the "target" is no version: refused, and logged
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert records[0]["message"].startswith("command: ") and token not in log.read_text()
    assert records[-1] == {**records[-1], "logger": "upgrade.cli", "message": "plan: exit 2"}
    assert any(r["level"] == "error" and r["logger"] == "upgrade.console" for r in records)
    assert "DEBUG: upgrade.cli: plan: exit 2" in out.stderr  # -v: debug records on stderr
    assert token not in out.stderr


def test_the_inventory_is_found_by_flag_env_or_the_current_directory(sample_fleet: SampleFleet,
                                                                     tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    missing = subprocess.run([ASTRO_FLEET, "status"], cwd=elsewhere, capture_output=True,
                             text=True, env={k: v for k, v in os.environ.items()
                                             if k != "ASTRO_FLEET_INVENTORY"})
    assert missing.returncode == 2
    assert missing.stderr.startswith(f"error: no inventory.yaml in {elsewhere}. ")
    env = {**os.environ, "ASTRO_FLEET_INVENTORY": str(sample_fleet.inventory)}
    found = subprocess.run([ASTRO_FLEET, "status", "--json"], cwd=elsewhere,
                           capture_output=True, text=True, env=env)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["rollouts"] == []
    wrong = subprocess.run([ASTRO_FLEET, "status", "--inventory", "nope/inv.yaml"],
                           cwd=elsewhere, capture_output=True, text=True, env=env)
    assert wrong.returncode == 2
    assert f"--inventory nope/inv.yaml: inv.yaml not found in {elsewhere / 'nope'}." in wrong.stderr


def test_global_options_work_before_or_after_the_command(sample_fleet: SampleFleet, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ASTRO_FLEET_INVENTORY"}
    inventory = str(sample_fleet.inventory)
    for n, argv in enumerate([
        ["--inventory", inventory, "-v", "--log-file", "before.jsonl", "status", "--json"],
        ["--inventory=" + inventory, "status", "--json", "--verbose", "--log-file=mixed.jsonl"],
        ["status", "--json", "--inventory", inventory, "--log-file", "after.jsonl", "-v"],
    ]):
        out = subprocess.run([ASTRO_FLEET, *argv], cwd=elsewhere, capture_output=True,
                             text=True, env=env)
        assert out.returncode == 0, (argv, out.stderr)
        assert json.loads(out.stdout)["rollouts"] == [], argv
        assert "DEBUG: upgrade.cli: status: exit 0" in out.stderr, argv
        log = elsewhere / ("before.jsonl", "mixed.jsonl", "after.jsonl")[n]
        assert json.loads(log.read_text().splitlines()[-1])["message"] == "status: exit 0"
    # A command's value that looks like a global option stays the command's.
    approve = subprocess.run([ASTRO_FLEET, "approve", "--wave", "9", "--reason", "-v",
                              "--inventory", inventory], cwd=elsewhere, capture_output=True,
                             text=True, env=env)
    assert approve.returncode == 2 and "the inventory has no wave 9" in approve.stderr
    assert "DEBUG" not in approve.stderr


def test_verify_all_with_a_refused_token_is_exit_7_in_one_line(sample_fleet: SampleFleet, sim):
    sample_fleet.use_simulator(sim.url)
    sample_fleet.seed()
    text = sample_fleet.inventory.read_text()
    right = json.dumps(sim.control_plane_settings()["extra_env"])
    wrong = json.dumps(sim.control_plane_settings(extra_env={"ASTRO_API_TOKEN": "wrong"})["extra_env"])
    assert right in text
    sample_fleet.inventory.write_text(text.replace(right, wrong))
    out = sample_fleet.invoke("verify-all")
    line = refused_in_one_line(out, code=7)
    assert line.startswith("error: verify-all checked nothing: Astro could not be read (")
    assert "drifted" not in out.stdout + out.stderr and "unreachable" not in out.stdout
