"""Rollout benchmark: a real `invoke upgrade --wave 1` of 1,000 Deployments (not in make test).

The fleet: 200 repos x 5 Deployments, all in wave 1, `parallel: 50` on the wave and on the
local runner, seeded in a simulator at time scale 1 whose deploy takes ``deploy_seconds``
(2 s) and whose Deployments turn HEALTHY ``healthy_after_seconds`` (0.5 s) later. The
playbook renders, deploys and verifies (``--commit`` adds the git commit step).

Printed:

* wall time of the run, and the ideal: every Deployment needs deploy + healthy seconds
  (2.5 s) of waiting, 50 at a time, so ceil(1000 / 50) x 2.5 s = 50 s; the ratio
  wall / ideal (goal <= 1.10);
* the orchestrator's own CPU time (the `invoke` process, children excluded:
  ``getrusage(RUSAGE_SELF)`` recorded by the process itself at exit, cross-checked with
  ``os.wait4`` of it, which includes its children) per Deployment (goal <= 5 ms), and its
  peak RSS (goal <= 150 MB);
* peers in the same process tree: (a) a bare loop doing only what the rollout must do
  against Astro — one ``astro-sim deploy`` per Deployment, then ``astro-sim deployment
  inspect`` until HEALTHY with the same 0.5 s first poll — 50 at a time, with no journal,
  no git, no plan; (b) a sleep-only scheduler (50 threads sleeping 2.5 s per Deployment),
  the floor of the scheduling itself.

``--ssh``: the repos live on SSH runners. One loopback OpenSSH server is started with
scripts/sshd-test-server.sh (and always stopped at the end, also on failure or SIGTERM);
the inventory declares ``--runners`` (4) runners, all pointing at it (distinct names, same
host and port, strict host keys against a generated known_hosts file, ``parallel:
--runner-parallel`` (10) each). 40 repos x 5 Deployments are spread round-robin over them,
wave 1 with ``parallel: 40``, so every repo's render (git checks and SFTP), git and
``astro-sim deploy`` run over SSH; waiting for HEALTHY stays on the orchestrator. The
ideal is ceil(200 / 40) x 2.5 s = 12.5 s, where 40 = min(wave parallel, runners x runner
parallel), and no runner needs more rounds than that (50 Deployments, 10 at a time).
Also printed: the orchestrator's CPU and peak RSS as above; the connections, commands,
SFTP sessions and refused session opens sshd logged; the phases of a Deployment from the
orchestrator's journal; the per-command overhead of ``SSHHost.run(["true"])`` on a pooled
connection against ``LocalHost.run(["true"])`` in this process (median and p95, idle
before the rollout, and sampled every 0.25 s during it); where the machine's CPU went
(orchestrator, runner side = sshd's process tree, simulator server; from /proc). Peers:
the same rollout with the repos on the local runner; the bare loop with each deploy over
SSH on its runner; the sleep-only scheduler.

Usage: .venv/bin/python benchmarks/rollout.py [--repos 200] [--per-repo 5] [--parallel 50]
       [--deploy-seconds 2] [--healthy-after 0.5] [--commit] [--skip-peers] [--keep]
       .venv/bin/python benchmarks/rollout.py --ssh [--repos 40] [--parallel 40]
       [--runners 4] [--runner-parallel 10] [--overhead-runs 200] [the options above]

Where the orchestrator's CPU goes: `pip install py-spy` (outside the venv) and sample the
`invoke` child with `py-spy record --gil --format raw -o out.txt --pid <pid>` while this
runs (``--gil``: only the thread holding the GIL, i.e. Python CPU), or pass ``--profile OUT``;
py-spy counts threads blocked in C (locks, sockets) as busy here, so ``--cpu-breakdown``
prints the CPU time of the parts of a Deployment's work instead (benchmarks/cpu_breakdown.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the tests' simulator helpers

from simulators import control_plane_settings, make_astro_project  # noqa: E402
from ssh_overhead import _times  # noqa: E402 - benchmarks/ is this script's own directory

from fleet_sim import lifecycle  # noqa: E402
from upgrade.config.inventory_loader import load_inventory  # noqa: E402
from upgrade.hosts.host import Host, LocalHost  # noqa: E402 - after the path set-up above
from upgrade.hosts.pool import HostPool  # noqa: E402
from upgrade.hosts.ssh import SSHHost  # noqa: E402

START, WORKSPACE = "12.1.0", "ws-bench"
RATIO_GOAL, CPU_GOAL_MS, RSS_GOAL_MB = 1.10, 5.0, 150.0
RSS_CURVE_GOAL_MB = 250.0  # at 5,000 Deployments
SSHD_SCRIPT = ROOT / "scripts" / "sshd-test-server.sh"
# Sizes of the --ssh mode (the local mode's are the argparse defaults of the brief's fleet).
SSH_REPOS, SSH_PARALLEL, SSH_RUNNERS, SSH_RUNNER_PARALLEL = 40, 40, 4, 10
PROBE_INTERVAL = 0.25  # s between the during-the-rollout overhead samples
CLOCK_TICK = os.sysconf("SC_CLK_TCK")

PLAYBOOK = """\
name: Benchmark
steps:
  - name: Rewrite the Dockerfile
    render: {{}}
{commit}  - name: Deploy
    deploy:
      timeout: 600
  - name: Verify
    verify:
      timeout: 600
      poll_interval: 10
"""
COMMIT = """  - name: Commit on a branch
    commit:
      branch: "runtime-upgrade/{{ target }}"
"""

# Runs the real `invoke` entry point (what .venv/bin/invoke runs) and, at exit, writes
# this process's own rusage (children excluded) and its children's to the file named
# in BENCH_RUSAGE: the orchestrator measures itself, nothing is sampled from outside.
WRAPPER = """\
import atexit, json, os, resource, sys
def _report():
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(os.environ["BENCH_RUSAGE"], "w") as f:
        json.dump({"self": [me.ru_utime, me.ru_stime, me.ru_maxrss],
                   "children": [kids.ru_utime, kids.ru_stime, kids.ru_maxrss]}, f)
atexit.register(_report)
if os.environ.get("BENCH_BREAKDOWN"):
    sys.path.insert(0, os.environ["BENCH_BREAKDOWN_DIR"])
    import cpu_breakdown
    cpu_breakdown.install(os.environ["BENCH_BREAKDOWN"])
