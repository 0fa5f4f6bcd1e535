"""Kill and outage campaign: is the journal complete after every `kill -9` and every lost
database? (not in make test; tests/git_modes/test_kill_facts.py, tests/team and
tests/rollout/test_rollout_kill.py hold a representative subset of it).

For each mode a fresh fleet (3 repos x 2 Deployments, wave 1, ``parallel: 6``, its own
simulator, forge and bare git remotes) runs ``invoke upgrade --wave 1``, which is
SIGKILLed (with its `astro deploy` children, as when its machine dies) once the journal
holds ``k`` events, ``k`` spread over a whole run of that mode (measured first, unkilled).
Then the same command runs again (at most three times) until it exits 0. Modes:

* ``local``: commit on a local branch, deploy the working tree;
* ``direct``: commit on the remote's default branch and push it, then deploy;
* ``pr-cli``: a pull request merged on green checks, the merge commit deployed by us;
* ``pr-ci-person``: a pull request whose checks never finish, so the run waits; after
  the kill a person merges every open PR (or, if none was opened yet, the checks turn
  green) and CI deploys the merge commit (the bare remote's post-receive hook).

``--outages N``: N more fleets in ``direct`` mode whose journal is a PostgreSQL schema
(scripts/postgres-test-server.sh), stopped while two deploys are in flight (they finish
at Astro with nothing recorded), started again, and the same command run again.

Printed per mode and in total: kills (and outages) run, Deployments whose journal is
complete (tests/rollout/facts.py: one chain of moves, none passing over a state silently,
verified only after deployed, the deployed commit and the merge commit recorded with
their source) out of all, the problems found by kind, deploys Astro finalized more than
once, second pull requests, and runs that did not end at exit 0.

Usage: .venv/bin/python benchmarks/kill_campaign.py [--kills 8] [--outages 2]
       [--modes local,direct,pr-cli,pr-ci-person] [--seed 27]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pg_server import PostgresServer, script, start_server  # noqa: E402
from simulators import SimHandle  # noqa: E402

from fleet_sim.forge import ForgeServer  # noqa: E402
from tests.git_modes.helpers import TOKEN, GitFleet, make_git_fleet  # noqa: E402
from tests.rollout.facts import incomplete_facts  # noqa: E402
from tests.rollout.helpers import (  # noqa: E402
    GenFleet,
    deploy_children,
    kill_group,
    make_fleet,
    wait_for,
)
from tests.team.helpers import journal as team_journal  # noqa: E402
from tests.team.helpers import states, use_postgres  # noqa: E402
from upgrade.journal.store import Journal  # noqa: E402

MODES = ("local", "direct", "pr-cli", "pr-ci-person")
REPOS, PER_REPO = 3, 2


@dataclass
class Tally:
    """What one mode's kills (or the outages) found."""

    kills: int = 0
    deployments: int = 0
    complete: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    double_deploys: int = 0
    second_prs: int = 0
    not_done: int = 0

    def add(self, other: Tally) -> None:
        for name in ("kills", "deployments", "complete", "double_deploys", "second_prs",
                     "not_done"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.problems.update(other.problems)


def _kind(problem: str) -> str:
    """A problem's kind: its words without the states, commits and numbers in it."""
    text = re.sub(r"\b[0-9a-f]{12,40}\b", "<commit>", problem)
    return re.sub(r"#\d+", "#N", text)


class Campaign:
    """Fleets in a temp dir, each with its own simulator and forge."""

    def __init__(self, work: Path, seed: int):
        self.work = work
        self.rng = random.Random(seed)
        self.count = 0

    def fleet(self, mode: str) -> tuple[GenFleet, SimHandle, ForgeServer | None]:
        self.count += 1
        where = self.work / f"{mode}-{self.count}"
        sim = SimHandle(where / "sim")
        forge = ForgeServer(TOKEN).start() if mode.startswith("pr") else None
        if mode == "local":
            return make_fleet(where, sim, repos=REPOS, per_repo=PER_REPO,
                              wave={"parallel": 6}), sim, forge
        settings: dict = {"mode": "direct"}
        # A PR that is never merged fails the run after two minutes, not an hour.
        if mode == "pr-cli":
            settings = {"mode": "pull-request", "auto_merge": True, "deploy": "cli",
                        "merge_timeout": "120s"}
        elif mode == "pr-ci-person":
            settings = {"mode": "pull-request", "auto_merge": True, "deploy": "ci",
                        "ci_timeout": "120s", "merge_timeout": "120s"}
        fleet = make_git_fleet(where, sim, forge, {f"r{r:02d}": dict(settings)
                                                   for r in range(REPOS)},
                               per_repo=PER_REPO, ci_delay=0.2, wave={"parallel": 6})
        if mode == "pr-ci-person":
            for r in range(REPOS):
                fleet.fault(f"r{r:02d}", checks="pending")  # type: ignore[attr-defined]
        return fleet, sim, forge


def events(fleet: GenFleet) -> int:
    """How many events the fleet's journal holds (0 before it exists)."""
    if not fleet.journal_file.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{fleet.journal_file}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT count(*) FROM events").fetchone()[0]
    except sqlite3.Error:
        return 0


def modes_of(fleet: GenFleet, mode: str) -> dict[str, str]:
    names = {d.repo for d in fleet.deps}
    return {} if mode == "local" else {n: "direct" if mode == "direct" else "pull-request"
                                       for n in names}


def person_steps_in(fleet: GitFleet, forge: ForgeServer) -> None:
    """A person merges every open PR; where none was opened yet, the checks turn green."""
    for r in range(REPOS):
        repo = f"r{r:02d}"
        pulls = [p for p in fleet.pulls(repo) if p["state"] == "open"]
        for pull in pulls:
            _post(forge.url + "/_forge/merge", {"project": f"acme/{repo}",
                                                "number": pull["number"]})
        if not fleet.pulls(repo):
            fleet.fault(repo, checks="success")


def _post(url: str, body: dict) -> None:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req):
        pass


