"""`make demo`: the sample fleet, upgraded for real against the local simulators.

Runs the same commands a platform engineer types, each shown before it runs, so the
output reads like a runbook: create the fleet's repos, start and seed the Astro simulator
(a fast time scale: one simulated minute passes in 1.2 s), show the catalog and the plan
of a fleet on both Runtime lines, run the three waves through their gates (soak,
approval; wave 1's soak analysis catches a DAG its upgrade broke, and passes after the
fix), migrate a group to Airflow 3 in a fourth wave, check the whole fleet, and write
the rollout's HTML report (its path is the last line printed).
Git is the source of truth: every repo is in ``git.mode: direct`` (each change is pushed to
its ``origin``'s main before it is deployed) except customer-360, which gets a pull request
through the forge simulator (GitHub's API), merged by the tool on green checks and
deployed by a CI stand-in (a ``post-receive`` hook); at the end every remote's main holds
its target and ``verify-all`` (against the remotes) is clean.

The simulators are their own distribution (``simulator/``, commands ``fleet-sim`` and
``astro-sim``); the tool reaches them only through inventory.yaml's ``control_plane``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from demo import sample_fleet
from fleet_sim import lifecycle

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# 0.02 turns the simulator's realistic 60 s deploy and 120 s rollout into ~1 s and ~2 s.
TIME_SCALE = "0.02"
SEED_FILE = "demo-fleet/deployments.yaml"

SOAK = 10  # seconds: the sample inventory's soak for waves 1 and 2
# The story of the soak analysis: the new Runtime breaks a provider only sales-etl-dev's
# scheduled DAG uses (the simulator's fault, from its upgrade on); then the team fixes it.
BROKEN = "cm1salesdev0001"
FIX = ("The team fixes sales-etl's DAG (in the simulator: the fault is cleared), and the "
       "analysis starts again from now")
# The forge simulator: the port inventory.yaml names for customer-360, and a token that
# exists only for it (the real one would be in $GITHUB_TOKEN).
FORGE_PORT = "18765"
FORGE_TOKEN = "demo-forge-token"
PR_REPO, PR_PROJECT = "customer-360", "acme/customer-360"

# (title, command and its arguments, seconds to wait before running it)
STEPS: list[tuple[str, list[str], int]] = [
    ("The Runtime catalog: what '13' means today (Airflow 2)",
     ["astro-fleet", "catalog", "--resolve", "13"], 0),
    ("... and '3.1' (Airflow 3)", ["astro-fleet", "catalog", "--resolve", "3.1"], 0),
    ("Where one Deployment's target comes from (its group migrates it to Airflow 3)",
     ["astro-fleet", "inventory", "--name", "customer-360-dev"], 0),
    ("What would change, on both lines (exit 3: partner-feeds is already past its 12.4 and is "
     "refused; customer-360's DAGs have Airflow 3 findings)", ["astro-fleet", "plan"], 0),
    ("Wave 1, the canaries: render, commit, deploy, verify (each also runs its fleet_canary "
     "DAG); the rollout pins every target", ["astro-fleet", "upgrade", "--wave", "1"], 0),
    ("The journal: where the rollout stands", ["astro-fleet", "status"], 0),
    ("Wave 2 right away: the gate refuses while wave 1 soaks (nothing is recorded)",
     ["astro-fleet", "upgrade", "--wave", "2"], 0),
    ("The soak, watched: each canary's DAG runs since its upgrade against its own before "
     "(sales-etl's provider broke on the new Runtime: exit 4)",
     ["astro-fleet", "analyze", "--wave", "1", "--watch"], 0),
    ("Wave 2 after the soak: the gate refuses, naming the DAG, its figures and what to run",
     ["astro-fleet", "upgrade", "--wave", "2"], -SOAK),
    (FIX, ["astro-fleet", "analyze", "--wave", "1", "--retry", "--reason",
           "sales-etl pins the provider it needs (fixed in the DAG's repo)"], 0),
    ("The soak, watched again: the fixed DAG succeeds",
     ["astro-fleet", "analyze", "--wave", "1", "--watch"], 0),
    ("Wave 2: the gate measures and verifies wave 1 again, then opens",
     ["astro-fleet", "upgrade", "--wave", "2"], 0),
    ("Wave 3 (production) requires an approval", ["astro-fleet", "upgrade", "--wave", "3"], SOAK),
    ("Approve it", ["astro-fleet", "approve", "--wave", "3", "--reason",
                    "CHG-0042 approved in the demo"], 0),
    ("Wave 3: partner-feeds is already past its 12.4, so the plan refuses it and the wave does "
     "not start (nothing is recorded)", ["astro-fleet", "upgrade", "--wave", "3"], 0),
    ("Wave 3 without it: production; partner-feeds is never lowered",
     ["astro-fleet", "upgrade", "--wave", "3", "--limit", "!partner-feeds-prod"], 0),
    ("Wave 4, the Airflow 3 migration: ruff's AIR3 lint finds Airflow 2 code, so it is blocked",
     ["astro-fleet", "upgrade", "--wave", "4"], 0),
    ("Wave 4 with the findings accepted: customer-360 is owned by another team, so the tool "
     "opens a pull request, merges it on green checks and waits for their CI to deploy the "
     "merge commit", ["astro-fleet", "upgrade", "--wave", "4", "--accept-migration-findings"],
     0),
    ("The whole fleet checked: deployed == Dockerfile == journal, healthy",
     ["astro-fleet", "verify-all"], 0),
    ("The journal at the end", ["astro-fleet", "status"], 0),
]
# The last step: the file to open in a browser, its path printed last.
REPORT = ("The rollout's HTML report (timeline, fleet version matrix, summary): open it in a "
          "browser", ["astro-fleet", "report"])

# What the commands run with: this venv's commands on PATH (as in an activated venv: the
# inventory names astro-sim by name, as it would name astro), the forge's token, and the
# simulator's fake Astro token (set once `fleet-sim token` has printed it).
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
       "COLUMNS": os.environ.get("COLUMNS", "160"), "GITHUB_TOKEN": FORGE_TOKEN}


def run(argv: list[str]) -> int:
    """Run one command (``astro-fleet`` or ``fleet-sim``, from this venv) in the project
    directory, echoing it first as it would be typed."""
    print(f"\n$ {shlex.join(argv)}", flush=True)
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=ROOT, env=ENV).returncode


def main() -> int:
    """Reset the demo state, then walk through the runbook."""
    subprocess.run([str(BIN / "fleet-sim"), "stop"], cwd=ROOT, capture_output=True)
    for leftover in ("demo-fleet", ".sim", ".upgrade"):
        shutil.rmtree(ROOT / leftover, ignore_errors=True)
    inventory = ROOT / "inventory.yaml"
    print("Creating the sample fleet's repositories under demo-fleet/ ...")
    created = sample_fleet.create(inventory, ROOT / "examples" / "sample-fleet")
    count = sample_fleet.write_seed_file(inventory, ROOT / SEED_FILE)
    print(f"  {len(created)} Astro projects, each a git repository with a bare origin; "
          f"{SEED_FILE}: their {count} Deployments")
    url = sample_fleet.simulator_url(yaml.safe_load(inventory.read_text("utf-8")))
    print(f"\n=== Start the simulated Astro (one simulated minute takes {60 * float(TIME_SCALE):g} "
          "s), give it the fleet's Deployments, and use its fake API token")
    for argv in (["fleet-sim", "start", "--port", str(urlsplit(url).port),
                  "--time-scale", TIME_SCALE],
                 ["fleet-sim", "seed", "--file", SEED_FILE]):
        if run(argv) != 0:
            return 1
    token = subprocess.run([str(BIN / "fleet-sim"), "token"], capture_output=True, text=True,
                           check=True).stdout.strip()
    print('\n$ export ASTRO_API_TOKEN="$(fleet-sim token)"', flush=True)
    ENV["ASTRO_API_TOKEN"] = token
    forge = start_forge()
    try:
        fault(url, True)
        soaking_since = time.monotonic()
        for title, argv, wait in STEPS:
            print(f"\n=== {title}")
            if title == FIX:
                fault(url, None)
            if wait < 0:  # what is left of wave 1's soak
                wait = max(0, round(-wait - (time.monotonic() - soaking_since)))
            if wait:
                print(f"(waiting {wait} s for the soak to end)", flush=True)
                time.sleep(wait)
            print(f"(exit {run(argv)})")
            if argv[1:4] == ["upgrade", "--wave", "1"]:
                soaking_since = time.monotonic()
        show_remotes()
    finally:
        forge.terminate()
        forge.wait(timeout=10)
    print(
        "\nThe simulator keeps running so you can explore (`export ASTRO_API_TOKEN=\"$(fleet-sim"
        " token)\"`, then `astro-fleet status`, `astro-fleet verify-all`; docs/simulator.md for "
        "faults); stop it with `fleet-sim stop`."
    )
    print(f"\n=== {REPORT[0]}")
    run(REPORT[1])
    return 0


def fault(url: str, on: bool | None) -> None:
    """Set (or clear: None) the fault that breaks sales-etl-dev's scheduled runs from its
    next upgrade on, through the simulator's admin API (docs/simulator.md)."""
    body = json.dumps({"scheduled_runs_fail": on})
    print(f"\n$ curl -X PUT {url}/_sim/faults/{BROKEN} -d '{body}'", flush=True)
    lifecycle.admin(url, "PUT", f"/_sim/faults/{BROKEN}", {"scheduled_runs_fail": on})


