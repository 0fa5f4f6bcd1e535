"""Process control of the astro driver: argv, cwd, stdin, env, time-outs, secrets.

The stand-in ``astro`` here is a real executable; it exists because the real CLI cannot
reach Astro from a test. Everything Astro-shaped is covered by the simulator tests.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest

from upgrade.controlplane.astro import AstroCLI
from upgrade.errors import AstroError, AstroTimeout, DeployFailed, InputError

SUCCESS = (
    "Authenticated to Astro \\n\\nDeployed Image Tag:  deploy-2025-01-02T03-04-05\\n"
    "Successfully pushed image to Astronomer registry. Navigate to the Astronomer UI for "
    "confirmation that your deploy was successful. To deploy dags only run astro deploy --dags.\\n"
)
TOKEN = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJwZXJtaXNzaW9ucyI6WyJvcmdhbml6YXRpb25JZDpvIl19."


def test_deploy_argv_cwd_stdin_env(fake_astro, tmp_path: Path, monkeypatch) -> None:
    record = tmp_path / "record.json"
    binary = fake_astro(
        f"""
        import json, os, sys
        json.dump({{
            "argv": sys.argv[1:],
            "cwd": os.getcwd(),
            "stdin": sys.stdin.read(),
            "extra": os.environ.get("EXTRA_VAR"),
            "clicolor": os.environ.get("CLICOLOR"),
            "force": os.environ.get("CLICOLOR_FORCE"),
            "pgid_is_own": os.getpgid(0) == os.getpid(),
        }}, open({str(record)!r}, "w"))
        sys.stdout.write("{SUCCESS}")
        """
    )
    monkeypatch.setenv("CLICOLOR_FORCE", "1")
    repo = tmp_path / "repo"
    repo.mkdir()
    cli = AstroCLI(str(binary), extra_env={"EXTRA_VAR": "yes"})
    outcome = cli.deploy("dep-1", "ws-1", repo, "fleet upgrade r-42 wave 1 to 12.5.0")
    seen = json.loads(record.read_text())
    assert seen["argv"] == [
        "deploy", "dep-1", "-f", "--workspace-id", "ws-1",
        "--description", "fleet upgrade r-42 wave 1 to 12.5.0",
    ]
    assert Path(seen["cwd"]).resolve() == repo.resolve()
    assert seen["stdin"] == ""  # /dev/null: a prompt can never wait for input
    assert seen["extra"] == "yes"
    # CLICOLOR_FORCE=0 turns colour off even where the host set CLICOLOR_FORCE
    # (astro-cli pkg/ansi/ansi.go, shouldUseColors).
    assert seen["clicolor"] == "0" and seen["force"] == "0"
    assert seen["pgid_is_own"]  # its own process group, so a time-out can kill it whole
    assert outcome.image_tag == "deploy-2025-01-02T03-04-05"


def test_inspect_and_list_argv(fake_astro, tmp_path: Path) -> None:
    record = tmp_path / "argv.jsonl"
    inspect_doc = json.dumps(
        {"deployment": {"configuration": {"name": "n", "runtime_version": "12.4.0"},
                        "metadata": {"deployment_id": "dep-1", "workspace_id": "ws-1",
                                     "status": "HEALTHY"}}},
        indent=4,
    )
    binary = fake_astro(
        f"""
        import json, sys
        with open({str(record)!r}, "a") as fh:
            fh.write(json.dumps(sys.argv[1:]) + "\\n")
        if sys.argv[2] == "inspect":
            print({inspect_doc!r})
        else:
            print("Using an Astro API Token")
            print('{{"deployments": []}}')
        """
    )
    cli = AstroCLI(str(binary))
    assert cli.inspect("dep-1", "ws-1").runtime_version == "12.4.0"
    assert cli.list("ws-1") == []
    assert cli.list_all("ws-1") == []
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert calls == [
        ["deployment", "inspect", "dep-1", "-o", "json", "--workspace-id", "ws-1"],
        ["deployment", "list", "--json", "--workspace-id", "ws-1"],
        ["deployment", "list", "--json", "--all", "--workspace-id", "ws-1"],
    ]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is gone for our purposes (its parent was killed; init will reap it).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True


def test_timeout_kills_the_whole_process_group(fake_astro, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    # Both outlast pytest's time-out: only the kill can end them in time.
    binary = fake_astro(
        f"""
        import subprocess, sys, time
        child = subprocess.Popen(["sleep", "600"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        print("Building image...", flush=True)
        time.sleep(600)
        """
    )
    repo = tmp_path / "repo"
    repo.mkdir()
    cli = AstroCLI(str(binary), deploy_timeout=1.0, kill_grace=1.0)
    with pytest.raises(AstroTimeout) as info:
        cli.deploy("dep-1", "ws-1", repo, "d")
    assert "did not finish within 1s" in str(info.value)
    assert "Building image..." in info.value.output  # partial output kept for the operator
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 60
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(grandchild), "the build's grandchild outlived the time-out"


def test_timeout_escalates_to_sigkill_when_sigterm_is_ignored(fake_astro, tmp_path: Path) -> None:
    binary = fake_astro(
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(600)  # past pytest's time-out: only SIGKILL ends it in time
        """
    )
    cli = AstroCLI(str(binary), inspect_timeout=0.5, kill_grace=0.5)
    with pytest.raises(AstroTimeout):
        cli.inspect("dep-1", "ws-1")


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    cli = AstroCLI(str(tmp_path / "no-such-astro"))
    with pytest.raises(AstroError, match="control_plane.astro_bin"):
        cli.inspect("dep-1", "ws-1")


@pytest.mark.parametrize(
    ("dep", "ws"), [("--prompt", "ws-1"), ("", "ws-1"), ("dep-1", "-w"), ("dep 1", "ws-1")]
)
def test_ids_that_could_become_flags_or_pickers_are_refused(dep, ws, tmp_path: Path) -> None:
    cli = AstroCLI(str(tmp_path / "never-run"))
    with pytest.raises(InputError):
        cli.deploy(dep, ws, tmp_path, "d")


def test_missing_repo_dir_is_refused_before_spawning(tmp_path: Path) -> None:
    cli = AstroCLI(str(tmp_path / "never-run"))
    with pytest.raises(InputError, match="not a directory"):
        cli.deploy("dep-1", "ws-1", tmp_path / "missing", "d")


def test_token_never_reaches_errors_or_logs(fake_astro, tmp_path: Path, caplog) -> None:
    # A CLI that echoes its token (as a debug-level HTTP dump might) on both streams.
    binary = fake_astro(
        """
        import os, sys
        tok = os.environ["ASTRO_API_TOKEN"]
        print(f"POST /deploys authorization: Bearer {tok}")
        print(f"Error: request failed for token {tok}", file=sys.stderr)
        sys.exit(1)
        """
    )
    repo = tmp_path / "repo"
    repo.mkdir()
    cli = AstroCLI(str(binary), extra_env={"ASTRO_API_TOKEN": TOKEN})
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DeployFailed) as info:
        cli.deploy("dep-1", "ws-1", repo, "d")
    err = info.value
    everything = " ".join(
        [str(err), err.output, err.astro_message, repr(err.args), caplog.text]
    )
    assert "request failed for token" in everything  # the message itself survives
    assert TOKEN not in everything
    assert TOKEN[:20] not in everything
    assert "***" in str(err)