def settle(fleet: GenFleet, journal: Callable[[], Journal], modes: dict[str, str],
           forge: ForgeServer | None, prs: bool) -> Tally:
    """Run the wave again until it exits 0 (at most 3 times); what its journal says."""
    tally = Tally()
    said = ""
    for _ in range(3):
        try:
            out = fleet.invoke("upgrade", "--wave", "1", timeout=600)
        except subprocess.TimeoutExpired as exc:
            said = f"no exit within {exc.timeout:g} s: {str(exc.stderr or '')[-600:]!r}"
            continue
        if out.returncode == 0:
            break
        said = f"exit {out.returncode}: {out.stderr[-600:]!r}"
    else:
        tally.not_done += 1
        print(f"    did not finish: {said}")
    with journal() as j:
        found = {r.id: incomplete_facts(j, modes, r.id) for r in j.rollouts()}
        names = {r.name for rollout in j.rollouts() for r in j.deployments(rollout.id)}
    missing = {name for per in found.values() for name in per}
    tally.deployments += len(names)
    tally.complete += len(names - missing)
    for per in found.values():
        for problems in per.values():
            tally.problems.update(_kind(p) for p in problems)
    tally.double_deploys += sum(1 for d in fleet.deps
                                if fleet.sim.deployment(d.id)["deploy_count"] > 1)
    if prs:
        assert forge is not None
        tally.second_prs += sum(max(0, len(fleet.pulls(f"r{r:02d}")) - 1)  # type: ignore[attr-defined]
                                for r in range(REPOS))
    return tally


def kill_at(fleet: GenFleet, point: int) -> bool:
    """Start the wave, SIGKILL it (and its deploys) once the journal holds ``point``
    events; False when it finished first."""
    proc = fleet.start("upgrade", "--wave", "1")
    try:
        wait_for(lambda: events(fleet) >= point or proc.poll() is not None, timeout=240,
                 what=f"{point} journal events")
        if proc.poll() is not None:
            return False
        children = deploy_children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    for child in children:
        kill_group(child)
    return True


