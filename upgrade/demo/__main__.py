"""`make demo`: the sample fleet, upgraded for real against the local simulator.

Runs the same commands a platform engineer types, each shown before it runs, so the
output reads like a runbook: create the fleet's repos, start and seed the simulator,
show the catalog and the plan of a fleet on both Runtime lines, run the three waves
through their gates (soak, approval), migrate a group to Airflow 3 in a fourth wave, check
the whole fleet, and write the rollout's HTML report (its path is the last line printed).
Git is the source of truth: every repo is in ``git.mode: direct`` (each change is pushed to
its ``origin``'s main before it is deployed) except customer-360, which gets a pull request
through a local forge simulator (GitHub's API), merged by the tool on green checks and
deployed by a CI stand-in (a ``post-receive`` hook); at the end every remote's main holds
its target and ``verify-all`` (against the remotes) is clean.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from upgrade.demo import sample_fleet

ROOT = Path(__file__).resolve().parents[2]
ASTRO_FLEET = str(Path(sys.executable).parent / "astro-fleet")
# 0.02 turns the simulator's realistic 60 s deploy and 120 s rollout into ~1 s and ~2 s.
TIME_SCALE = "0.02"

SOAK = 10  # seconds: the sample inventory's soak for waves 1 and 2
# The forge simulator: the port inventory.yaml names for customer-360, and a token that
# exists only for it (the real one would be in $GITHUB_TOKEN).
FORGE_PORT = 18765
FORGE_TOKEN = "demo-forge-token"
PR_REPO, PR_PROJECT = "customer-360", "acme/customer-360"

# (title, astro-fleet arguments, seconds to wait before running it)
STEPS: list[tuple[str, list[str], int]] = [
    ("The Runtime catalog: what '13' means today (Airflow 2)", ["catalog", "--resolve", "13"], 0),
    ("... and '3.1' (Airflow 3)", ["catalog", "--resolve", "3.1"], 0),
    ("Start the local Astro control-plane simulator",
     ["sim.start", "--time-scale", TIME_SCALE], 0),
    ("Create the fleet's Deployments in it, at their Dockerfiles' versions", ["sim.seed"], 0),
    ("Where one Deployment's target comes from (its group migrates it to Airflow 3)",
     ["inventory", "--name", "customer-360-dev"], 0),
    ("What would change, on both lines (exit 3: partner-feeds is already past its 12.4 and is "
     "refused; customer-360's DAGs have Airflow 3 findings)", ["plan"], 0),
    ("Wave 1, the canaries: render, commit, deploy, verify (each also runs its fleet_canary "
     "DAG); the rollout pins every target", ["upgrade", "--wave", "1"], 0),
    ("The journal: where the rollout stands", ["status"], 0),
    ("Wave 2 right away: the gate refuses while wave 1 soaks (nothing is recorded)",
     ["upgrade", "--wave", "2"], 0),
    ("Wave 2 after the soak: the gate verifies wave 1 again, then opens",
     ["upgrade", "--wave", "2"], SOAK),
    ("Wave 3 (production) requires an approval", ["upgrade", "--wave", "3"], SOAK),
    ("Approve it", ["approve", "--wave", "3", "--reason", "CHG-0042 approved in the demo"], 0),
    ("Wave 3: partner-feeds is already past its 12.4, so the plan refuses it and the wave does "
     "not start (nothing is recorded)", ["upgrade", "--wave", "3"], 0),
    ("Wave 3 without it: production; partner-feeds is never lowered",
     ["upgrade", "--wave", "3", "--limit", "!partner-feeds-prod"], 0),
    ("Wave 4, the Airflow 3 migration: ruff's AIR3 lint finds Airflow 2 code, so it is blocked",
     ["upgrade", "--wave", "4"], 0),
    ("Wave 4 with the findings accepted: customer-360 is owned by another team, so the tool "
     "opens a pull request, merges it on green checks and waits for their CI to deploy the "
     "merge commit", ["upgrade", "--wave", "4", "--accept-migration-findings"], 0),
    ("The whole fleet checked: deployed == Dockerfile == journal, healthy", ["verify-all"], 0),
    ("The journal at the end", ["status"], 0),
]
# The last step: the file to open in a browser, its path printed last.
REPORT = ("The rollout's HTML report (timeline, fleet version matrix, summary): open it in a "
          "browser", ["report"])


def run(args: list[str]) -> int:
    """Run one `astro-fleet` command in the project directory, echoing it first."""
    print(f"\n$ astro-fleet {' '.join(shlex.quote(a) for a in args)}", flush=True)
    env = {**os.environ, "COLUMNS": os.environ.get("COLUMNS", "160"), "GITHUB_TOKEN": FORGE_TOKEN}
    return subprocess.run([ASTRO_FLEET, *args], cwd=ROOT, env=env).returncode


def main() -> int:
    """Reset the demo state, then walk through the runbook."""
    run(["sim.stop"])
    for leftover in ("demo-fleet", ".sim", ".upgrade"):
        shutil.rmtree(ROOT / leftover, ignore_errors=True)
    print("Creating the sample fleet's repositories under demo-fleet/ ...")
    created = sample_fleet.create(ROOT / "inventory.yaml", ROOT / "examples" / "sample-fleet")
    print(f"  {len(created)} Astro projects, each a git repository with a bare origin")
    forge = start_forge()
    try:
        for title, args, wait in STEPS:
            print(f"\n=== {title}")
            if wait:
                print(f"(waiting {wait} s for the soak to end)", flush=True)
                time.sleep(wait)
            code = run(args)
            print(f"(exit {code})")
        show_remotes()
    finally:
        forge.terminate()
        forge.wait(timeout=10)
    print(
        "\nThe simulator keeps running so you can explore (`astro-fleet status`, "
        "`astro-fleet verify-all`, docs/simulator.md for faults); stop it with "
        "`astro-fleet sim.stop`."
    )
    print(f"\n=== {REPORT[0]}")
    run(REPORT[1])
    return 0


def start_forge() -> subprocess.Popen[bytes]:
    """The forge simulator customer-360's pull request goes through (loopback only)."""
    bare = sample_fleet.remote_of(ROOT / "inventory.yaml", PR_REPO)
    url_file = ROOT / ".sim" / "forge.url"
    url_file.parent.mkdir(exist_ok=True)
    url_file.unlink(missing_ok=True)
    print(f"Starting the forge simulator (GitHub's API) on 127.0.0.1:{FORGE_PORT} ...")
    proc = subprocess.Popen(
        [sys.executable, "-m", "upgrade.sim.forge", "--port", str(FORGE_PORT), "--url-file",
         str(url_file), f"{PR_PROJECT}={bare}"],
        env={**os.environ, "FORGE_SIM_TOKEN": FORGE_TOKEN}, cwd=ROOT)
    deadline = time.monotonic() + 10
    while not url_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc


def show_remotes() -> None:
    """What each repo's origin/main pins at the end: the truth `verify-all` compared."""
    import yaml

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
