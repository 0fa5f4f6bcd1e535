"""SSHHost.run against a real sshd: output, exit codes, env, cwd, stdin, no shell injection."""

from __future__ import annotations

import shlex
import subprocess
import threading
import time
from pathlib import Path

import pytest

from upgrade.hosts.host import LocalHost
from upgrade.hosts.ssh import SSHHost
from upgrade.hosts.ssh_channel import REMOTE_SCRIPT, env_payload, remote_command

pytestmark = pytest.mark.sshd

NASTY = ["a b", "it's", '"dq"', "$(touch pwned)", "`touch pwned2`", "; touch pwned3",
         "&& touch pwned4", "| cat", "$HOME", "*", "~", "\\", "-n", "--", "'", "x\ty", "é ü 中"]


def test_stdout_stderr_and_exit_code_come_back_separately(ssh_host: SSHHost) -> None:
    result = ssh_host.run(["sh", "-c", "echo out; echo err >&2; exit 3"], cwd="/", timeout=10)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok and not result.timed_out
    assert result.argv == ("sh", "-c", "echo out; echo err >&2; exit 3")


def test_arguments_arrive_verbatim_and_nothing_is_interpreted(ssh_host: SSHHost, tmp_path: Path) -> None:
    result = ssh_host.run(["printf", "%s\\n", *NASTY], cwd=str(tmp_path), timeout=10)
    assert result.ok, result.stderr
    assert result.stdout == "".join(f"{arg}\n" for arg in NASTY)
    assert list(tmp_path.iterdir()) == []  # no pwned* file: nothing ran through a shell


def test_cwd_with_shell_metacharacters_is_entered_not_executed(ssh_host: SSHHost, tmp_path: Path) -> None:
    weird = tmp_path / "dir with 'quotes' \"and\" $(touch pwned); & spaces"
    weird.mkdir()
    result = ssh_host.run(["pwd"], cwd=str(weird), timeout=10)
    assert result.ok, result.stderr
    assert result.stdout == f"{weird}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [weird.name]


def test_env_values_are_passed_exactly_and_not_evaluated(ssh_host: SSHHost, tmp_path: Path) -> None:
    env = {"FLEET_A": "$(touch pwned) `id` ; rm -rf / 'x' \"y\" \\ $HOME", "FLEET_EMPTY": "",
           "LC_ALL": "C"}
    result = ssh_host.run(["sh", "-c", 'printf "%s|%s|%s" "$FLEET_A" "${FLEET_EMPTY-unset}" "$LC_ALL"'],
                          cwd=str(tmp_path), timeout=10, env=env)
    assert result.ok, result.stderr
    assert result.stdout == f"{env['FLEET_A']}||C"
    assert list(tmp_path.iterdir()) == []


def test_env_adds_to_the_runners_own_environment(ssh_host: SSHHost, sshd) -> None:
    result = ssh_host.run(["sh", "-c", 'echo "$HOME" "$FLEET_X"'], cwd="/", timeout=10,
                          env={"FLEET_X": "1"})
    assert result.stdout == f"{sshd.dir}/home 1\n"  # HOME is the runner's (set by the test sshd)


def test_env_values_never_appear_on_a_command_line(ssh_host: SSHHost, tmp_path: Path) -> None:
    token = "tok-" + "s3cr3t" * 4
    done: dict[str, object] = {}
    go = tmp_path / "go"  # the remote command runs until the test has seen its environment
    wait = 'while [ ! -e "$1" ]; do sleep 0.05; done; echo "$ASTRO_API_TOKEN"'

    def run() -> None:
        done["result"] = ssh_host.run(["sh", "-c", wait, "sh", str(go)],
                                      cwd="/", timeout=120, env={"ASTRO_API_TOKEN": token})

    worker = threading.Thread(target=run)
    worker.start()
    try:
        seen_env = False
        deadline = time.monotonic() + 60
        while not seen_env and time.monotonic() < deadline:
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    cmdline = (proc / "cmdline").read_bytes()
                    environ = (proc / "environ").read_bytes()
                except OSError:
                    continue
                assert token.encode() not in cmdline, cmdline
                seen_env = seen_env or token.encode() in environ
            time.sleep(0.05)
        assert seen_env, "the remote command should have the token in its environment"
    finally:
        go.touch()
        worker.join()
    assert done["result"].stdout == token + "\n"  # type: ignore[union-attr]


def test_bad_env_names_and_multiline_values_are_refused_before_anything_runs() -> None:
    with pytest.raises(ValueError, match="usable environment variable name"):
        env_payload({"BAD NAME": "x"})
    with pytest.raises(ValueError, match="usable"):
        env_payload({"_UPGRADE_LIMIT": "1"})
    with pytest.raises(ValueError, match="FLEET_TOKEN has a newline") as caught:
        env_payload({"FLEET_TOKEN": "line1\nline2-secret"})
    assert "secret" not in str(caught.value)