from invoke.main import program
sys.argv = ["invoke", *sys.argv[1:]]
sys.exit(program.run())
"""


def build_fleet(root: Path, url: str, repos: int, per_repo: int, parallel: int, commit: bool,
                runners: dict[str, dict] | None = None) -> list[dict]:
    """Repos, inventory and playbook under ``root``; returns the simulator seed documents.

    With ``runners`` (name -> inventory settings) the repos are spread over those runners
    round-robin, each named by its absolute path (a path on an SSH runner is the runner's
    own, used as written); without, they are on the local runner, ``parallel`` at a time.
    """
    seeds, specs = [], {}
    names = list(runners or ())
    for r in range(repos):
        name = f"repo{r:03d}"
        make_astro_project(root / "repos" / name, f"FROM quay.io/astronomer/astro-runtime:{START}\n")
        deps = []
        for k in range(per_repo):
            dep_id = f"clbench{r:03d}x{k}"
            deps.append({"id": dep_id, "name": f"{name}-{k}", "workspace_id": WORKSPACE, "wave": 1})
            seeds.append({"id": dep_id, "name": f"{name}-{k}", "workspace_id": WORKSPACE,
                          "runtime_version": START})
        if names:
            specs[name] = {"path": str(root / "repos" / name), "runner": names[r % len(names)],
                           "deployments": deps}
        else:
            specs[name] = {"path": f"repos/{name}", "deployments": deps}
    inventory = {
        "target": "12.4",
        "control_plane": control_plane_settings(url),
        "journal": ".upgrade",
        "runners": runners or {"local": {"parallel": parallel}},
        "waves": {1: {"parallel": parallel}},
        "repos": specs,
    }
    (root / "inventory.yaml").write_text(yaml.safe_dump(inventory, sort_keys=False), "utf-8")
    (root / "playbooks").mkdir(exist_ok=True)
    (root / "playbooks" / "upgrade.yaml").write_text(
        PLAYBOOK.format(commit=COMMIT if commit else ""), "utf-8"
    )
    return seeds


def run_orchestrator(root: Path, started_pid: Callable[[int], None] | None = None) -> dict:
    """`invoke upgrade --wave 1` in a child; its wall time, own and children's rusage.

    ``started_pid`` is called with the child's pid once it runs.
    """
    wrapper = root / "bench_invoke.py"
    wrapper.write_text(WRAPPER, "utf-8")
    usage_file = root / "rusage.json"
    env = {**os.environ, "BENCH_RUSAGE": str(usage_file), "COLUMNS": "160",
           "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
           "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}
    log = (root / "run.log").open("w")
    launched = time.time()  # wall clock, to place the journal's timestamps
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(wrapper), "-r", str(ROOT), "upgrade", "--wave", "1"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    if started_pid is not None:
        started_pid(proc.pid)
    try:
        _, status, total = os.wait4(proc.pid, 0)
    except BaseException:
        # Interrupted or terminated ourselves: take the orchestrator down with us, so the
        # caller's clean-up (simulator, sshd) does not pull the ground from under it.
        proc.kill()
        proc.wait()
        raise
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    log.close()
    usage = json.loads(usage_file.read_text())
    return {
        "exit": proc.returncode,
        "wall": wall,
        "launched": launched,
        "self_cpu": usage["self"][0] + usage["self"][1],
        "self_sys": usage["self"][1],
        "self_rss_mb": usage["self"][2] / 1024,
        "children_cpu": usage["children"][0] + usage["children"][1],
        "wait4_cpu": total.ru_utime + total.ru_stime,  # the process and its reaped children
        "log": root / "run.log",
    }


def _until_healthy(astro: str, dep_id: str, env: dict[str, str], healthy_after: float) -> None:
    """``astro-sim deployment inspect`` until HEALTHY at the target, backing off as verify does."""
    delay = 0.0
    while True:
        out = subprocess.run([astro, "deployment", "inspect", dep_id, "-o", "json",
                              "--workspace-id", WORKSPACE],
                             env=env, capture_output=True, text=True, check=True).stdout
        if '"HEALTHY"' in out and "12.4.0" in out:
            return
        delay = min(10.0, delay * 2) if delay else min(10.0, healthy_after)
        time.sleep(delay)


def bare_peer(root: Path, url: str, seeds: list[dict], parallel: int, healthy_after: float) -> dict:
    """Only the Astro work, same parallelism: deploy, then inspect until HEALTHY."""
    astro = str(Path(sys.executable).parent / "astro-sim")
    env = {**os.environ, **lifecycle.sim_env(url)}

    def one(seed: dict) -> None:
        repo = root / "repos" / seed["name"].rsplit("-", 1)[0]
        base = ["--workspace-id", WORKSPACE]
        subprocess.run([astro, "deploy", seed["id"], "-f", *base, "--description", "peer"],
                       cwd=repo, env=env, capture_output=True, check=True)
        _until_healthy(astro, seed["id"], env, healthy_after)

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    mine = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, seeds))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    mine_after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "wall": wall,
        "children_cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "self_cpu": (mine_after.ru_utime + mine_after.ru_stime) - (mine.ru_utime + mine.ru_stime),
    }


def bare_ssh_peer(root: Path, url: str, seeds: list[dict], pool: HostPool,
                  runner_of: dict[str, str], parallel: int, runner_parallel: int,
                  healthy_after: float) -> dict:
    """The bare peer with each deploy on its repo's runner over SSH (as the rollout does it):
    ``runner_parallel`` Deployments at a time per runner, ``parallel`` in all."""
    astro = str(Path(sys.executable).parent / "astro-sim")
    local_env = {**os.environ, **lifecycle.sim_env(url)}
    remote_env = lifecycle.sim_env(url)  # the runner has its own environment; add only these
    overall = threading.Semaphore(parallel)
    lanes: dict[str, list[dict]] = {}
    for seed in seeds:
        lanes.setdefault(runner_of[seed["id"]], []).append(seed)

    def one(runner: str, seed: dict) -> None:
        with overall:
            repo = root / "repos" / seed["name"].rsplit("-", 1)[0]
            argv = [astro, "deploy", seed["id"], "-f", "--workspace-id", WORKSPACE,
                    "--description", "peer"]
            done = pool.host(runner).run(argv, cwd=str(repo), timeout=600, env=remote_env)
            if not done.ok:
                raise RuntimeError(f"astro-sim deploy {seed['id']} on {runner} exited "
                                   f"{done.exit_code}: {done.stderr[-300:]}")
            _until_healthy(astro, seed["id"], local_env, healthy_after)

    executors = {runner: ThreadPoolExecutor(max_workers=runner_parallel) for runner in lanes}
    mine = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    try:
        futures = [executors[runner].submit(one, runner, seed)
                   for runner, items in lanes.items() for seed in items]
        for future in futures:
            future.result()
    finally:
        for executor in executors.values():
            executor.shutdown(cancel_futures=True)
    wall = time.perf_counter() - started
    mine_after = resource.getrusage(resource.RUSAGE_SELF)
    kids_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall": wall,
        "self_cpu": (mine_after.ru_utime + mine_after.ru_stime) - (mine.ru_utime + mine.ru_stime),
        "children_cpu": (kids_after.ru_utime + kids_after.ru_stime) - (kids.ru_utime + kids.ru_stime),
        "sessions_refused": sum(getattr(pool.host(r), "sessions_refused", 0) for r in lanes),
    }


class Profiler:
    """``py-spy record`` attached to the orchestrator once it runs (``--profile OUT``).

    Samples the threads that are on a CPU (``--gil`` would name the GIL's last holder, which
    blames lock releases for time spent elsewhere), and writes collapsed stacks (one ``frame;frame;... count`` line each) to ``out``; py-spy
    stops when the orchestrator exits. py-spy is found on $PATH or in $PY_SPY; it is not a
    dependency of the project (``pip install --target /tmp/pyspy py-spy``).
    """

    def __init__(self, out: Path | None):
        self.out = out
        self.proc: subprocess.Popen | None = None

    def attach(self, pid: int) -> None:
        """Start sampling ``pid`` (a no-op without ``--profile``)."""
        if self.out is None:
            return
        exe = os.environ.get("PY_SPY") or shutil.which("py-spy")
        if exe is None:
            raise SystemExit("--profile needs py-spy on $PATH or in $PY_SPY")
        self.proc = subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--format", "raw",
             "--rate", "100", "--output", str(self.out)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finish(self) -> None:
        """Wait for py-spy to write its file and say where it is."""
        if self.proc is not None:
            self.proc.wait(timeout=60)
            print(f"  profile (py-spy, collapsed stacks) {self.out}")


def sleep_peer(count: int, parallel: int, seconds: float) -> float:
    """The scheduling floor: ``count`` sleeps of ``seconds``, ``parallel`` at a time."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(lambda _: time.sleep(seconds), range(count)))
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- SSH mode


