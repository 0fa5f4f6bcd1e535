"""HostPool and check_runners on an inventory whose runners are the loopback sshd."""

from __future__ import annotations

import socket
import sys
import textwrap
from pathlib import Path

import pytest

from upgrade.config.inventory_loader import load_inventory
from upgrade.errors import RunnerUnreachable
from upgrade.hosts.host import LocalHost
from upgrade.hosts.pool import HostPool, RunnerProblem, check_runners
from upgrade.hosts.ssh import SSHHost

pytestmark = pytest.mark.sshd


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _fleet(tmp_path: Path, sshd) -> Path:  # type: ignore[no-untyped-def]
    """Repos on four runners: two healthy, one down, one whose host key is unknown."""
    for name in ("local-app", "ok", "templated"):
        (tmp_path / "repos" / name).mkdir(parents=True)
    (tmp_path / "repos" / "local-app" / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "repos" / "ok" / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "repos" / "no-dockerfile").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "t.j2").write_text("FROM x\n")
    inventory = tmp_path / "inventory.yaml"
    repos = tmp_path / "repos"

    def repo(name: str, runner: str, path: Path, extra: str = "") -> str:
        deployment = f"{{id: {name}-dev, name: {name}-dev, workspace_id: ws-1, wave: 1}}"
        return f"  {name}: {{path: {path}, runner: {runner}, deployments: [{deployment}]{extra}}}\n"

    body = "".join([
        repo("local-app", "local", repos / "local-app"),
        repo("ok", "build-1", repos / "ok"),
        repo("templated", "build-1", repos / "templated", ", template: {name: t.j2}"),
        repo("no-dockerfile", "build-1", repos / "no-dockerfile"),
        repo("not-cloned", "build-1", repos / "not-cloned"),
        repo("on-down", "down", repos / "ok"),
        repo("on-stranger", "stranger", repos / "ok"),
    ])
    inventory.write_text(textwrap.dedent(f"""\
        target: "12.4"
        runners:
          build-1: {{host: 127.0.0.1, port: {sshd.port}, user: {sshd.user}, key_file: {sshd.key}}}
          down: {{host: 127.0.0.1, port: {_free_port()}, user: {sshd.user}, key_file: {sshd.key}}}
          stranger: {{host: localhost, port: {sshd.port}, user: {sshd.user}, key_file: {sshd.key}}}
          spare: {{host: 127.0.0.1, port: {sshd.port}, user: {sshd.user}, key_file: {sshd.key}}}
        repos:
        """) + body)
    return inventory


def test_the_pool_gives_each_repo_its_runners_host_and_connects_lazily(sshd, known_hosts: Path, tmp_path: Path) -> None:
    inventory = load_inventory(_fleet(tmp_path, sshd))
    with HostPool(inventory, known_hosts_file=known_hosts) as pool:
        assert isinstance(pool.host_for("local-app"), LocalHost)
        remote = pool.host_for(inventory.repos["ok"])
        assert isinstance(remote, SSHHost) and remote is pool.host("build-1")
        assert pool.host_for("no-dockerfile") is remote  # one Host, one connection per runner
        assert remote.connections_opened == 0  # nothing connects until used
        assert remote.read_text(str(tmp_path / "repos" / "ok" / "Dockerfile")) == "FROM x\n"
        assert remote.run(["true"], cwd="/", timeout=5, idempotent=True).ok
        assert remote.connections_opened == 1
        with pytest.raises(RunnerUnreachable, match="Runner down"):
            pool.host("down").run(["true"], cwd="/", timeout=5)


def test_check_runners_reports_every_problem_at_once(sshd, known_hosts: Path, tmp_path: Path) -> None:
    inventory = load_inventory(_fleet(tmp_path, sshd))
    with HostPool(inventory, known_hosts_file=known_hosts) as pool:
        problems = check_runners(inventory, pool, astro_bin="/opt/nowhere/astro")
    by_place = {(p.runner, p.repo): p.message for p in problems}
    assert set(by_place) == {
        ("build-1", ""),  # the astro CLI is missing there
        ("build-1", "no-dockerfile"),
        ("build-1", "not-cloned"),
        ("down", ""),
        ("local", ""),  # astro is missing here too
        ("spare", ""),  # an SSH runner without repos is still checked
        ("stranger", ""),
    }, problems
    assert len(problems) == 7
    assert "the astro CLI '/opt/nowhere/astro' was not found" in by_place[("build-1", "")]
    assert f"{tmp_path}/repos/not-cloned does not exist there" in by_place[("build-1", "not-cloned")]
    assert "Dockerfile does not exist there" in by_place[("build-1", "no-dockerfile")]
    assert "connection was refused" in by_place[("down", "")]
    assert sshd.fingerprint() in by_place[("stranger", "")]
    assert problems == sorted(problems)
    assert str(problems[0]).startswith("runner build-1: ")
    assert str(RunnerProblem("r", "app", "m.")) == "runner r, repo app: m."


def test_check_runners_is_quiet_for_a_healthy_fleet(sshd, known_hosts: Path, tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM x\n")
    path = tmp_path / "inventory.yaml"
    path.write_text(textwrap.dedent(f"""\
        target: "12.4"
        runners:
          build-1: {{host: 127.0.0.1, port: {sshd.port}, user: {sshd.user}, key_file: {sshd.key}}}
        repos:
          app:
            path: {tmp_path / "app"}
            runner: build-1
            deployments: [{{id: a1, name: app-dev, workspace_id: ws-1, wave: 1}}]
        """))
    inventory = load_inventory(path)
    astro = str(Path(sys.executable).parent / "astro-sim")  # any executable will do
    with HostPool(inventory, known_hosts_file=known_hosts) as pool:
        assert check_runners(inventory, pool, astro_bin=astro) == []
