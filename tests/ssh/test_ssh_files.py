"""SSHHost files over SFTP: exact bytes, atomic replacement, modes, symlinks."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from upgrade.hosts.host import LocalHost
from upgrade.hosts.ssh import SSHHost

pytestmark = pytest.mark.sshd

TEXTS = {
    "crlf": "FROM quay.io/astronomer/astro-runtime:12.1.0\r\nRUN echo hi\r\n",
    "no final newline": "FROM astrocrpublic.azurecr.io/runtime:3.1-1",
    "unicode": "# Maintainer: Zoë 中文\nFROM x\n",
    "empty": "",
    "mixed endings": "a\r\nb\nc\rd",
}


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_bytes_survive_both_directions(ssh_host: SSHHost, tmp_path: Path, text: str) -> None:
    local = tmp_path / "Dockerfile"
    local.write_bytes(text.encode())
    assert ssh_host.read_text(str(local)) == text
    ssh_host.write_text(str(local), text + "X")
    assert local.read_bytes() == (text + "X").encode()


def test_read_of_a_missing_file_raises_file_not_found(ssh_host: SSHHost, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ssh_host.read_text(str(tmp_path / "absent"))


def test_exists_for_files_directories_and_dangling_links(ssh_host: SSHHost, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert ssh_host.exists(str(tmp_path / "file"))
    assert ssh_host.exists(str(tmp_path))
    assert not ssh_host.exists(str(tmp_path / "nowhere"))
    assert not ssh_host.exists(str(tmp_path / "dangling"))


def test_write_keeps_the_mode_and_new_files_get_the_usual_mode(ssh_host: SSHHost, tmp_path: Path) -> None:
    script = tmp_path / "build.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o750)
    ssh_host.write_text(str(script), "#!/bin/sh\necho new\n")
    assert script.stat().st_mode & 0o7777 == 0o750
    fresh = tmp_path / "new.txt"
    ssh_host.write_text(str(fresh), "hello")
    LocalHost().write_text(str(tmp_path / "local.txt"), "hello")
    # The runner's sshd was started by this process, so both apply the same umask.
    assert fresh.stat().st_mode & 0o7777 == (tmp_path / "local.txt").stat().st_mode & 0o7777


def test_write_through_a_symlink_updates_the_target_and_keeps_the_link(ssh_host: SSHHost, tmp_path: Path) -> None:
    target = tmp_path / "real" / "Dockerfile"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "Dockerfile"
    link.symlink_to(target)
    ssh_host.write_text(str(link), "new\n")
    assert link.is_symlink()
    assert target.read_text() == "new\n"


def test_write_is_atomic_and_leaves_no_temp_files(ssh_host: SSHHost, tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    versions = ["A" * 2_000_000, "B" * 2_000_000]
    path.write_text(versions[0])
    seen: set[str] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            with open(path, "rb") as handle:  # a new open sees one whole file or the other
                data = handle.read()
            seen.add("A" if data == versions[0].encode() else "B" if data == versions[1].encode()
                     else f"torn ({len(data)} bytes)")

    watcher = threading.Thread(target=reader)
    watcher.start()
    try:
        for i in range(6):
            ssh_host.write_text(str(path), versions[(i + 1) % 2])
    finally:
        stop.set()
        watcher.join()
    assert seen <= {"A", "B"}, seen
    assert os.listdir(tmp_path) == ["Dockerfile"]


def test_write_into_a_missing_directory_fails_and_leaves_nothing(ssh_host: SSHHost, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ssh_host.write_text(str(tmp_path / "no-dir" / "Dockerfile"), "x")
    assert list(tmp_path.iterdir()) == []


def test_file_operations_survive_a_dropped_connection(ssh_host: SSHHost, sshd, tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text("one\n")
    assert ssh_host.read_text(str(path)) == "one\n"
    assert sshd.drop_connections() > 0
    ssh_host.write_text(str(path), "two\n")
    assert path.read_text() == "two\n"
    assert ssh_host.connections_opened == 2