def test_the_remote_command_is_a_constant_script_plus_quoted_words() -> None:
    argv = ["git", "commit", "-m", "it's $(bad)"]
    words = shlex.split(remote_command(argv, "/srv/my repo", 60))
    assert words == ["sh", "-c", REMOTE_SCRIPT, "sh", "/srv/my repo", "60.000", "2", "0", *argv]
    words = shlex.split(remote_command(argv, "/", 60, stdin="héllo\n"))
    assert words[4:8] == ["/", "60.000", "2", "7"]  # stdin's size in bytes, not characters
    with pytest.raises(TypeError):
        remote_command("git status", "/", 1)  # type: ignore[arg-type]


def test_stdin_is_delivered_exactly_and_absent_stdin_is_empty(ssh_host: SSHHost) -> None:
    text = "line 1\r\nline 2 $(no)\n\nno final newline"
    assert ssh_host.run(["cat"], cwd="/", timeout=10, stdin=text).stdout == text
    result = ssh_host.run(["cat"], cwd="/", timeout=10)  # must not wait for input
    assert (result.exit_code, result.stdout, result.timed_out) == (0, "", False)


@pytest.mark.parametrize("host_kind", ["local", "ssh"])
def test_missing_cwd_and_missing_command_fail_as_a_shell_would(host_kind: str, ssh_host: SSHHost, tmp_path: Path) -> None:
    host = LocalHost() if host_kind == "local" else ssh_host
    gone = tmp_path / "no such dir"
    missing_dir = host.run(["true"], cwd=str(gone), timeout=10)
    assert missing_dir.exit_code == 1
    assert f"{gone}: No such file or directory" in missing_dir.stderr
    missing_cmd = host.run(["no-such-command-xyz"], cwd="/", timeout=10)
    assert missing_cmd.exit_code == 127
    assert "no-such-command-xyz" in missing_cmd.stderr
    not_executable = tmp_path / "script.sh"
    not_executable.write_text("#!/bin/sh\necho hi\n")
    assert host.run([str(not_executable)], cwd="/", timeout=10).exit_code == 126


def test_multibyte_text_split_across_reads_is_decoded_whole(ssh_host: SSHHost) -> None:
    # 3,001 two-byte characters: invoke reads 1,000 bytes at a time, so some are cut in two.
    result = ssh_host.run(["python3", "-c", "print('x' + 'é' * 3000)"], cwd="/", timeout=10)
    assert result.stdout == "x" + "é" * 3000 + "\n"


def test_large_output_on_both_streams_does_not_deadlock(ssh_host: SSHHost) -> None:
    script = "import sys\nfor i in range(2000):\n    sys.stdout.write('o' * 1023 + '\\n')\n    sys.stderr.write('e' * 1023 + '\\n')\n"
    result = ssh_host.run(["python3", "-c", script], cwd="/", timeout=30)
    assert result.ok
    assert len(result.stdout) == len(result.stderr) == 2000 * 1024


def test_one_connection_serves_many_threads(ssh_host: SSHHost) -> None:
    # $SSH_CONNECTION holds the client's source port: one value means one TCP connection.
    results: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(5):
            out = ssh_host.run(["sh", "-c", 'echo "$SSH_CONNECTION"'], cwd="/", timeout=10)
            assert out.ok, out.stderr
            with lock:
                results.append(out.stdout)

    threads = [threading.Thread(target=work) for _ in range(12)]  # more than MaxSessions
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 60
    assert len(set(results)) == 1
    assert ssh_host.connections_opened == 1


def test_timeout_kills_the_remote_process_group(ssh_host: SSHHost) -> None:
    marker = f"{time.monotonic_ns() % 10**6}.25"  # a unique sleep length to find with pgrep
    result = ssh_host.run(["sh", "-c", f"sleep 1{marker} & sleep 2{marker}; echo never"],
                          cwd="/", timeout=1)
    assert result.timed_out and not result.ok
    assert result.exit_code == -15  # as LocalHost reports a TERM kill
    assert "never" not in result.stdout
    assert _gone(f"sleep 1{marker}") and _gone(f"sleep 2{marker}")


def test_a_command_ignoring_term_is_killed_after_the_grace_period(ssh_host: SSHHost) -> None:
    marker = f"{time.monotonic_ns() % 10**6}.75"
    result = ssh_host.run(["sh", "-c", f"trap '' TERM; sleep 3{marker}"], cwd="/", timeout=0.5)
    assert result.timed_out
    assert result.exit_code == -9
    assert _gone(f"sleep 3{marker}")


def test_a_command_that_exits_124_by_itself_is_not_a_time_out(ssh_host: SSHHost) -> None:
    result = ssh_host.run(["sh", "-c", "exit 124"], cwd="/", timeout=30)
    assert (result.exit_code, result.timed_out) == (124, False)


def _gone(pattern: str, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 1:
            return True
        time.sleep(0.05)
    return False
