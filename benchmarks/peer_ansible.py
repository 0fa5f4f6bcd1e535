"""Our rollout against the Ansible playbook a platform team would write instead, in one run.

The same fleet (``--repos`` x ``--per-repo`` Deployments at 12.1.0, every repo a real
Astro project with one git commit), the same simulator (deploy ``--deploy-seconds``, HEALTHY
``--healthy-after`` later, time scale 1), one after the other, both children of this
process:

1. ours: ``invoke upgrade --wave 1`` of benchmarks/rollout.py's fleet (render + deploy +
   verify, ``parallel`` on the wave and on the local runner);
2. theirs: ansible-core (``ANSIBLE_CORE``, installed from PyPI into its own venv outside the
   project's, once, as benchmarks/startup.py does; it is a peer, not a dependency) running
   a generated playbook over an inventory of one host per Deployment (``ansible_connection:
   local``, no fact gathering): ``replace`` of the Runtime tag in the repo's Dockerfile,
   ``command: astro-sim deploy <id> -f``, then ``astro-sim deployment inspect <id> -o json``
   polled with ``until`` (HEALTHY at 12.4.0; first retry after ``--healthy-after``, as our
   first look), ``strategy: free``, ``-f <parallel>``. The Deployments are seeded back at
   12.1.0 and the repos are fresh copies before it starts.

Printed: both walls, both ratios to the ideal (every Deployment waits deploy + HEALTHY
seconds, ``parallel`` at a time: ceil(N / parallel) x (deploy + healthy) s), each one's CPU
(ours: the orchestrator's own, and its children's; theirs: the whole ansible-playbook
tree), and theirs / ours (goal: >= 10x at 200 Deployments, >= 20x at 1,000). A figure is
only comparable with the others of the same run: the machine may be shared.

Usage: .venv/bin/python benchmarks/peer_ansible.py [--repos 40] [--per-repo 5]
       [--parallel 50] [--deploy-seconds 2] [--healthy-after 0.5] [--keep]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from rollout import START, WORKSPACE, build_fleet, post_config, run_orchestrator  # noqa: E402
from startup import ANSIBLE_CORE, ansible  # noqa: E402 - benchmarks/ is this script's directory

from fleet_sim import lifecycle  # noqa: E402 - after the path set-up above
from fleet_sim.client import request  # noqa: E402

TARGET = "12.4.0"
GOALS = {200: 10.0, 1000: 20.0}  # Deployments -> theirs / ours at least

PLAYBOOK = """\
- name: Upgrade Astro Runtime ({start} -> {target})
  hosts: all
  gather_facts: false
  strategy: free
  tasks:
    - name: Rewrite the Dockerfile's Runtime tag
      ansible.builtin.replace:
        path: "{{{{ repo }}}}/Dockerfile"
        regexp: 'astro-runtime:{start_re}\\b'
        replace: 'astro-runtime:{target}'
    - name: Deploy
      ansible.builtin.command:
        cmd: "{astro} deploy {{{{ deployment_id }}}} -f --workspace-id {workspace} --description 'ansible upgrade to {target}'"
        chdir: "{{{{ repo }}}}"
    - name: Wait until HEALTHY at {target}
      ansible.builtin.command:
        cmd: "{astro} deployment inspect {{{{ deployment_id }}}} -o json --workspace-id {workspace}"
      register: inspected
      until: "'\\"HEALTHY\\"' in inspected.stdout and '{target}' in inspected.stdout"
      retries: 600
      delay: {delay}
      changed_when: false
"""


def write_ansible_project(root: Path, fleet: Path, seeds: list[dict], python: Path,
                          delay: float) -> tuple[Path, Path]:
    """The playbook and a YAML inventory of one local host per Deployment, under ``root``."""
    hosts = {
        seed["name"]: {"deployment_id": seed["id"],
                       "repo": str(fleet / "repos" / seed["name"].rsplit("-", 1)[0])}
        for seed in seeds
    }
    inventory = {"all": {"vars": {"ansible_connection": "local",
                                  "ansible_python_interpreter": str(python)},
                         "hosts": hosts}}
    (root / "inventory.json").write_text(json.dumps(inventory), "utf-8")  # JSON is YAML
    astro = Path(sys.executable).parent / "astro-sim"
    (root / "upgrade.yml").write_text(PLAYBOOK.format(
        start=START, start_re=START.replace(".", r"\."), target=TARGET, astro=astro,
        workspace=WORKSPACE, delay=delay), "utf-8")
    return root / "upgrade.yml", root / "inventory.json"


def at_target(url: str, seeds: list[dict]) -> int:
    """How many of the fleet's Deployments the simulator has running ``TARGET`` now."""
    status, _, raw = request(url, "GET", "/_sim/deployments")
    if status != 200:
        raise SystemExit(f"reading the simulator's Deployments answered {status}")
    ours = {seed["id"] for seed in seeds}
    return sum(d["id"] in ours and d["running_runtime_version"] == TARGET
               for d in json.loads(raw))