@dataclass
class SSHServer:
    """The loopback sshd of the --ssh mode, and what a client needs to reach it."""

    dir: Path
    port: int
    user: str
    key: Path
    host_key_pub: Path
    pid: int

    def write_known_hosts(self, path: Path) -> Path:
        """A known_hosts file that knows this server (and nothing else) as 127.0.0.1."""
        kind, key = self.host_key_pub.read_text().split()[:2]
        path.write_text(f"[127.0.0.1]:{self.port} {kind} {key}\n", "utf-8")
        return path

    def log_size(self) -> int:
        """Where sshd's log ends now: the offset for :meth:`activity_since`."""
        log = self.dir / "sshd.log"
        return log.stat().st_size if log.exists() else 0

    def activity_since(self, offset: int) -> dict[str, int]:
        """From sshd's own log (LogLevel VERBOSE) after ``offset``: the connections
        authenticated, the command and SFTP sessions opened on those connections, and the
        session opens sshd refused (MaxSessions)."""
        with (self.dir / "sshd.log").open("rb") as handle:
            handle.seek(offset)
            lines = handle.read().decode("utf-8", "replace").splitlines()
        ports = {m.group(1) for line in lines
                 if (m := re.search(r"^Accepted publickey for .* port (\d+) ", line))}
        # A refused session open names no port; the other client (the probe) runs one
        # command at a time, so it never meets the limit.
        counts = {"connections": len(ports), "commands": 0, "sftp": 0,
                  "refused": sum("no more sessions" in line for line in lines)}
        for line in lines:
            m = re.search(r"^Starting session: (command|subsystem 'sftp') .* port (\d+) ", line)
            if m and m.group(2) in ports:
                counts["commands" if m.group(1) == "command" else "sftp"] += 1
        return counts