def start_forge() -> subprocess.Popen[bytes]:
    """The forge simulator customer-360's pull request goes through (loopback only)."""
    bare = sample_fleet.remote_of(ROOT / "inventory.yaml", PR_REPO)
    url_file = ROOT / ".sim" / "forge.url"
    url_file.unlink(missing_ok=True)
    argv = ["fleet-sim", "forge", "--port", FORGE_PORT, "--url-file", ".sim/forge.url",
            f"{PR_PROJECT}={bare.relative_to(ROOT)}"]
    print(f"\n=== The forge simulator (GitHub's API) for customer-360's pull request\n\n"
          f"$ FORGE_SIM_TOKEN=… {shlex.join(argv)} &", flush=True)
    proc = subprocess.Popen([str(BIN / argv[0]), *argv[1:]],
                            env={**ENV, "FORGE_SIM_TOKEN": FORGE_TOKEN}, cwd=ROOT)
    deadline = time.monotonic() + 10
    while not url_file.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    return proc


def show_remotes() -> None:
    """What each repo's origin/main pins at the end: the truth `verify-all` compared."""
    print("\n=== Every repo's origin/main (the source of truth) at the end")
    doc = yaml.safe_load((ROOT / "inventory.yaml").read_text("utf-8"))
    for name in doc["repos"]:
        bare = sample_fleet.remote_of(ROOT / "inventory.yaml", name)
        text = subprocess.run(["git", "--git-dir", str(bare), "show", "main:Dockerfile"],
                              capture_output=True, text=True, check=False).stdout
        froms = [line.strip() for line in text.splitlines()
                 if line.lstrip().upper().startswith(("FROM", "ARG"))]
        print(f"  {name:16} {' | '.join(froms) or '(no Dockerfile)'}")


if __name__ == "__main__":
    sys.exit(main())