def whole_run_events(fleet: GenFleet) -> int:
    """How many events a whole run, unkilled, leaves in the journal."""
    out = fleet.invoke("upgrade", "--wave", "1", timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return events(fleet)


def waiting_events(fleet: GenFleet) -> int:
    """How many events the journal holds once a run waits on its PRs' checks (which never
    finish): the kills of pr-ci-person land before that."""
    proc = fleet.start("upgrade", "--wave", "1")
    try:
        seen: list[int] = []

        def still() -> bool:
            seen.append(events(fleet))
            # (the local runner works on 4 at a time: a third repo waits for a slot)
            opened = any(fleet.pulls(f"r{r:02d}") for r in range(REPOS))  # type: ignore[attr-defined]
            return opened and len(seen) > 20 and seen[-1] == seen[-20]  # a while unchanged

        wait_for(still, timeout=240, what="the PRs waiting for their checks")
        return seen[-1]
    finally:
        proc.kill()
        proc.communicate()


def run_mode(campaign: Campaign, mode: str, kills: int) -> Tally:
    fleet, sim, forge = campaign.fleet(mode)
    try:
        total = waiting_events(fleet) if mode == "pr-ci-person" else whole_run_events(fleet)
    finally:
        sim.stop()
        if forge is not None:
            forge.stop()
    points = sorted(campaign.rng.randrange(4, total + (mode == "pr-ci-person"))
                    for _ in range(kills))
    print(f"{mode}: {total} journal events to kill among; kill points {points}")
    tally = Tally()
    for point in points:
        fleet, sim, forge = campaign.fleet(mode)
        try:
            if not kill_at(fleet, point):
                print(f"  {point}: the run finished first")
                continue
            tally.kills += 1
            if mode == "pr-ci-person":
                assert forge is not None
                person_steps_in(fleet, forge)  # type: ignore[arg-type]
            one = settle(fleet, lambda f=fleet: Journal.open(f.journal_file),
                         modes_of(fleet, mode), forge, mode.startswith("pr"))
            print(f"  {point}: {one.complete}/{one.deployments} complete"
                  + (f"; {dict(one.problems)}" if one.problems else ""))
            tally.add(one)
        finally:
            sim.stop()
            if forge is not None:
                forge.stop()
    return tally


def run_outages(campaign: Campaign, outages: int) -> Tally:
    server = start_server(campaign.work / "postgres")
    os.environ["PGPASSWORD"] = server.password
    tally = Tally()
    try:
        for n in range(outages):
            fleet, sim, _ = campaign.fleet("direct")
            try:
                tally.add(one_outage(fleet, sim, server, n))
            finally:
                sim.stop()
    finally:
        script("stop", str(server.dir), timeout=120)
    return tally


def one_outage(fleet: GenFleet, sim: SimHandle, server: PostgresServer, n: int) -> Tally:
    settings = use_postgres(fleet, server.url(server.new_schema()))
    for dep in fleet.deps:
        sim.set_fault(dep.id, deploy_extra_seconds=1500 + 500 * n)
    proc = fleet.start("upgrade", "--wave", "1")
    try:
        wait_for(lambda: sum(s == "deploying" for s in states(settings).values()) >= 2,
                 timeout=120, what="two deploys in flight")
        server.halt()
        proc.communicate(timeout=300)
    finally:
        proc.kill()
    server.restart()
    for dep in fleet.deps:
        sim.clear_faults(dep.id)
    tally = settle(fleet, lambda: team_journal(settings), modes_of(fleet, "direct"), None,
                   False)
    tally.kills = 1
    print(f"  outage {n + 1} (exit {proc.returncode}): {tally.complete}/{tally.deployments} "
          "complete" + (f"; {dict(tally.problems)}" if tally.problems else ""))
    return tally


def report(name: str, tally: Tally) -> None:
    print(f"{name:>13}: {tally.kills:3d} run, {tally.complete:3d}/{tally.deployments:<3d} "
          f"Deployments with complete journal facts; {tally.double_deploys} finalized "
          f"twice, {tally.second_prs} second PRs, {tally.not_done} not finished")
    for kind, count in tally.problems.most_common():
        print(f"{'':>15}{count:3d} x {kind}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=8, help="kills per mode")
    parser.add_argument("--outages", type=int, default=2)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--seed", type=int, default=27)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kill-campaign-") as work:
        campaign = Campaign(Path(work), args.seed)
        tallies = {mode: run_mode(campaign, mode, args.kills)
                   for mode in args.modes.split(",") if mode}
        if args.outages:
            print("postgresql outages (direct mode):")
            tallies["pg outage"] = run_outages(campaign, args.outages)
    total = Tally()
    print(f"\nkill and outage campaign ({time.monotonic() - started:.0f} s):")
    for name, tally in tallies.items():
        report(name, tally)
        total.add(tally)
    report("total", total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
