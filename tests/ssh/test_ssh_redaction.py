"""The one redaction rule over SSH: a command on a runner that prints a secret is shown as
locally (see tests/security/test_redaction_paths.py for the other paths)."""

from __future__ import annotations

import pytest

from upgrade.errors import CommandFailed
from upgrade.hosts.host import run_checked
from upgrade.hosts.ssh import SSHHost
from upgrade.model.redact import REDACTED

pytestmark = pytest.mark.sshd
SECRET = "s3cr3t-d4t4b4se-pw-0427"


def test_a_command_on_a_runner(ssh_host: SSHHost, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_DB_PASSWORD", SECRET)
    with pytest.raises(CommandFailed) as caught:
        run_checked(ssh_host, ["sh", "-c", 'echo "db said no: pw=$FLEET_DB_PASSWORD"; exit 3'],
                    cwd="/", timeout=30, env={"FLEET_DB_PASSWORD": SECRET})
    text = str(caught.value) + repr(caught.value) + caught.value.stdout_tail
    assert SECRET not in text and f"pw={REDACTED}" in text
