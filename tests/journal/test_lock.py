"""One writer per journal: real processes hold, lose and take over the flock."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.journal.helpers import python_child, wait_line
from upgrade.errors import EXIT_LOCKED, LockHeld
from upgrade.journal.lock import LOCK_FILE, Holder, RunLock, force_unlock
from upgrade.journal.records import os_user

# Holds the lock and, if asked, starts a long-lived grandchild (as `astro deploy` would be).
HOLDER = """
import subprocess, sys, time
from upgrade.journal.lock import RunLock
with RunLock(sys.argv[1], "invoke upgrade --wave 1"):
    if len(sys.argv) > 2:
        child = subprocess.Popen(["sleep", "60"])
        print("grandchild", child.pid, flush=True)
    print("locked", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    return tmp_path / ".upgrade"


@pytest.fixture
def holder(journal_dir: Path) -> Iterator[subprocess.Popen[str]]:
    proc = python_child(HOLDER, str(journal_dir))
    try:
        wait_line(proc, "locked")
        yield proc
    finally:
        proc.kill()
        proc.wait()


def sigkill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def test_second_run_is_refused_naming_the_holder(journal_dir: Path,
                                                 holder: subprocess.Popen[str]) -> None:
    with pytest.raises(LockHeld) as err, RunLock(journal_dir, "invoke upgrade --wave 2"):
        pytest.fail("a second run got the lock")
    message = str(err.value)
    assert message.startswith("another run holds the journal lock: invoke upgrade --wave 1 by "
                              f"{os_user()} on {socket.gethostname()}, pid {holder.pid}, since ")
    assert " ago). Wait for it, or if it is dead run `astro-fleet unlock`." in message
    assert err.value.exit_code == EXIT_LOCKED


def test_lock_file_is_private_and_names_the_holder(journal_dir: Path,
                                                   holder: subprocess.Popen[str]) -> None:
    path = journal_dir / LOCK_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(journal_dir.stat().st_mode) == 0o700
    details = json.loads(path.read_text())
    assert details["pid"] == holder.pid
    assert details["command"] == "invoke upgrade --wave 1"
    since = datetime.fromisoformat(details["since"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - since) < timedelta(minutes=1)


def test_dead_holder_is_taken_over_with_a_note(journal_dir: Path,
                                               holder: subprocess.Popen[str]) -> None:
    sigkill(holder)
    with RunLock(journal_dir, "invoke upgrade --wave 1") as lock:
        assert lock.note is not None
        assert f"pid {holder.pid}" in lock.note
        assert "invoke upgrade --wave 1" in lock.note
        assert "that process is gone" in lock.note
        assert json.loads((journal_dir / LOCK_FILE).read_text())["pid"] == os.getpid()
    # A clean exit leaves no name behind, so the next run has nothing to take over.
    assert (journal_dir / LOCK_FILE).read_text() == ""
    with RunLock(journal_dir, "invoke verify-all") as lock:
        assert lock.note is None


def test_lock_dies_with_its_holder_even_if_a_grandchild_lives_on(journal_dir: Path) -> None:
    proc = python_child(HOLDER, str(journal_dir), "spawn")
    grandchild = 0
    try:
        grandchild = int(wait_line(proc, "grandchild").split()[1])
        wait_line(proc, "locked")
        sigkill(proc)
        os.kill(grandchild, 0)  # still running, and must not be keeping the lock
        with RunLock(journal_dir, "invoke upgrade --wave 1") as lock:
            assert lock.note is not None and f"pid {proc.pid}" in lock.note
    finally:
        proc.kill()
        proc.wait()
        if grandchild:
            os.kill(grandchild, signal.SIGKILL)


def test_force_unlock_refuses_while_the_holder_lives(journal_dir: Path,
                                                     holder: subprocess.Popen[str]) -> None:
    with pytest.raises(LockHeld, match=f"a live run holds the journal lock: invoke upgrade "
                                       f"--wave 1 by .* pid {holder.pid}"):
        force_unlock(journal_dir)
    assert json.loads((journal_dir / LOCK_FILE).read_text())["pid"] == holder.pid
    sigkill(holder)
    note = force_unlock(journal_dir)
    assert note is not None and f"pid {holder.pid}" in note
    assert (journal_dir / LOCK_FILE).read_text() == ""
    assert force_unlock(journal_dir) is None  # nothing left to clear


def test_force_unlock_without_a_lock_file(journal_dir: Path) -> None:
    assert force_unlock(journal_dir) is None
    assert not journal_dir.exists()


def test_lock_left_by_another_host_is_taken_over_with_the_nfs_caveat(journal_dir: Path) -> None:
    journal_dir.mkdir(mode=0o700)
    since = datetime.now(UTC) - timedelta(hours=2, minutes=5)
    left = Holder("ci", "build-7.example.com", 4242, since, "invoke upgrade --wave 3")
    (journal_dir / LOCK_FILE).write_text(left.to_json())
    with RunLock(journal_dir, "invoke upgrade --wave 3") as lock:
        assert lock.note is not None
        assert "invoke upgrade --wave 3 by ci on build-7.example.com, pid 4242" in lock.note
        assert "(2h05m ago)" in lock.note
        assert "NFS" in lock.note and "build-7.example.com" in lock.note


def test_two_locks_in_one_process_also_exclude_each_other(journal_dir: Path) -> None:
    with RunLock(journal_dir, "invoke upgrade --wave 1"), pytest.raises(LockHeld):
        RunLock(journal_dir, "invoke upgrade --wave 2").acquire()
    with RunLock(journal_dir, "invoke upgrade --wave 2") as lock:
        assert lock.note is None
