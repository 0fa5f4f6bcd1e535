"""Helpers for the rollout tests: generated fleets, the real `invoke` command, journal reads.

A generated fleet is ``repos`` real git repos (Astro projects at Runtime 12.1.0), each
feeding ``per_repo`` Deployments of wave 1, an inventory pointing at the test's simulator
(by URL), and a playbook with fast verification polling. Everything a test asserts on is
read back from the real artefacts: the journal file, the simulator's admin API, git.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from simulators import SimHandle, make_astro_project

from fleet_sim import lifecycle
from upgrade.journal.lock import Holder
from upgrade.journal.records import DeploymentRecord, Event
from upgrade.journal.store import Journal

ROOT = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).parent / "invoke")
START = "12.1.0"
TARGET = "12.4.0"
DOCKERFILE = "FROM quay.io/astronomer/astro-runtime:{version}\n"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Rollout Test",
    "GIT_AUTHOR_EMAIL": "rollout@example.invalid",
    "GIT_COMMITTER_NAME": "Rollout Test",
    "GIT_COMMITTER_EMAIL": "rollout@example.invalid",
}

# Verification polls every 0.1 s: the simulator (time scale 0.001) turns HEALTHY 0.12 s
# after a deploy, so a verify takes a few polls instead of the default 0.5 s back-off.
FAST_PLAYBOOK = """\
name: Fast upgrade for tests
steps:
  - name: Rewrite the Dockerfile
    render: {{}}
  - name: Commit the change
    commit:
      branch: "runtime-upgrade/{{{{ target }}}}"
{extra}  - name: Deploy
    deploy:
      timeout: {deploy_timeout}
  - name: Verify
    verify:
      timeout: {verify_timeout}
      poll_interval: 0.1
"""


def run_step(argv: Sequence[str], when: str | None = None, name: str = "Hook") -> str:
    """A playbook `run` step (repo scope) as YAML text, for FAST_PLAYBOOK's ``extra``."""
    lines = [f"  - name: {name}\n"]
    if when:
        lines.append(f"    when: {yaml.safe_dump(when, default_style=chr(34)).strip()}\n")
    lines.append("    run:\n")
    lines.append(f"      argv: {yaml.safe_dump(list(argv), default_flow_style=True).strip()}\n")
    lines.append("      timeout: 60\n")
    return "".join(lines)


def sim_hook(sim: SimHandle, path: str, body: Mapping[str, Any], method: str = "POST") -> list[str]:
    """argv of a command that changes the simulator (a test hook run between plan and deploy)."""
    code = (
        "import json, sys; from fleet_sim.client import request; "
        "status, _, raw = request(sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])); "
        "sys.exit(0 if status // 100 == 2 else raw)"
    )
    return [sys.executable, "-c", code, sim.url, method, path, _json(body)]


def _json(body: Mapping[str, Any]) -> str:
    import json

    return json.dumps(dict(body))


@dataclass
class Dep:
    """One generated Deployment."""

    id: str
    name: str
    repo: str


