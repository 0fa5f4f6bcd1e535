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

Usage: .venv/bin/python benchmarks/rollout.py [--repos 200] [--per-repo 5] [--parallel 50]
       [--deploy-seconds 2] [--healthy-after 0.5] [--commit] [--skip-peers] [--keep]

Where the orchestrator's CPU goes: `pip install py-spy` (outside the venv) and sample the
`invoke` child with `py-spy record --gil --format raw -o out.txt --pid <pid>` while this
runs (``--gil``: only the thread holding the GIL, i.e. Python CPU).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from upgrade.sim import lifecycle  # noqa: E402 - after the path set-up above
from upgrade.sim.testing import make_astro_project  # noqa: E402

START, WORKSPACE = "12.1.0", "ws-bench"
RATIO_GOAL, CPU_GOAL_MS, RSS_GOAL_MB = 1.10, 5.0, 150.0

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
from invoke.main import program
sys.argv = ["invoke", *sys.argv[1:]]
sys.exit(program.run())
"""


def build_fleet(root: Path, url: str, repos: int, per_repo: int, parallel: int, commit: bool) -> list[dict]:
    """Repos, inventory and playbook under ``root``; returns the simulator seed documents."""
    seeds, specs = [], {}
    for r in range(repos):
        name = f"repo{r:03d}"
        make_astro_project(root / "repos" / name, f"FROM quay.io/astronomer/astro-runtime:{START}\n")
        deps = []
        for k in range(per_repo):
            dep_id = f"clbench{r:03d}x{k}"
            deps.append({"id": dep_id, "name": f"{name}-{k}", "workspace_id": WORKSPACE, "wave": 1})
            seeds.append({"id": dep_id, "name": f"{name}-{k}", "workspace_id": WORKSPACE,
                          "runtime_version": START})
        specs[name] = {"path": f"repos/{name}", "deployments": deps}
    inventory = {
        "target": "12.4",
        "control_plane": {"simulator": url},
        "journal": ".upgrade",
        "runners": {"local": {"parallel": parallel}},
        "waves": {1: {"parallel": parallel}},
        "repos": specs,
    }
    (root / "inventory.yaml").write_text(yaml.safe_dump(inventory, sort_keys=False), "utf-8")
    (root / "playbooks").mkdir(exist_ok=True)
    (root / "playbooks" / "upgrade.yaml").write_text(
        PLAYBOOK.format(commit=COMMIT if commit else ""), "utf-8"
    )
    return seeds


def run_orchestrator(root: Path) -> dict:
    """`invoke upgrade --wave 1` in a child; its wall time, own and children's rusage."""
    wrapper = root / "bench_invoke.py"
    wrapper.write_text(WRAPPER, "utf-8")
    usage_file = root / "rusage.json"
    env = {**os.environ, "BENCH_RUSAGE": str(usage_file), "COLUMNS": "160",
           "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
           "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}
    log = (root / "run.log").open("w")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(wrapper), "-r", str(ROOT), "upgrade", "--wave", "1"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    _, status, total = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    log.close()
    usage = json.loads(usage_file.read_text())
    return {
        "exit": proc.returncode,
        "wall": wall,
        "self_cpu": usage["self"][0] + usage["self"][1],
        "self_rss_mb": usage["self"][2] / 1024,
        "children_cpu": usage["children"][0] + usage["children"][1],
        "wait4_cpu": total.ru_utime + total.ru_stime,  # the process and its reaped children
        "log": root / "run.log",
    }


def bare_peer(root: Path, url: str, seeds: list[dict], parallel: int, healthy_after: float) -> dict:
    """Only the Astro work, same parallelism: deploy, then inspect until HEALTHY."""
    astro = str(Path(sys.executable).parent / "astro-sim")
    env = {**os.environ, **lifecycle.sim_env(url)}

    def one(seed: dict) -> None:
        repo = root / "repos" / seed["name"].rsplit("-", 1)[0]
        base = ["--workspace-id", WORKSPACE]
        subprocess.run([astro, "deploy", seed["id"], "-f", *base, "--description", "peer"],
                       cwd=repo, env=env, capture_output=True, check=True)
        delay = 0.0
        while True:
            out = subprocess.run([astro, "deployment", "inspect", seed["id"], "-o", "json", *base],
                                 env=env, capture_output=True, text=True, check=True).stdout
            if '"HEALTHY"' in out and "12.4.0" in out:
                return
            delay = min(10.0, delay * 2) if delay else min(10.0, healthy_after)
            time.sleep(delay)

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


def sleep_peer(count: int, parallel: int, seconds: float) -> float:
    """The scheduling floor: ``count`` sleeps of ``seconds``, ``parallel`` at a time."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(lambda _: time.sleep(seconds), range(count)))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--per-repo", type=int, default=5)
    parser.add_argument("--parallel", type=int, default=50)
    parser.add_argument("--deploy-seconds", type=float, default=2.0)
    parser.add_argument("--healthy-after", type=float, default=0.5)
    parser.add_argument("--commit", action="store_true", help="add the git commit step")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the tmp dir (prints it)")
    args = parser.parse_args()
    count = args.repos * args.per_repo
    per_item = args.deploy_seconds + args.healthy_after
    ideal = math.ceil(count / args.parallel) * per_item

    tmp = Path(tempfile.mkdtemp(prefix="rollout-bench-"))
    info = lifecycle.start(tmp / "sim", time_scale=1.0)
    try:
        config = {"deploy_seconds": args.deploy_seconds,
                  "healthy_after_seconds": args.healthy_after,
                  "deploying_after_seconds": 0, "time_scale": 1.0}
        _post_config(info.url, config)
        root = tmp / "fleet"
        root.mkdir()
        t = time.perf_counter()
        seeds = build_fleet(root, info.url, args.repos, args.per_repo, args.parallel, args.commit)
        lifecycle.seed(info.url, seeds)
        print(f"fleet: {count} Deployments in {args.repos} repos, wave 1, parallel "
              f"{args.parallel} (wave and local runner), playbook render"
              f"{' + commit' if args.commit else ''} + deploy + verify; built in "
              f"{time.perf_counter() - t:.1f}s")
        print(f"simulator: deploy {args.deploy_seconds:g}s, HEALTHY {args.healthy_after:g}s "
              f"later, time scale 1 ({info.url})")

        run = run_orchestrator(root)
        if run["exit"] != 0:
            print(run["log"].read_text()[-3000:])
            raise SystemExit(f"invoke upgrade exited {run['exit']}")
        per_dep_ms = 1000 * run["self_cpu"] / count
        print("\ninvoke upgrade --wave 1 (exit 0)")
        print(f"  wall time            {run['wall']:.1f} s")
        print(f"  ideal                {ideal:.1f} s  = ceil({count}/{args.parallel}) x "
              f"({args.deploy_seconds:g} s deploy + {args.healthy_after:g} s to HEALTHY)")
        print(f"  wall / ideal         {run['wall'] / ideal:.2f}  (goal <= {RATIO_GOAL:.2f})")
        print(f"  orchestrator CPU     {run['self_cpu']:.1f} s = {per_dep_ms:.1f} ms per "
              f"Deployment  (goal <= {CPU_GOAL_MS:g} ms; its own user+sys, children excluded)")
        print(f"  its children's CPU   {run['children_cpu']:.1f} s (astro-sim, git); "
              f"wait4 total {run['wait4_cpu']:.1f} s")
        print(f"  orchestrator peak RSS {run['self_rss_mb']:.0f} MB  (goal <= {RSS_GOAL_MB:g} MB)")
        print(f"  machine              {os.cpu_count()} CPUs")

        if not args.skip_peers:
            lifecycle.seed(info.url, seeds)  # every Deployment back at 12.1.0
            peer = bare_peer(root, info.url, seeds, args.parallel, args.healthy_after)
            print(f"\npeer: bare astro-sim deploy + inspect-until-HEALTHY, {args.parallel} at a time")
            print(f"  wall time            {peer['wall']:.1f} s  (wall / ideal "
                  f"{peer['wall'] / ideal:.2f})")
            print(f"  astro-sim CPU        {peer['children_cpu']:.1f} s = "
                  f"{1000 * peer['children_cpu'] / count:.0f} ms per Deployment")
            print(f"  the loop's own CPU   {1000 * peer['self_cpu'] / count:.1f} ms per Deployment")
            floor = sleep_peer(count, args.parallel, per_item)
            print(f"\npeer: sleep-only scheduler ({count} x {per_item:g} s, {args.parallel} threads)")
            print(f"  wall time            {floor:.1f} s  (wall / ideal {floor / ideal:.2f})")
    finally:
        lifecycle.stop(tmp / "sim")
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _post_config(url: str, config: dict) -> None:
    from upgrade.sim.client import request

    status, _, raw = request(url, "POST", "/_sim/config", config)
    if status // 100 != 2:
        raise SystemExit(f"configuring the simulator failed: {raw[:300]!r}")


if __name__ == "__main__":
    sys.exit(main())
