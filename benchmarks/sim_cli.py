"""CPU of one ``astro-sim`` call, as a whole process, against ``python -c pass``, in one run.

A fleet run spawns ``astro-sim`` once per deploy and once per look that goes through the
CLI, so its cost per call is what the rollout benchmark's children cost; the real astro CLI
(a Go binary) costs a few tens of ms for a non-build command, and so should its stand-in.
Measured in a real Astro project (a git repo with one commit) against a simulator whose
deploy takes no time: ``deploy <id> -f``, ``deployment inspect <id> -o json`` and
``deployment list --json``, each ``--runs`` times after one warm-up, as the median CPU time
(user + system of the process and everything it ran, e.g. git; from ``RUSAGE_CHILDREN``)
and the median wall time. Goal: <= 25 ms of CPU per call. The peer, the same way:
``python -c pass`` of the same interpreter (what any Python command pays before its first
line). Bytecode is compiled first, so no call pays for compiling. The project has an
``origin``, so each deploy collects its git metadata as astro-cli does (five git runs); what
those runs cost is measured on their own in the same run and shown beside the deploy.

Usage: .venv/bin/python benchmarks/sim_cli.py [--runs 20]
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from upgrade.sim import gitmeta, lifecycle  # noqa: E402 - after the path set-up above
from upgrade.sim.client import request  # noqa: E402
from upgrade.sim.testing import make_astro_project  # noqa: E402

GOAL_MS = 25.0
DEPLOYMENT, WORKSPACE = "clsimcli0", "ws-bench"


def once(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(CPU ms, wall ms) of one run of ``argv`` and everything it ran."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: "
                         f"{done.stdout.decode()[-300:]} {done.stderr.decode()[-300:]}")
    return (1000 * ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)),
            1000 * wall)


def git_metadata_once(project: Path) -> float:
    """CPU ms of the git processes one deploy runs for its metadata (children only)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    meta, _ = gitmeta.collect(project, say=lambda _: None)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if meta is None:
        raise SystemExit("the benchmark project's deploys carry no git metadata")
    return 1000 * ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    compileall.compile_dir(ROOT / "upgrade", quiet=1)
    tmp = Path(tempfile.mkdtemp(prefix="sim-cli-bench-"))
    info = lifecycle.start(tmp / "sim", time_scale=1.0)
    try:
        request(info.url, "POST", "/_sim/config",
                {"deploy_seconds": 0, "healthy_after_seconds": 0, "deploying_after_seconds": 0})
        lifecycle.seed(info.url, [{"id": DEPLOYMENT, "name": "bench", "workspace_id": WORKSPACE,
                                   "runtime_version": "12.1.0"}])
        project = make_astro_project(tmp / "project",
                                     "FROM quay.io/astronomer/astro-runtime:12.4.0\n",
                                     origin="git@github.com:acme/bench.git")
        env = {**os.environ, **lifecycle.sim_env(info.url)}
        astro = str(Path(sys.executable).parent / "astro-sim")
        rows = [
            ("python -c pass (peer)", [sys.executable, "-c", "pass"]),
            ("astro-sim --help", [astro, "--help"]),
            ("astro-sim deployment inspect", [astro, "deployment", "inspect", DEPLOYMENT,
                                              "-o", "json", "--workspace-id", WORKSPACE]),
            ("astro-sim deployment list", [astro, "deployment", "list", "--json",
                                           "--workspace-id", WORKSPACE]),
            ("astro-sim deploy", [astro, "deploy", DEPLOYMENT, "-f", "--workspace-id",
                                  WORKSPACE, "--description", "bench"]),
        ]
        print(f"median of {args.runs} rounds; {os.cpu_count()} CPUs, maybe shared: compare "
              "within this run only")
        print(f"  {'command':<30} {'CPU ms':>7} {'wall ms':>8} {'CPU - peer':>10}  goal <= "
              f"{GOAL_MS:g} ms CPU")
        # Round robin, one warm-up round first: a noisy neighbour then slows every row alike.
        samples: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in rows}
        git_runs: list[float] = []
        for round_ in range(args.runs + 1):
            for label, argv in rows:
                sample = once(argv, project, env)
                if round_:
                    samples[label].append(sample)
            if round_:
                git_runs.append(git_metadata_once(project))
        peer = statistics.median(cpu for cpu, _ in samples[rows[0][0]])
        for label, _ in rows:
            cpu = statistics.median(c for c, _ in samples[label])
            wall = statistics.median(w for _, w in samples[label])
            verdict = "" if label.endswith("(peer)") else \
                f"  {cpu / GOAL_MS:.2f} of the goal ({'met' if cpu <= GOAL_MS else 'MISSED'})"
            print(f"  {label:<30} {cpu:7.1f} {wall:8.1f} {cpu - peer:+10.1f}{verdict}")
        git = statistics.median(git_runs)
        print(f"  of which the deploy's git runs (its git metadata, as astro-cli collects it): "
              f"{git:.1f} ms CPU; the deploy less those: {cpu - git:.1f} ms")
    finally:
        lifecycle.stop(tmp / "sim")
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
