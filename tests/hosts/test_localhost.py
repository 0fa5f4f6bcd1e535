"""LocalHost with real processes and real files."""

from __future__ import annotations

import os
import stat
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from upgrade.hosts.host import Host, LocalHost

PY = sys.executable


@pytest.fixture
def host() -> LocalHost:
    return LocalHost()


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie nobody reaped yet counts as dead."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_for_file(path: Path, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


class TestRun:
    def test_is_a_host(self, host):
        assert isinstance(host, Host)
        assert host.name == "local"

    def test_exit_code_stdout_and_stderr(self, host, tmp_path):
        code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
        result = host.run([PY, "-c", code], cwd=str(tmp_path), timeout=10)
        assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
        assert not result.ok and not result.timed_out
        assert result.argv == (PY, "-c", code) and result.cwd == str(tmp_path)
        assert result.duration > 0

    def test_success_cwd_and_stdin(self, host, tmp_path):
        code = "import os, sys; print(os.getcwd()); print(sys.stdin.read().upper())"
        result = host.run([PY, "-c", code], cwd=str(tmp_path), timeout=10, stdin="héllo")
        assert result.ok
        assert result.stdout.splitlines() == [str(tmp_path), "HÉLLO"]

    def test_no_stdin_means_end_of_file_not_the_terminal(self, host, tmp_path):
        code = "import sys; print(repr(sys.stdin.read()))"
        assert host.run([PY, "-c", code], cwd=str(tmp_path), timeout=10).stdout == "''\n"

    def test_arguments_are_never_interpreted_by_a_shell(self, host, tmp_path):
        hostile = "; touch pwned; $(touch pwned2) `touch pwned3` *"
        result = host.run(["echo", hostile], cwd=str(tmp_path), timeout=10)
        assert result.stdout == hostile + "\n"
        assert sorted(os.listdir(tmp_path)) == []

    def test_env_is_added_to_the_inherited_environment(self, host, tmp_path, monkeypatch):
        monkeypatch.setenv("INHERITED_VAR", "from-parent")
        code = "import os; print(os.environ['INHERITED_VAR'], os.environ['EXTRA_VAR'])"
        result = host.run([PY, "-c", code], cwd=str(tmp_path), timeout=10,
                          env={"EXTRA_VAR": "given"})
        assert result.stdout == "from-parent given\n"
        assert "EXTRA_VAR" not in os.environ

    def test_env_overrides_an_inherited_value(self, host, tmp_path, monkeypatch):
        monkeypatch.setenv("LC_ALL", "en_US.UTF-8")
        code = "import os; print(os.environ['LC_ALL'])"
        result = host.run([PY, "-c", code], cwd=str(tmp_path), timeout=10, env={"LC_ALL": "C"})
        assert result.stdout == "C\n"

    def test_runs_in_its_own_session_so_it_has_no_terminal_to_prompt_on(self, host, tmp_path):
        code = "import os; print(os.getsid(0) == os.getpid() == os.getpgid(0))"
        assert host.run([PY, "-c", code], cwd=str(tmp_path), timeout=10).stdout == "True\n"

    def test_missing_command_and_missing_directory_are_results_not_exceptions(
        self, host, tmp_path
    ):
        missing = host.run(["no-such-command-xyz"], cwd=str(tmp_path), timeout=10)
        assert missing.exit_code == 127 and "command not found" in missing.stderr
        script = tmp_path / "script.sh"
        script.write_text("#!/bin/sh\necho hi\n")  # not executable
        denied = host.run([str(script)], cwd=str(tmp_path), timeout=10)
        assert denied.exit_code == 126
        nowhere = host.run(["true"], cwd=str(tmp_path / "gone"), timeout=10)
        assert nowhere.exit_code == 1 and "No such file or directory" in nowhere.stderr

    def test_a_string_is_refused_as_argv(self, host, tmp_path):
        with pytest.raises(TypeError, match="list of arguments"):
            host.run("echo hi", cwd=str(tmp_path), timeout=10)
        with pytest.raises(ValueError):
            host.run([], cwd=str(tmp_path), timeout=10)

    def test_undecodable_output_does_not_crash(self, host, tmp_path):
        code = "import sys; sys.stdout.buffer.write(b'ok \\xff\\xfe')"
        assert host.run([PY, "-c", code], cwd=str(tmp_path), timeout=10).stdout == "ok \ufffd\ufffd"


