"""How fast astro-fleet starts, against Python itself, invoke and Ansible, in one run.

Each command runs as a whole process, the way a person or CI types it, in the sample
fleet (its repos created in a temporary directory): ``astro-fleet --help``, ``--list``,
``status`` (no journal yet) and ``plan --offline`` (reads 7 Dockerfiles, decides 17
Deployments). The peers, measured in the same run and the same way: ``python -c pass``
(the floor nothing can beat), ``python -c 'import invoke'`` (what any invoke program pays)
and ``ansible-playbook --version`` (the tool platform teams compare us with), installed
here from PyPI into its own venv outside the project's (``ANSIBLE_CORE`` pins it).

Each figure is the median wall time of ``--runs`` runs (after one warm-up), with the CPU
time (user + system, the process and its children) beside it. Goals: ``--help`` within
0.25 s wall and within 3x ``python -c 'import invoke'``. Exit 0 always (a benchmark
reports; it does not gate), 1 if a command failed.

Usage: .venv/bin/python benchmarks/startup.py [--runs N] [--no-ansible]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

ANSIBLE_CORE = "ansible-core==2.19.14"
ANSIBLE_VENV = ROOT / ".bench" / "ansible-venv"  # outside .venv; kept between runs
BIN = Path(sys.executable).parent
GOAL_WALL = 0.25
GOAL_RATIO = 3.0


def measure(argv: list[str], cwd: Path, runs: int) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds) of ``runs`` runs of ``argv``."""
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("ASTRO_FLEET_INVENTORY", None)
    walls, cpus = [], []
    for i in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode not in (0, 3):  # plan --offline of the sample fleet exits 3
            sys.stderr.write(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
            raise SystemExit(1)
        if i:  # the first run warms the page cache
            walls.append(wall)
            cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return statistics.median(walls), statistics.median(cpus)


def ansible() -> Path | None:
    """ansible-playbook from its own venv (created once, from PyPI); None if that fails."""
    exe = ANSIBLE_VENV / "bin" / "ansible-playbook"
    if exe.exists():
        return exe
    print(f"installing {ANSIBLE_CORE} into {ANSIBLE_VENV} (once) ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(ANSIBLE_VENV)], check=True)
        # pip's output only when it fails: its warnings about this machine's index settings
        # are not figures, and results.md keeps everything printed.
        subprocess.run([str(ANSIBLE_VENV / "bin" / "pip"), "install", "-q", ANSIBLE_CORE],
                       check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        said = getattr(exc, "stderr", None) or ""
        print(f"could not install {ANSIBLE_CORE}: {exc}; Ansible is left out\n{said[-2000:]}")
        return None
    return exe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-ansible", action="store_true")
    opts = parser.parse_args()

    from demo import sample_fleet

    fleet = Path(tempfile.mkdtemp(prefix="astro-fleet-startup-"))
    try:
        shutil.copy(ROOT / "inventory.yaml", fleet / "inventory.yaml")
        sample_fleet.create(fleet / "inventory.yaml", ROOT / "examples" / "sample-fleet")
        astro_fleet = str(BIN / "astro-fleet")
        python = sys.executable
        rows: list[tuple[str, list[str]]] = [
            ("python -c pass", [python, "-c", "pass"]),
            ("python -c 'import invoke'", [python, "-c", "import invoke"]),
            ("astro-fleet --help", [astro_fleet, "--help"]),
            ("astro-fleet --list", [astro_fleet, "--list"]),
            ("astro-fleet status", [astro_fleet, "status"]),
            ("astro-fleet plan --offline", [astro_fleet, "plan", "--offline"]),
        ]
        exe = None if opts.no_ansible else ansible()
        if exe is not None:
            rows.append(("ansible-playbook --version", [str(exe), "--version"]))
        print(f"\nmedian of {opts.runs} runs each, in the sample fleet ({fleet}); "
              "the machine may be shared: compare within this run only\n")
        print(f"{'command':<30} {'wall s':>8} {'cpu s':>8} {'x invoke':>9}")
        figures: dict[str, tuple[float, float]] = {}
        for label, argv in rows:
            figures[label] = measure(argv, fleet, opts.runs)
        base = figures["python -c 'import invoke'"][0]
        for label, (wall, cpu) in figures.items():
            print(f"{label:<30} {wall:>8.3f} {cpu:>8.3f} {wall / base:>8.2f}x")
        wall = figures["astro-fleet --help"][0]
        ratio = wall / base
        print(f"\ngoal: --help <= {GOAL_WALL} s wall: {wall:.3f} s "
              f"({'met' if wall <= GOAL_WALL else 'MISSED'}); <= {GOAL_RATIO}x import invoke: "
              f"{ratio:.2f}x ({'met' if ratio <= GOAL_RATIO else 'MISSED'})")
        if "ansible-playbook --version" in figures:
            peer = figures["ansible-playbook --version"][0]
            print(f"astro-fleet --help is {peer / wall:.1f}x faster than ansible-playbook "
                  "--version")
    finally:
        shutil.rmtree(fleet, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