def start_sshd(directory: Path) -> SSHServer:
    """Install (if missing) and start the test sshd in ``directory`` (scripts/sshd-test-server.sh)."""
    for action in (["install"], ["start", str(directory)]):
        done = subprocess.run(["bash", str(SSHD_SCRIPT), *action], capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            raise SystemExit(f"scripts/sshd-test-server.sh {action[0]} failed: "
                             f"{done.stderr.strip()[-1500:]}")
    env = dict(line.split("=", 1) for line in done.stdout.split() if "=" in line)
    return SSHServer(dir=directory, port=int(env["SSHD_PORT"]), user=env["SSHD_USER"],
                     key=Path(env["SSHD_KEY"]), host_key_pub=Path(env["SSHD_HOST_KEY_PUB"]),
                     pid=int(env["SSHD_PID"]))


def stop_sshd(directory: Path, pid: int | None) -> None:
    """Stop the sshd started in ``directory`` (a no-op if none was) and wait for it to go."""
    subprocess.run(["bash", str(SSHD_SCRIPT), "stop", str(directory)], capture_output=True,
                   stdin=subprocess.DEVNULL, check=False)
    deadline = time.monotonic() + 5
    while pid is not None and Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _processes() -> dict[int, list[str]]:
    """/proc/PID/stat of every process, as the fields after the command name."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                text = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # exited meanwhile
            # The command name is in parentheses and may hold anything; fields follow it.
            table[int(entry)] = text[text.rindex(")") + 2:].split()
    return table


def children_of(pid: int) -> list[int]:
    """The live direct children of ``pid``."""
    return [child for child, fields in _processes().items() if int(fields[1]) == pid]


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + sys) of ``pid`` and of all its descendants, living or reaped.

    A process's cutime/cstime hold its reaped descendants; the living ones are counted
    from their own entries, so nothing is counted twice.
    """
    table = _processes()
    kids: dict[int, list[int]] = {}
    for child, fields in table.items():
        kids.setdefault(int(fields[1]), []).append(child)
    ticks, todo = 0, [pid]
    while todo:
        current = todo.pop()
        if current in table:
            ticks += sum(int(x) for x in table[current][11:15])  # utime stime cutime cstime
            todo.extend(kids.get(current, []))
    return ticks / CLOCK_TICK


def _true(host: Host) -> None:
    # Safe to repeat: if the connection drops mid-command (paramiko's EOF-after-CLOSE race,
    # paramiko#1115, makes sshd cut it), SSHHost reconnects and runs it again; the
    # reconnects are counted and shown rather than ending the benchmark.
    repeat = {"idempotent": True} if isinstance(host, SSHHost) else {}
    done = host.run(["true"], cwd="/", timeout=30, **repeat)
    if not done.ok:
        raise RuntimeError(f"`true` on {host.name} exited {done.exit_code}: {done.stderr[-300:]}")


def command_overhead(ssh: Host, local: Host, runs: int) -> tuple[list[float], list[float]]:
    """ms per ``run(["true"])``: ``runs`` samples on ``ssh`` then on ``local``, after a warm-up."""
    for _ in range(20):  # connect, and warm both paths
        _true(ssh)
        _true(local)
    return _times(lambda: _true(ssh), runs), _times(lambda: _true(local), runs)


class Probe:
    """Every PROBE_INTERVAL s: times one ``run(["true"])`` on an SSH host and on LocalHost,
    and reads the threads and open file descriptors of the process set as ``watched``."""

    def __init__(self, ssh: Host, local: Host):
        self.ssh, self.local = ssh, local
        self.ssh_ms: list[float] = []
        self.local_ms: list[float] = []
        self.watched: int | None = None
        self.peak_threads = self.peak_fds = 0
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="probe", daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        try:
            while not self._stop.wait(PROBE_INTERVAL):
                self._look()
                self.ssh_ms += _times(lambda: _true(self.ssh), 1)
                self.local_ms += _times(lambda: _true(self.local), 1)
        except Exception as exc:  # reported with the figures; the rollout goes on
            self.error = exc

    def _look(self) -> None:
        if self.watched is None:
            return
        try:
            threads = len(os.listdir(f"/proc/{self.watched}/task"))
            fds = len(os.listdir(f"/proc/{self.watched}/fd"))
        except OSError:
            return  # it has exited
        self.peak_threads = max(self.peak_threads, threads)
        self.peak_fds = max(self.peak_fds, fds)


def _stats(samples: list[float]) -> tuple[float, float]:
    """(median, p95) in ms; p95 as ssh_overhead.py computes it."""
    if len(samples) < 2:
        return (samples[0], samples[0]) if samples else (math.nan, math.nan)
    return statistics.median(samples), statistics.quantiles(samples, n=20)[-1]


def _timing_line(name: str, samples: list[float]) -> str:
    median, p95 = _stats(samples)
    return f"  {name:<34} median {median:6.2f} ms   p95 {p95:6.2f} ms"


def _wait_until_no_sessions(server: SSHServer, timeout: float = 10.0) -> None:
    # Closed connections leave sshd's per-connection processes to exit and be reaped;
    # only then does the listener's cutime hold their CPU.
    deadline = time.monotonic() + timeout
    while children_of(server.pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def ssh_runners(server: SSHServer, known_hosts: Path, count: int, parallel: int) -> dict[str, dict]:
    """``count`` inventory runners, build-1..build-N, all on ``server`` (strict host keys)."""
    return {
        f"build-{i + 1}": {
            "host": "127.0.0.1", "port": server.port, "user": server.user,
            "key_file": str(server.key), "known_hosts": "strict",
            "known_hosts_file": str(known_hosts), "parallel": parallel,
        }
        for i in range(count)
    }


def journal_phases(journal: Path) -> dict[str, Any] | None:
    """Where a run's time went, from the orchestrator's journal; None if it cannot be read.

    Per Deployment (lists of seconds): ``deploy``, deploying -> deployed (the step: waiting
    for a free SSH channel, the SFTP check, the command); ``command``, the ``astro deploy``
    command alone, as the step's message reports it; ``verify``, deployed -> verified;
    ``start``, wave start -> deploying (waiting for a slot, and the repo's shared render).
    And ``first``/``last``: wall-clock time of the first registration and last verification.
    """
    try:
        with contextlib.closing(sqlite3.connect(f"file:{journal}?mode=ro", uri=True)) as db:
            rows = db.execute(
                "SELECT deployment_id, kind, to_state, at, message FROM events "
                "WHERE kind IN ('registered', 'transition') ORDER BY seq").fetchall()
    except sqlite3.Error:
        return None
    seen: dict[str, dict[str, float]] = {}
    took: dict[str, float] = {}
    for dep, kind, state, at, message in rows:
        when = datetime.fromisoformat(at).timestamp()
        seen.setdefault(dep, {})["registered" if kind == "registered" else state] = when
        if state == "deployed" and (m := re.search(r" in ([0-9.]+)s$", message or "")):
            took[dep] = float(m.group(1))
    done = [t for t in seen.values() if {"registered", "deploying", "deployed", "verified"} <= t.keys()]
    if not done:
        return None
    first = min(t["registered"] for t in done)
    return {
        "start": [t["deploying"] - first for t in done],
        "deploy": [t["deployed"] - t["deploying"] for t in done],
        "command": list(took.values()),
        "verify": [t["verified"] - t["deployed"] for t in done],
        "first": first,
        "last": max(t["verified"] for t in done),
    }


def _print_phases(run: dict, args: argparse.Namespace) -> None:
    phases = journal_phases(run["log"].parent / ".upgrade" / "journal.db")
    if phases is None:
        print("  (the journal could not be read for the phases)")
        return
    before = phases["first"] - run["launched"]
    wave = phases["last"] - phases["first"]
    print(f"  where the wall went  {before:.1f} s start-up and plan, {wave:.1f} s the wave "
          f"(first registered -> last verified), {run['wall'] - before - wave:.1f} s after it")
    rows = [("deploy step (deploying -> deployed)", "deploy", f"ideal {args.deploy_seconds:g} s"),
            ("  its astro-sim deploy command", "command", "as the step reports it"),
            ("verify step (deployed -> verified)", "verify",
             f"ideal {args.healthy_after:g} s"),
            ("wave start -> deploying", "start", "slot, shared render")]
    for label, key, note in rows:
        if phases[key]:
            median, p95 = _stats(phases[key])
            print(f"  {label:<38} median {median:5.2f} s  p95 {p95:5.2f} s  ({note})")


@dataclass
class SSHRun:
    """What one orchestrator run on SSH runners measured."""

    run: dict
    idle_ssh: list[float]
    idle_local: list[float]
    probe: Probe
    remote_cpu: float
    sim_cpu: float
    sshd_seen: dict[str, int]
    probe_connections: int  # opened by this process's SSHHost: 1 unless one dropped


def measure_ssh_rollout(root: Path, server: SSHServer, sim_pid: int, probe_runner: str,
                        overhead_runs: int) -> SSHRun:
    """Per-command overhead (idle), then the rollout with the probe and /proc CPU accounting."""
    local = LocalHost()
    with HostPool(load_inventory(root / "inventory.yaml")) as pool:
        probe_host = pool.host(probe_runner)
        idle_ssh, idle_local = command_overhead(probe_host, local, overhead_runs)
        # Only this process's connection is open now: its sshd processes are the probe's,
        # whose CPU is taken out of the runner side's below.
        probe_pids = children_of(server.pid)
        probe_before = sum(tree_cpu(p) for p in probe_pids)
        remote_before, sim_before = tree_cpu(server.pid), tree_cpu(sim_pid)
        log_offset = server.log_size()
        with Probe(probe_host, local) as probe:
            run = run_orchestrator(root, lambda pid: setattr(probe, "watched", pid))
        probe_cpu = sum(tree_cpu(p) for p in probe_pids) - probe_before
        sim_cpu = tree_cpu(sim_pid) - sim_before
        opened = getattr(probe_host, "connections_opened", 1)
    _wait_until_no_sessions(server)
    # The probe's connection predates log_offset, so sshd_seen is the orchestrator's alone
    # (unless the probe had to reconnect: shown with the figures).
    return SSHRun(run, idle_ssh, idle_local, probe,
                  remote_cpu=tree_cpu(server.pid) - remote_before - probe_cpu, sim_cpu=sim_cpu,
                  sshd_seen=server.activity_since(log_offset), probe_connections=opened)


def _print_ssh_run(m: SSHRun, args: argparse.Namespace, count: int, ideal: float,
                   at_once: int, per_runner: list[int], rounds: int, probe_runner: str) -> None:
    run = m.run
    per_dep_ms = 1000 * run["self_cpu"] / count
    print(f"\ninvoke upgrade --wave 1, repos on {args.runners} SSH runners (exit 0)")
    print(f"  wall time            {run['wall']:.1f} s")
    print(f"  ideal                {ideal:.1f} s  = ceil({count}/{at_once}) x "
          f"({args.deploy_seconds:g} s deploy + {args.healthy_after:g} s to HEALTHY)")
    print(f"                       {at_once} at once = min(wave parallel {args.parallel}, "
          f"{args.runners} runners x {args.runner_parallel}); busiest runner "
          f"ceil({max(per_runner)}/{args.runner_parallel}) = "
          f"{math.ceil(max(per_runner) / args.runner_parallel)} rounds; {rounds} rounds")
    print(f"  wall / ideal         {run['wall'] / ideal:.2f}  (goal <= {RATIO_GOAL:.2f})")
    print(f"  orchestrator CPU     {run['self_cpu']:.1f} s = {per_dep_ms:.1f} ms per "
          f"Deployment  (goal <= {CPU_GOAL_MS:g} ms; its own user+sys, children excluded)")
    print(f"  its children's CPU   {run['children_cpu']:.1f} s (what it ran locally); "
          f"wait4 total {run['wait4_cpu']:.1f} s")
    print(f"  orchestrator peak RSS {run['self_rss_mb']:.0f} MB  (goal <= {RSS_GOAL_MB:g} MB)")
    print(f"  orchestrator peak    {m.probe.peak_threads} threads, {m.probe.peak_fds} open "
          f"file descriptors (sampled every {PROBE_INTERVAL:g} s)")
    print(f"  machine              {os.cpu_count()} CPUs")
    seen = m.sshd_seen
    print(f"  over SSH             {seen['connections']} connections ({args.runners} runners), "
          f"{seen['commands']} commands ({seen['commands'] / count:.1f} per Deployment), "
          f"{seen['sftp']} SFTP sessions; sshd refused {seen['refused']} session opens "
          "(MaxSessions; retried)")
    _print_phases(run, args)

    ssh_median, ssh_p95 = _stats(m.idle_ssh)
    local_median, local_p95 = _stats(m.idle_local)
    print(f"\nper-command overhead, pooled connection of runner {probe_runner}, idle "
          f"(before the rollout, {len(m.idle_ssh)} runs each)")
    print(_timing_line("SSHHost.run(['true'])", m.idle_ssh))
    print(_timing_line("LocalHost.run(['true']) (peer)", m.idle_local))
    print(f"  {'SSH overhead per command':<34} +{ssh_median - local_median:.2f} ms median "
          f"({ssh_median / local_median:.1f}x LocalHost), +{ssh_p95 - local_p95:.2f} ms p95")
    print(f"the same during the rollout (one of each every {PROBE_INTERVAL:g} s, "
          f"{len(m.probe.ssh_ms)} samples)")
    if m.probe.error is not None:
        print(f"  the probe stopped early: {m.probe.error}")
    if m.probe_connections != 1:
        print(f"  this process's connection dropped and was reopened "
              f"{m.probe_connections - 1} time(s): those samples include a new connection")
    if m.probe.ssh_ms:
        print(_timing_line("SSHHost.run(['true'])", m.probe.ssh_ms))
        print(_timing_line("LocalHost.run(['true']) (peer)", m.probe.local_ms))

    total = run["wait4_cpu"] + m.remote_cpu + m.sim_cpu
    capacity = (os.cpu_count() or 1) * run["wall"]
    print(f"\nwhere the CPU went during the rollout ({os.cpu_count()} CPUs x "
          f"{run['wall']:.1f} s = {capacity:.1f} CPU-s available)")
    print(f"  orchestrator (invoke)                  {run['self_cpu']:5.1f} s")
    print(f"  its local children                     {run['children_cpu']:5.1f} s")
    print(f"  runner side: sshd, sh, timeout, git,   {m.remote_cpu:5.1f} s = "
          f"{1000 * m.remote_cpu / count:.0f} ms per Deployment")
    print("    astro-sim deploy (sshd's process tree, the probe's connection excluded)")
    print(f"  simulator server                       {m.sim_cpu:5.1f} s")
    print(f"  total                                  {total:5.1f} s = "
          f"{100 * total / capacity:.0f} % of the machine")


def _ssh_peers(args: argparse.Namespace, tmp: Path, root: Path, server: SSHServer, url: str,
               seeds: list[dict], ideal: float, at_once: int) -> None:
    """Run and print the --ssh mode's three peers against the same simulator and sshd."""
    count = len(seeds)
    per_item = args.deploy_seconds + args.healthy_after

    # (a) The same rollout with the repos on the local runner: what SSH adds.
    local_root = tmp / "fleet-local"
    local_root.mkdir()
    build_fleet(local_root, url, args.repos, args.per_repo, at_once, args.commit)
    lifecycle.seed(url, seeds)  # every Deployment back at 12.1.0
    run = run_orchestrator(local_root)
    if run["exit"] != 0:
        print(run["log"].read_text()[-3000:])
        raise SystemExit(f"peer: invoke upgrade (local runner) exited {run['exit']}")
    print(f"\npeer: the same rollout with the repos on the local runner (parallel {at_once})")
    print(f"  wall time            {run['wall']:.1f} s  (wall / ideal {run['wall'] / ideal:.2f})")
    print(f"  orchestrator CPU     {1000 * run['self_cpu'] / count:.1f} ms per Deployment; its "
          f"children (astro-sim, git) {run['children_cpu']:.1f} s; peak RSS "
          f"{run['self_rss_mb']:.0f} MB")
    _print_phases(run, args)

    # (b) Only the Astro work, with the deploy over SSH.
    inventory = load_inventory(root / "inventory.yaml")
    runner_of = {seed["id"]: inventory.runner_of(inventory.deployment(seed["id"])).name
                 for seed in seeds}
    lifecycle.seed(url, seeds)
    remote_before = tree_cpu(server.pid)
    with HostPool(inventory) as pool:
        peer = bare_ssh_peer(root, url, seeds, pool, runner_of, args.parallel,
                             args.runner_parallel, args.healthy_after)
    _wait_until_no_sessions(server)
    peer_remote = tree_cpu(server.pid) - remote_before
    print(f"\npeer: bare astro-sim deploy over SSH (on the repo's runner, "
          f"{args.runner_parallel} per runner) + local inspect-until-HEALTHY, "
          f"{at_once} at a time")
    print(f"  wall time            {peer['wall']:.1f} s  (wall / ideal "
          f"{peer['wall'] / ideal:.2f})")
    print(f"  runner-side CPU      {peer_remote:.1f} s = "
          f"{1000 * peer_remote / count:.0f} ms per Deployment")
    print(f"  astro-sim inspect CPU {peer['children_cpu']:.1f} s; the loop's own CPU "
          f"(paramiko included) {1000 * peer['self_cpu'] / count:.1f} ms per Deployment")
    print(f"  session opens sshd refused and the peer retried: {peer['sessions_refused']}")

    # (c) The scheduling floor.
    floor = sleep_peer(count, at_once, per_item)
    print(f"\npeer: sleep-only scheduler ({count} x {per_item:g} s, {at_once} threads)")
    print(f"  wall time            {floor:.1f} s  (wall / ideal {floor / ideal:.2f})")


def run_ssh(args: argparse.Namespace) -> int:
    """The --ssh mode: the same rollout with the repos on SSH runners of one loopback sshd."""
    count = args.repos * args.per_repo
    per_item = args.deploy_seconds + args.healthy_after
    per_runner = [args.per_repo * len(range(i, args.repos, args.runners))
                  for i in range(args.runners)]
    at_once = min(args.parallel, args.runners * args.runner_parallel)
    rounds = max(math.ceil(count / at_once),
                 max(math.ceil(n / args.runner_parallel) for n in per_runner))
    ideal = rounds * per_item

    tmp = Path(tempfile.mkdtemp(prefix="rollout-ssh-bench-"))
    sshd_dir = tmp / "sshd"
    server: SSHServer | None = None
    try:
        server = start_sshd(sshd_dir)
        info = lifecycle.start(tmp / "sim", time_scale=1.0)
        post_config(info.url, {"deploy_seconds": args.deploy_seconds,
                                "healthy_after_seconds": args.healthy_after,
                                "deploying_after_seconds": 0, "time_scale": 1.0})
        known = server.write_known_hosts(tmp / "known_hosts")
        runners = ssh_runners(server, known, args.runners, args.runner_parallel)
        root = tmp / "fleet"
        root.mkdir()
        t = time.perf_counter()
        seeds = build_fleet(root, info.url, args.repos, args.per_repo, args.parallel,
                            args.commit, runners)
        lifecycle.seed(info.url, seeds)
        print(f"fleet: {count} Deployments in {args.repos} repos on {args.runners} SSH runners "
              f"(round-robin, {', '.join(map(str, per_runner))} Deployments each), wave 1 "
              f"parallel {args.parallel}, runner parallel {args.runner_parallel}; playbook "
              f"render{' + commit' if args.commit else ''} + deploy + verify; built in "
              f"{time.perf_counter() - t:.1f}s")
        print(f"simulator: deploy {args.deploy_seconds:g}s, HEALTHY {args.healthy_after:g}s "
              f"later, time scale 1 ({info.url})")
        print(f"sshd: one OpenSSH server on 127.0.0.1:{server.port} (pid {server.pid}), "
              f"user {server.user}, strict host keys; every runner points at it")

        probe_runner = next(iter(runners))
        measured = measure_ssh_rollout(root, server, info.pid, probe_runner, args.overhead_runs)
        if measured.run["exit"] != 0:
            print(measured.run["log"].read_text()[-3000:])
            raise SystemExit(f"invoke upgrade exited {measured.run['exit']}")
        _print_ssh_run(measured, args, count, ideal, at_once, per_runner, rounds, probe_runner)
        if not args.skip_peers:
            _ssh_peers(args, tmp, root, server, info.url, seeds, ideal, at_once)
    finally:
        lifecycle.stop(tmp / "sim")
        stop_sshd(sshd_dir, server.pid if server else None)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def run_local(args: argparse.Namespace) -> int:
    """The default mode: every repo on the local runner, once per size of ``--sizes``
    (Deployments; default ``--repos`` x ``--per-repo``), then the scaling table."""
    sizes = args.sizes or [args.repos * args.per_repo]
    rows = []
    for count in sizes:
        if len(sizes) > 1:
            print(f"\n{'-' * 20} {count} Deployments {'-' * 20}", flush=True)
        rows.append(_run_local_size(args, count))
    failed = sum(r["failed"] for r in rows)
    if len(sizes) > 1:
        print(f"\nscaling ({os.cpu_count()} CPUs; parallel {args.parallel}; goals: CPU per "
              f"Deployment <= {CPU_GOAL_MS:g} ms and not growing with size, peak RSS < "
              f"{RSS_CURVE_GOAL_MB:g} MB at 5,000)")
        print(f"  {'Deployments':>11} {'wall s':>8} {'ideal s':>8} {'wall/ideal':>10} "
              f"{'CPU ms/Dep':>10} {'peak RSS MB':>11} {'peer wall s':>11} {'ours/peer':>9}")
        for r in rows:
            peer = f"{r['peer_wall']:11.1f} {r['wall'] / r['peer_wall']:9.2f}" if r["peer_wall"] \
                else f"{'-':>11} {'-':>9}"
            print(f"  {r['count']:>11} {r['wall']:8.1f} {r['ideal']:8.1f} "
                  f"{r['wall'] / r['ideal']:10.2f} {r['cpu_ms']:10.1f} {r['rss_mb']:11.0f} {peer}"
                  + (f"  ({r['failed']} failed)" if r["failed"] else ""))
        first, last = rows[0], rows[-1]
        print(f"  CPU per Deployment {last['count']} vs {first['count']}: "
              f"{last['cpu_ms'] / first['cpu_ms']:.2f}x")
    if failed:
        print(f"{failed} Deployment(s) failed (named above): the figures include them")
    return 1 if failed else 0


def _print_requests(before: Any, after: Any, count: int, wall: float) -> None:
    """What the run asked of Astro's APIs (the simulator's request counts): per kind, per
    Deployment, and per Deployment per minute of the run (requests spread over its wall)."""
    kinds = {k: int(after.get(k, 0)) - int(before.get(k, 0)) for k in after}
    platform = sum(n for k, n in kinds.items() if k.startswith("platform"))
    minutes = max(wall, 1e-9) / 60
    print(f"  Astro API requests   {platform} to the platform API = "
          f"{platform / count:.1f} per Deployment = {platform / count / minutes:.1f} per "
          f"Deployment per minute of the run")
    for kind, n in sorted(kinds.items()):
        if n:
            print(f"    {kind:<32} {n:6d}  {n / count:5.1f} per Deployment  "
                  f"{n / count / minutes:5.1f} per Deployment per minute")


def _run_local_size(args: argparse.Namespace, count: int) -> dict:
    """One rollout of ``count`` Deployments (and its peers, up to ``--peer-limit``)."""
    repos = math.ceil(count / args.per_repo)
    count = repos * args.per_repo
    per_item = args.deploy_seconds + args.healthy_after
    ideal = math.ceil(count / args.parallel) * per_item

    tmp = Path(tempfile.mkdtemp(prefix="rollout-bench-"))
    info = lifecycle.start(tmp / "sim", time_scale=1.0)
    try:
        config = {"deploy_seconds": args.deploy_seconds,
                  "healthy_after_seconds": args.healthy_after,
                  "deploying_after_seconds": 0, "time_scale": 1.0}
        post_config(info.url, config)
        root = tmp / "fleet"
        root.mkdir()
        t = time.perf_counter()
        seeds = build_fleet(root, info.url, repos, args.per_repo, args.parallel, args.commit)
        lifecycle.seed(info.url, seeds)
        print(f"fleet: {count} Deployments in {repos} repos, wave 1, parallel "
              f"{args.parallel} (wave and local runner), playbook render"
              f"{' + commit' if args.commit else ''} + deploy + verify; built in "
              f"{time.perf_counter() - t:.1f}s")
        print(f"simulator: deploy {args.deploy_seconds:g}s, HEALTHY {args.healthy_after:g}s "
              f"later, time scale 1 ({info.url})")

        breakdown = root / "cpu-breakdown.txt"
        if args.cpu_breakdown:
            os.environ.update(BENCH_BREAKDOWN=str(breakdown),
                              BENCH_BREAKDOWN_DIR=str(Path(__file__).resolve().parent))
        profiler = Profiler(args.profile and args.profile.with_name(
            f"{args.profile.stem}-{count}{args.profile.suffix}") if args.sizes else args.profile)
        sim_before = tree_cpu(info.pid)
        asked_before = lifecycle.admin(info.url, "GET", "/_sim/requests")
        run = run_orchestrator(root, profiler.attach)
        sim_cpu = tree_cpu(info.pid) - sim_before
        asked = lifecycle.admin(info.url, "GET", "/_sim/requests")
        profiler.finish()
        failures = _failures(run)
        if failures is None:
            print(run["log"].read_text()[-3000:])
            raise SystemExit(f"invoke upgrade exited {run['exit']}")
        per_dep_ms = 1000 * run["self_cpu"] / count
        # A wave halted by a few failed Deployments still measured the rest: its figures
        # are printed, the failures named, and the script's exit status says so.
        print(f"\ninvoke upgrade --wave 1 (exit {run['exit']}"
              + (f"; {len(failures)} Deployment(s) FAILED" if failures else "") + ")")
        for line in failures[:10]:
            print(f"  failed: {line}")
        print(f"  wall time            {run['wall']:.1f} s")
        print(f"  ideal                {ideal:.1f} s  = ceil({count}/{args.parallel}) x "
              f"({args.deploy_seconds:g} s deploy + {args.healthy_after:g} s to HEALTHY)")
        print(f"  wall / ideal         {run['wall'] / ideal:.2f}  (goal <= {RATIO_GOAL:.2f})")
        print(f"  orchestrator CPU     {run['self_cpu']:.1f} s = {per_dep_ms:.1f} ms per "
              f"Deployment  (goal <= {CPU_GOAL_MS:g} ms; its own user+sys, children excluded; "
              f"{run['self_sys']:.1f} s of it in the kernel)")
        print(f"  its children's CPU   {run['children_cpu']:.1f} s (astro-sim, git); "
              f"wait4 total {run['wait4_cpu']:.1f} s")
        print(f"  orchestrator peak RSS {run['self_rss_mb']:.0f} MB  (goal <= {RSS_GOAL_MB:g} MB)")
        # Astro's and Docker's stand-in shares the 2 cores: its CPU is part of the wall.
        print(f"  simulator server CPU {sim_cpu:.1f} s = {1000 * sim_cpu / count:.1f} ms per "
              "Deployment (the platform API, the builds, the Airflow API)")
        print(f"  machine              {os.cpu_count()} CPUs")
        _print_requests(asked_before, asked, count, run["wall"])
        if args.cpu_breakdown:
            print("\nwhere the orchestrator's CPU went (each part's own threads' CPU time)")
            print(breakdown.read_text(), end="")

        peer_wall = None
        if args.skip_peers:
            pass
        elif count > args.peer_limit:
            print(f"\npeers: not run above {args.peer_limit} Deployments (--peer-limit)")
        else:
            lifecycle.seed(info.url, seeds)  # every Deployment back at 12.1.0
            peer = bare_peer(root, info.url, seeds, args.parallel, args.healthy_after)
            peer_wall = peer["wall"]
            print(f"\npeer: bare astro-sim deploy + inspect-until-HEALTHY, {args.parallel} at a time")
            print(f"  wall time            {peer['wall']:.1f} s  (wall / ideal "
                  f"{peer['wall'] / ideal:.2f}; ours / peer {run['wall'] / peer['wall']:.2f})")
            print(f"  astro-sim CPU        {peer['children_cpu']:.1f} s = "
                  f"{1000 * peer['children_cpu'] / count:.0f} ms per Deployment")
            print(f"  the loop's own CPU   {1000 * peer['self_cpu'] / count:.1f} ms per Deployment")
            # The scheduling floor is the ideal give or take a few ms at any size: on the
            # curve, once (at the smallest size) is enough.
            if not args.sizes or count == min(args.sizes):
                floor = sleep_peer(count, args.parallel, per_item)
                print(f"\npeer: sleep-only scheduler ({count} x {per_item:g} s, "
                      f"{args.parallel} threads)")
                print(f"  wall time            {floor:.1f} s  (wall / ideal {floor / ideal:.2f})")
    finally:
        lifecycle.stop(tmp / "sim")
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"count": count, "wall": run["wall"], "ideal": ideal, "cpu_ms": per_dep_ms,
            "rss_mb": run["self_rss_mb"], "peer_wall": peer_wall, "failed": len(failures)}


def _failures(run: dict) -> list[str] | None:
    """The recap lines of the Deployments that failed ([] after exit 0); None when the
    run did not get as far as a recap (any exit but 0 and 4, a wave halted)."""
    if run["exit"] == 0:
        return []
    if run["exit"] != 4:
        return None
    lines = run["log"].read_text(errors="replace").splitlines()
    return [line.strip() for line in lines if re.search(r" : failed ", line)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ssh", action="store_true",
                        help="put the repos on SSH runners of one loopback sshd")
    parser.add_argument("--repos", type=int, help=f"default 200 ({SSH_REPOS} with --ssh)")
    parser.add_argument("--per-repo", type=int, default=5)
    parser.add_argument("--parallel", type=int,
                        help=f"the wave's (and the local runner's); default 50 ({SSH_PARALLEL} with --ssh)")
    parser.add_argument("--deploy-seconds", type=float, default=2.0)
    parser.add_argument("--healthy-after", type=float, default=0.5)
    parser.add_argument("--commit", action="store_true", help="add the git commit step")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the tmp dir (prints it)")
    parser.add_argument("--sizes", type=_sizes, metavar="N,N,...",
                        help="run once per fleet size (Deployments) and print the scaling "
                             "curve; local mode only")
    parser.add_argument("--peer-limit", type=int, default=1000, metavar="N",
                        help="run the peers only at sizes up to N Deployments (default 1000)")
    parser.add_argument("--cpu-breakdown", action="store_true",
                        help="print the orchestrator's own CPU per part of a Deployment's work "
                             "(benchmarks/cpu_breakdown.py)")
    parser.add_argument("--profile", type=Path, metavar="OUT",
                        help="sample the orchestrator with py-spy into OUT (collapsed stacks)")
    ssh = parser.add_argument_group("--ssh only")
    ssh.add_argument("--runners", type=int, help=f"SSH runners (default {SSH_RUNNERS})")
    ssh.add_argument("--runner-parallel", type=int,
                     help=f"each runner's parallel (default {SSH_RUNNER_PARALLEL})")
    ssh.add_argument("--overhead-runs", type=int,
                     help="SSHHost/LocalHost run(['true']) samples each (default 200)")
    args = parser.parse_args()
    ssh_only = [f"--{name.replace('_', '-')}" for name in ("runners", "runner_parallel", "overhead_runs")
                if getattr(args, name) is not None]
    if args.sizes and args.ssh:
        parser.error("--sizes is for the local mode")
    if ssh_only and not args.ssh:
        parser.error(f"{', '.join(ssh_only)} only apply with --ssh")
    defaults = {"repos": SSH_REPOS if args.ssh else 200,
                "parallel": SSH_PARALLEL if args.ssh else 50, "runners": SSH_RUNNERS,
                "runner_parallel": SSH_RUNNER_PARALLEL, "overhead_runs": 200}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in ("repos", "per_repo", "parallel", "runners", "runner_parallel", "overhead_runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.overhead_runs < 2:
        parser.error("--overhead-runs must be at least 2 (a p95 needs two samples)")
    # `kill` (SIGTERM) must clean up as Ctrl-C does: stop the simulator and sshd.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    return run_ssh(args) if args.ssh else run_local(args)


def _sizes(text: str) -> list[int]:
    """``100,1000,5000`` -> [100, 1000, 5000]."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected sizes like 100,1000,5000, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("every size must be at least 1")
    return sizes


def post_config(url: str, config: dict) -> None:
    from fleet_sim.client import request

    status, _, raw = request(url, "POST", "/_sim/config", config)
    if status // 100 != 2:
        raise SystemExit(f"configuring the simulator failed: {raw[:300]!r}")


if __name__ == "__main__":
    sys.exit(main())
