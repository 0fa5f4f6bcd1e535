"""The command line's contract: flags declared once with help, refusals in one line and
exit 2 before anything changes, the exit code of a system that fails us."""

from __future__ import annotations

import pytest
from support import SampleFleet

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
    names = set(namespace.task_names) | {f"sim.{n}" for n in namespace.collections["sim"].tasks}
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
    (("plan", "--wave", "9"), "error: --wave 9: the inventory has no wave 9. Its waves are: 1, 2, 3."),
])
def test_bad_flags_are_refused_before_anything_happens(sample_fleet: SampleFleet, args, message):
    line = refused_in_one_line(sample_fleet.invoke(*args))
    assert line.startswith(message)
    assert not (sample_fleet.root / ".upgrade").exists()


BAD_SETTINGS = {
    "webhook URL": ("control_plane:\n", "notifications:\n  webhook: {url: 'ftp://hooks.example/x'}\n"
                    "control_plane:\n", "notifications.webhook.url: must be an http:// or https:// URL"),
    "verify block": ("{name: dag_run, dag_id: fleet_canary", "{name: helth, dag_id: fleet_canary",
                     "waves.1.verify.checks[0].name: unknown check 'helth'. Did you mean 'health'?"),
    "control-plane key": ("  simulator: .sim", "  simulator: .sim\n  deploy_timout: 600",
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
    # The inventory names the local simulator, which nobody started.
    line = refused_in_one_line(sample_fleet.invoke("plan"), code=7)
    assert "no Astro simulator is running for state directory" in line
    assert "astro-fleet sim.start" in line
    offline = sample_fleet.invoke("plan", "--offline")  # no Astro needed: the Dockerfiles only
    assert offline.returncode == 3, offline.stderr  # partner-feeds is refused by policy
