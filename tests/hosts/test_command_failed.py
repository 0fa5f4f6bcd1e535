"""run_checked and CommandFailed: readable, and never showing a secret."""

from __future__ import annotations

import sys

import pytest

from upgrade.errors import EXIT_SERVICE, CommandFailed, UpgradeError
from upgrade.hosts.host import LocalHost, run_checked

PY = sys.executable


@pytest.fixture
def host() -> LocalHost:
    return LocalHost("builder-1")


def test_success_returns_the_result(host, tmp_path):
    result = run_checked(host, [PY, "-c", "print('fine')"], cwd=str(tmp_path), timeout=10)
    assert result.stdout == "fine\n"


def test_failure_names_host_command_exit_code_and_last_ten_lines(host, tmp_path):
    code = (
        "import sys\n"
        "for i in range(1, 31): print(f'out {i}')\n"
        "for i in range(1, 31): print(f'err {i}', file=sys.stderr)\n"
        "sys.exit(4)"
    )
    with pytest.raises(CommandFailed) as caught:
        run_checked(host, [PY, "-c", code], cwd=str(tmp_path), timeout=10,
                    action="Could not parse the DAGs of project-a")
    error = caught.value
    assert isinstance(error, UpgradeError) and error.command_exit == 4
    assert error.exit_code == EXIT_SERVICE  # the tool's exit code, not the command's
    message = str(error)
    assert message.splitlines()[0] == "Could not parse the DAGs of project-a."
    assert "On host builder-1, in " + str(tmp_path) in message
    assert "exited with code 4" in message
    assert error.stdout_tail.splitlines() == [f"out {i}" for i in range(21, 31)]
    assert error.stderr_tail.splitlines() == [f"err {i}" for i in range(21, 31)]
    assert "out 20\n" not in message and "out 21" in message and "err 30" in message


def test_time_out_is_a_failure_that_says_so(host, tmp_path):
    with pytest.raises(CommandFailed, match=r"timed out after \d+\.\d+s and was killed") as caught:
        run_checked(host, ["sleep", "30"], cwd=str(tmp_path), timeout=0.3)
    assert caught.value.timed_out
    assert "It printed nothing." in str(caught.value)


def test_secrets_from_the_environment_are_redacted(host, tmp_path, monkeypatch):
    monkeypatch.setenv("ASTRO_API_TOKEN", "astro-tok-1234567890")
    code = (
        "import os, sys\n"
        "print('token is', os.environ['ASTRO_API_TOKEN'])\n"
        "print('password is', os.environ['DB_PASSWORD'], file=sys.stderr)\n"
        "print('key is', os.environ['AWS_SECRET_ACCESS_KEY'], file=sys.stderr)\n"
        "sys.exit(1)"
    )
    argv = [PY, "-c", code, "--token", "astro-tok-1234567890"]
    env = {"DB_PASSWORD": "pa55word!", "AWS_SECRET_ACCESS_KEY": "AKIAxyzSECRET", "MODE": "prod"}
    with pytest.raises(CommandFailed) as caught:
        run_checked(host, argv, cwd=str(tmp_path), timeout=10, env=env)
    error = caught.value
    everything = " ".join([str(error), repr(error), *error.argv, error.stdout_tail,
                           error.stderr_tail])
    for secret in ("astro-tok-1234567890", "pa55word!", "AKIAxyzSECRET"):
        assert secret not in everything
    assert "token is ***" in str(error)
    assert "password is ***" in str(error) and "key is ***" in str(error)
    assert "--token '***'" in str(error)
