"""A small, real stand-in for CI's deploy action: a bare repository's ``post-receive`` hook.

``install(bare, ...)`` writes ``hooks/post-receive`` and ``astro-ci.json`` beside it. On a
push (or a forge merge) that moves the configured branch, the hook starts a detached job
and returns at once, as a CI trigger does: after ``delay`` seconds the job clones the
repository (``file://``, so the deploy's git metadata is GENERIC with that URL), checks out
the pushed commit (detached, as CI checkouts often are) and runs ``astro-sim deploy`` for
each configured Deployment. The astro CLI attaches the commit's git metadata to the deploy,
so Astro's deploy records say which commit CI deployed. Its output goes to ``ci.log`` in the
bare repository.

The config holds the simulator's URL and organization, never a token: the job mints the
simulator's fake API token itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fleet_sim.lifecycle import DEFAULT_ORGANIZATION, sim_env, url_of

CONFIG = "astro-ci.json"
LOG = "ci.log"

HOOK = """#!/bin/sh
# A stand-in for CI's deploy action (fleet_sim.ci).
exec "{python}" -m fleet_sim.ci receive "$PWD"
"""


def install(bare: Path, *, branch: str, deployments: list[dict[str, str]], astro_bin: str,
            sim_url: str | None = None, sim_state: str | None = None, delay: float = 1.0,
            organization_id: str | None = None, env: dict[str, str] | None = None) -> None:
    """Make ``bare`` deploy ``deployments`` whenever ``branch`` moves. The simulator is
    ``sim_url``, else the one running from state directory ``sim_state`` (looked up when
    the job runs, so the hook can be installed before the simulator starts); ``env`` is
    added to the deploy's environment (e.g. ``ASTRO_SIM_VERSION``: CI's astro release)."""
    config = {"branch": branch, "deployments": deployments, "sim_url": sim_url,
              "sim_state": sim_state, "astro": astro_bin, "delay": delay,
              "organization_id": organization_id, "env": env or {}}
    (bare / CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
    hook = bare / "hooks" / "post-receive"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(HOOK.format(python=sys.executable), encoding="utf-8")
    hook.chmod(0o755)


def _clean_env() -> dict[str, str]:
    # A hook runs with GIT_DIR and friends set for the bare repository: a clone must not.
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}


def receive(bare: Path, lines: list[str]) -> int:
    """The hook: start a deploy job for a push to the configured branch."""
    config = json.loads((bare / CONFIG).read_text(encoding="utf-8"))
    for line in lines:
        parts = line.split()
        if len(parts) != 3 or parts[2] != f"refs/heads/{config['branch']}":
            continue
        new = parts[1]
        if set(new) == {"0"}:
            continue  # the branch was deleted
        with open(bare / LOG, "a", encoding="utf-8") as log:
            log.write(f"push to {config['branch']}: {new}; deploying in {config['delay']}s\n")
            subprocess.Popen(
                [sys.executable, "-m", "fleet_sim.ci", "deploy", str(bare), new],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=_clean_env(),
                start_new_session=True, cwd=str(bare))
    return 0


def deploy(bare: Path, sha: str) -> int:
    """The job: wait, clone, check out ``sha``, deploy it to every configured Deployment."""
    config = json.loads((bare / CONFIG).read_text(encoding="utf-8"))
    sim_url = config.get("sim_url") or url_of(Path(config["sim_state"]))
    time.sleep(float(config.get("delay") or 0))
    work = Path(tempfile.mkdtemp(prefix="ci-"))
    env = _clean_env()
    try:
        checkout = work / "checkout"
        subprocess.run(["git", "clone", "--quiet", bare.resolve().as_uri(), str(checkout)],
                       check=True, env=env)
        subprocess.run(["git", "-C", str(checkout), "checkout", "--quiet", "--detach", sha],
                       check=True, env=env)
        failed = 0
        for dep in config["deployments"]:
            run_env = {**env, **(config.get("env") or {}),
                       **sim_env(sim_url, config.get("organization_id") or DEFAULT_ORGANIZATION)}
            done = subprocess.run(
                [config["astro"], "deploy", dep["id"], "--workspace-id", dep["workspace_id"]],
                cwd=checkout, env=run_env, capture_output=True, text=True, check=False)
            print(f"deploy {sha[:12]} to {dep['id']}: exit {done.returncode}", flush=True)
            failed += done.returncode != 0
        return 1 if failed else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """``receive BARE`` (stdin: the hook's ref lines) or ``deploy BARE SHA``."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["receive"]:
        return receive(Path(args[1]), sys.stdin.read().splitlines())
    if args[:1] == ["deploy"]:
        return deploy(Path(args[1]), args[2])
    print("usage: python -m fleet_sim.ci receive BARE | deploy BARE SHA", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