def run_ansible(exe: Path, root: Path, playbook: Path, inventory: Path, forks: int,
                url: str) -> dict:
    """``ansible-playbook`` in a child: its wall time, exit code and the CPU of its tree."""
    env = {**os.environ, **lifecycle.sim_env(url),
           "ANSIBLE_HOME": str(root / "ansible-home"), "ANSIBLE_LOCAL_TEMP": str(root / "tmp"),
           "ANSIBLE_RETRY_FILES_ENABLED": "false", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_DEPRECATION_WARNINGS": "false",
           "ANSIBLE_PYTHON_INTERPRETER": "auto_silent"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with (root / "ansible.log").open("w") as log:
        done = subprocess.run([str(exe), "-i", str(inventory), "-f", str(forks), str(playbook)],
                              cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=log,
                              stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"exit": done.returncode, "wall": wall, "log": root / "ansible.log",
            "cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repos", type=int, default=40)
    parser.add_argument("--per-repo", type=int, default=5)
    parser.add_argument("--parallel", type=int, default=50)
    parser.add_argument("--deploy-seconds", type=float, default=2.0)
    parser.add_argument("--healthy-after", type=float, default=0.5)
    parser.add_argument("--keep", action="store_true", help="keep the tmp dir (prints it)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    count = args.repos * args.per_repo
    per_item = args.deploy_seconds + args.healthy_after
    ideal = math.ceil(count / args.parallel) * per_item

    exe = ansible()
    if exe is None:
        print(f"{ANSIBLE_CORE} could not be installed: no peer to compare with")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="peer-ansible-bench-"))
    info = lifecycle.start(tmp / "sim", time_scale=1.0)
    try:
        post_config(info.url, {"deploy_seconds": args.deploy_seconds,
                               "healthy_after_seconds": args.healthy_after,
                               "deploying_after_seconds": 0, "time_scale": 1.0})
        ours_root, theirs_root = tmp / "ours", tmp / "theirs"
        ours_root.mkdir()
        theirs_root.mkdir()
        seeds = build_fleet(ours_root, info.url, args.repos, args.per_repo, args.parallel,
                            commit=False)
        build_fleet(theirs_root, info.url, args.repos, args.per_repo, args.parallel,
                    commit=False)
        print(f"fleet: {count} Deployments in {args.repos} repos, {START} -> {TARGET}, "
              f"parallel {args.parallel}; simulator: deploy {args.deploy_seconds:g} s, HEALTHY "
              f"{args.healthy_after:g} s later ({info.url}); {os.cpu_count()} CPUs, "
              "maybe shared: compare within this run only")
        print(f"ideal: ceil({count}/{args.parallel}) x {per_item:g} s = {ideal:.1f} s\n")

        lifecycle.seed(info.url, seeds)
        ours = run_orchestrator(ours_root)
        if ours["exit"] != 0:
            print(ours["log"].read_text()[-3000:])
            raise SystemExit(f"invoke upgrade exited {ours['exit']}")
        print("ours: invoke upgrade --wave 1 (render + deploy + verify)")
        print(f"  Deployments at {TARGET} afterwards: {at_target(info.url, seeds)} of {count}")
        print(f"  wall {ours['wall']:.1f} s  wall / ideal {ours['wall'] / ideal:.2f}")
        print(f"  CPU: orchestrator {ours['self_cpu']:.1f} s "
              f"({1000 * ours['self_cpu'] / count:.1f} ms per Deployment), its children "
              f"(astro-sim, git) {ours['children_cpu']:.1f} s")

        lifecycle.seed(info.url, seeds)  # every Deployment back at 12.1.0
        playbook, inventory = write_ansible_project(
            theirs_root, theirs_root, seeds, exe.parent / "python", args.healthy_after)
        theirs = run_ansible(exe, theirs_root, playbook, inventory, args.parallel, info.url)
        if theirs["exit"] != 0:
            print(theirs["log"].read_text()[-3000:])
            raise SystemExit(f"ansible-playbook exited {theirs['exit']}")
        print(f"\ntheirs: {ANSIBLE_CORE} ansible-playbook -f {args.parallel} (strategy free; "
              "replace, command deploy, inspect until HEALTHY)")
        print(f"  wall {theirs['wall']:.1f} s  wall / ideal {theirs['wall'] / ideal:.2f}")
        print(f"  CPU: ansible-playbook and everything it ran {theirs['cpu']:.1f} s")
        print(f"  Deployments at {TARGET} afterwards: {at_target(info.url, seeds)} of {count}")

        ratio = theirs["wall"] / ours["wall"]
        goal = GOALS.get(count)
        verdict = (f" (goal >= {goal:g}x at {count}: {'met' if ratio >= goal else 'MISSED'})"
                   if goal else "")
        print(f"\ntheirs / ours (wall): {ratio:.1f}x{verdict}")
    finally:
        lifecycle.stop(tmp / "sim")
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