@dataclass
class GenFleet:
    """A generated fleet in a tmp dir, wired to a running simulator."""

    root: Path
    sim: SimHandle
    deps: list[Dep] = field(default_factory=list)

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.yaml"

    @property
    def journal_file(self) -> Path:
        return self.root / ".upgrade" / "journal.db"

    @property
    def lock_file(self) -> Path:
        return self.root / ".upgrade" / "lock"

    def dep(self, name: str) -> Dep:
        return next(d for d in self.deps if d.name == name)

    def repo_path(self, repo: str) -> Path:
        return self.root / "repos" / repo

    # -- running the real command ---------------------------------------------------------

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {**os.environ, **GIT_IDENTITY, "COLUMNS": "200", **(extra or {})}

    def invoke(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `invoke ARGS` in the fleet's directory and wait for it."""
        return invoke(self.root, *args, env=self.env(), timeout=timeout)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start `invoke ARGS` in the background (output to pipes)."""
        return subprocess.Popen(
            [INVOKE, "-r", str(ROOT), *args], cwd=self.root, env=self.env(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    # -- reading what happened --------------------------------------------------------------

    @contextmanager
    def journal(self) -> Iterator[Journal]:
        with Journal.open(self.journal_file) as journal:
            yield journal

    def records(self) -> dict[str, DeploymentRecord]:
        """The active (else the latest) rollout's Deployment rows, by Deployment name."""
        return records(self.journal_file)

    def events(self, kind: str | None = None) -> list[Event]:
        with self.journal() as j:
            return [e for e in j.events(None) if kind is None or e.kind == kind]

    def sim_dep(self, dep: Dep | str) -> dict:
        dep_id = dep.id if isinstance(dep, Dep) else self.dep(dep).id
        return self.sim.deployment(dep_id)

    def deploy_counts(self) -> dict[str, int]:
        """Finalized deploys per Deployment name, as the simulator recorded them."""
        return {d.name: self.sim.deployment(d.id)["deploy_count"] for d in self.deps}

    def attempts(self) -> dict[str, int]:
        """Every deploy the simulator saw start (including failed ones), per name."""
        return {d.name: len(self.sim.deployment(d.id)["deploy_attempts"]) for d in self.deps}


def invoke(
    cwd: Path, *args: str, env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The real `invoke` command, as a user runs it."""
    return subprocess.run(
        [INVOKE, "-r", str(ROOT), *args], cwd=cwd, env=dict(env), capture_output=True,
        text=True, timeout=timeout, check=False,
    )


def records(journal_file: Path) -> dict[str, DeploymentRecord]:
    """Deployment rows of the active rollout (else the newest one), by name."""
    with Journal.open(journal_file) as j:
        rollout = j.active_rollout() or (j.rollouts() or [None])[-1]
        assert rollout is not None, "the journal has no rollout"
        return {r.name: r for r in j.deployments(rollout.id)}


def make_fleet(
    tmp_path: Path,
    sim: SimHandle,
    *,
    repos: int = 4,
    per_repo: int = 1,
    wave: Mapping[str, Any] | None = None,
    runner_parallel: int | None = None,
    extra_steps: str = "",
    deploy_timeout: float = 60,
    verify_timeout: float = 10,
    target: str = "12.4",
    version: str = START,
    control_plane: Mapping[str, Any] | None = None,
) -> GenFleet:
    """Create repos, inventory and playbook under ``tmp_path/fleet``; seed the simulator."""
    root = tmp_path / "fleet"
    (root / "repos").mkdir(parents=True)
    fleet = GenFleet(root, sim)
    repo_specs: dict[str, Any] = {}
    for r in range(repos):
        repo = f"r{r:02d}"
        make_astro_project(root / "repos" / repo, DOCKERFILE.format(version=version),
                           origin=f"git@git.example.invalid:fleet/{repo}.git")
        deps = []
        for k in range(per_repo):
            dep = Dep(f"cl{r:03d}x{k:02d}", f"{repo}-d{k}", repo)
            fleet.deps.append(dep)
            deps.append({"id": dep.id, "name": dep.name, "workspace_id": "ws-1", "wave": 1})
        repo_specs[repo] = {"path": f"repos/{repo}", "deployments": deps}
    doc: dict[str, Any] = {
        "target": target,
        "control_plane": sim.control_plane_settings(**(control_plane or {})),
        "journal": ".upgrade",
        "waves": {1: dict(wave or {})},
        "repos": repo_specs,
    }
    if runner_parallel is not None:
        doc["runners"] = {"local": {"parallel": runner_parallel}}
    (root / "inventory.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    (root / "playbooks").mkdir()
    (root / "playbooks" / "upgrade.yaml").write_text(
        FAST_PLAYBOOK.format(
            extra=extra_steps, deploy_timeout=deploy_timeout, verify_timeout=verify_timeout
        ),
        "utf-8",
    )
    lifecycle.seed(
        sim.url,
        [{"id": d.id, "name": d.name, "workspace_id": "ws-1", "runtime_version": version}
         for d in fleet.deps],
    )
    return fleet


def kill_mid_deploy(fleet: GenFleet, sim: SimHandle, name: str,
                    others: Sequence[str] | None = None) -> int:
    """Start wave 1, SIGKILL it while `name` is deploying (``others``, default every other
    Deployment, verified), and kill that deploy too."""
    dep = fleet.dep(name)
    sim.set_fault(dep.id, deploy_extra_seconds=20_000)  # a 20 s build: surely caught in it
    proc = fleet.start("upgrade", "--wave", "1")
    try:
        if others is None:
            others = [d.name for d in fleet.deps if d.name != name]
        children = wait_for(
            lambda: state_of(fleet.journal_file, name) == "deploying"
            and all(state_of(fleet.journal_file, n) == "verified" for n in others)
            and deploy_children(proc.pid, dep.id),
            what=f"{name} deploying, the others verified",
        )
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    for child in children:  # the orphaned `astro deploy` (it runs in its own session)
        kill_group(child)
    sim.clear_faults(dep.id)
    return proc.pid


def wait_for(predicate: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def lock_holder_pid(lock_file: Path) -> int | None:
    """The pid named in the journal lock file, if any."""
    try:
        holder = Holder.parse(lock_file.read_text("utf-8"))
    except FileNotFoundError:
        return None
    return holder.pid if holder else None


def state_of(journal_file: Path, name: str) -> str | None:
    """One Deployment's journal state, or None before the journal/row exists."""
    if not journal_file.exists():
        return None
    try:
        row = records(journal_file).get(name)
    except (AssertionError, Exception):  # the journal may be mid-creation
        return None
    return row.state if row else None


def deploy_children(parent_pid: int, deployment_id: str | None = None) -> list[int]:
    """Pids of the `astro-sim deploy` children of ``parent_pid`` (of one Deployment, if given)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        words = [a.decode(errors="replace") for a in argv if a]
        if ppid != parent_pid or "deploy" not in words:
            continue
        if not any(w.endswith("astro-sim") for w in words[:2]):
            continue
        if deployment_id is not None and deployment_id not in words:
            continue
        pids.append(int(entry.name))
    return pids


def kill_group(pid: int) -> None:
    """SIGKILL a child's process group (astro deploys run in their own session)."""
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def git(path: Path, *args: str) -> str:
    """Run git in a repo; its stdout."""
    return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True,
                          check=True).stdout


def log_lines(stderr: str) -> list[str]:
    """The LogReporter's lines without their HH:MM:SS stamp."""
    return [line[9:] if line[:2].isdigit() and line[2:3] == ":" else line
            for line in stderr.splitlines()]
