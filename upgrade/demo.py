"""`make demo`: the sample fleet, upgraded for real against the local simulator.

Runs the same commands a platform engineer types, each shown before it runs, so the
output reads like a runbook: create the fleet's repos, start and seed the simulator,
show the catalog and the plan, run wave 1, show the journal, check the whole fleet.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from . import sample_fleet

ROOT = Path(__file__).resolve().parent.parent
INVOKE = str(Path(sys.executable).parent / "invoke")
# 0.02 turns the simulator's realistic 60 s deploy and 120 s rollout into ~1 s and ~2 s.
TIME_SCALE = "0.02"

STEPS: list[tuple[str, list[str], str]] = [
    ("The Runtime catalog: what '12.4' means today", ["catalog", "--resolve", "12.4"], ""),
    ("Start the local Astro control-plane simulator",
     ["sim.start", "--time-scale", TIME_SCALE], ""),
    ("Create the fleet's Deployments in it, at their Dockerfiles' versions", ["sim.seed"], ""),
    ("What would change (exit 3: partner-feeds is already past 12.4 and is refused)",
     ["plan"], ""),
    ("Wave 1, the canaries: render, commit, deploy, verify", ["upgrade", "--wave", "1"], ""),
    ("The journal: where every rollout stands", ["status"], ""),
    ("Wave 2 right away: the gate refuses until wave 1 has soaked",
     ["upgrade", "--wave", "2"], ""),
]


def run(args: list[str]) -> int:
    """Run one `invoke` command in the project directory, echoing it first."""
    print(f"\n$ invoke {' '.join(args)}", flush=True)
    env = {**os.environ, "COLUMNS": os.environ.get("COLUMNS", "160")}
    return subprocess.run([INVOKE, *args], cwd=ROOT, env=env).returncode


def main() -> int:
    """Reset the demo state, then walk through the runbook."""
    run(["sim.stop"])
    for leftover in ("demo-fleet", ".sim", ".upgrade"):
        shutil.rmtree(ROOT / leftover, ignore_errors=True)
    print("Creating the sample fleet's repositories under demo-fleet/ ...")
    created = sample_fleet.create(ROOT / "inventory.yaml", ROOT / "examples" / "sample-fleet")
    print(f"  {len(created)} Astro projects, each a git repository")
    for title, args, _ in STEPS:
        print(f"\n=== {title}")
        code = run(args)
        print(f"(exit {code})")
    print(
        "\nThe simulator keeps running so you can go on: `invoke upgrade --wave 2` once wave 1 "
        "has soaked, `invoke verify-all`, `invoke status`. Stop it with `invoke sim.stop`."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