class TestTimeout:
    def test_kills_the_whole_process_group(self, host, tmp_path):
        """A shell that starts a grandchild `sleep`: both die, and run returns promptly."""
        pidfile = tmp_path / "grandchild.pid"
        # The sleep outlasts pytest's time-out: run returns in time only if the kill works.
        script = f"sleep 600 & echo $! > {pidfile}; echo started; wait"
        result = host.run(["sh", "-c", script], cwd=str(tmp_path), timeout=0.5)
        grandchild = int(_wait_for_file(pidfile))
        assert result.timed_out and not result.ok
        assert result.stdout == "started\n"  # output before the kill is kept
        deadline = time.monotonic() + 60
        while _alive(grandchild) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(grandchild)

    def test_a_grandchild_that_ignores_sigterm_is_killed_anyway(self, tmp_path):
        host = LocalHost(kill_grace=0.3)  # control_plane.kill_grace, for the local runner
        pidfile = tmp_path / "stubborn.pid"
        stubborn = (
            "import os, signal, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            f"open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
            "time.sleep(600)\n"  # past pytest's time-out: only SIGKILL ends it in time
        )
        parent = (
            "import subprocess, sys, time\n"
            f"subprocess.Popen([sys.executable, '-c', {stubborn!r}])\n"
            "time.sleep(600)\n"
        )
        result = host.run([PY, "-c", parent], cwd=str(tmp_path), timeout=1.0)
        assert result.timed_out
        grandchild = int(_wait_for_file(pidfile))
        deadline = time.monotonic() + 60
        while _alive(grandchild) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(grandchild)

    def test_a_fast_command_is_not_marked_timed_out(self, host, tmp_path):
        result = host.run(["true"], cwd=str(tmp_path), timeout=5)
        assert result.ok and not result.timed_out


class TestFiles:
    def test_read_and_write_preserve_crlf_and_the_missing_final_newline(self, host, tmp_path):
        path = tmp_path / "Dockerfile"
        path.write_bytes(b"FROM quay.io/astronomer/astro-runtime:12.4.0\r\nRUN x\r\nUSER a")
        text = host.read_text(str(path))
        assert text == "FROM quay.io/astronomer/astro-runtime:12.4.0\r\nRUN x\r\nUSER a"
        host.write_text(str(path), text.replace("12.4.0", "12.5.0"))
        assert path.read_bytes() == b"FROM quay.io/astronomer/astro-runtime:12.5.0\r\nRUN x\r\nUSER a"

    def test_utf8_and_bom_round_trip(self, host, tmp_path):
        path = tmp_path / "Dockerfile"
        raw = "\ufeff# café\nFROM x\n".encode()
        path.write_bytes(raw)
        host.write_text(str(path), host.read_text(str(path)))
        assert path.read_bytes() == raw

    def test_missing_file(self, host, tmp_path):
        with pytest.raises(FileNotFoundError):
            host.read_text(str(tmp_path / "nope"))
        assert not host.exists(str(tmp_path / "nope"))
        assert host.exists(str(tmp_path))

    @pytest.mark.parametrize("mode", [0o640, 0o755, 0o600])
    def test_atomic_write_keeps_the_mode_and_leaves_no_temp_file(self, host, tmp_path, mode):
        path = tmp_path / "Dockerfile"
        path.write_text("old\n")
        path.chmod(mode)
        before = path.stat().st_ino
        host.write_text(str(path), "new\n")
        assert stat.S_IMODE(path.stat().st_mode) == mode
        assert path.read_text() == "new\n"
        # A new inode means the file was replaced by rename, never rewritten in place
        # (a reader sees the old text or the new, never half of it).
        assert path.stat().st_ino != before
        assert os.listdir(tmp_path) == ["Dockerfile"]

    def test_new_file_gets_the_usual_mode(self, host, tmp_path):
        path = tmp_path / "new.txt"
        host.write_text(str(path), "x")
        mask = os.umask(0)
        os.umask(mask)
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask

    def test_a_symlink_stays_a_link_and_its_target_changes(self, host, tmp_path):
        real = tmp_path / "real"
        real.write_text("old\n")
        link = tmp_path / "Dockerfile"
        link.symlink_to(real)
        host.write_text(str(link), "new\n")
        assert link.is_symlink() and real.read_text() == "new\n"

    def test_failed_write_leaves_the_old_file_and_no_temp_file(self, host, tmp_path):
        path = tmp_path / "Dockerfile"
        path.write_text("old\n")
        with pytest.raises(UnicodeEncodeError):
            host.write_text(str(path), "bad \udcff surrogate")
        assert path.read_text() == "old\n"
        assert os.listdir(tmp_path) == ["Dockerfile"]


def test_one_instance_is_safe_across_threads(host, tmp_path):
    def work(number: int) -> tuple[str, str]:
        path = tmp_path / f"file{number}"
        host.write_text(str(path), f"{number}\r\n")
        result = host.run([PY, "-c", f"print({number})"], cwd=str(tmp_path), timeout=30)
        return result.stdout, host.read_text(str(path))

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(work, range(48)))
    assert outcomes == [(f"{n}\n", f"{n}\r\n") for n in range(48)]
