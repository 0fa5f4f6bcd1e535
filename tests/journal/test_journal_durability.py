"""A run SIGKILLed at a random moment loses no transition it reported, and resumes
(on both backends: the run's process dies, the database does not)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
from collections.abc import Callable

from tests.journal.helpers import entries, python_child, wait_line
from upgrade.config.settings import JournalSettings
from upgrade.journal.states import FORWARD
from upgrade.journal.store import Journal

N_DEPLOYMENTS = 240
STEPS = FORWARD[1:]  # rendered … verified

# The "run": 4 worker threads walk every Deployment forward from wherever the journal says
# it is, and print each transition only after transition() has returned, as a real run
# would report progress. Run again, it resumes (the same command, nothing done twice).
CHILD = """
import sys, threading
from pathlib import Path
from upgrade.config.settings import JournalSettings
from upgrade.journal.configured import open_journal
from upgrade.journal.states import FORWARD
from upgrade.journal.records import DeploymentEntry
from upgrade.model.versions import parse_version

where, n = sys.argv[1], int(sys.argv[2])
target = parse_version("12.4.2")
settings = (JournalSettings(Path(".upgrade"), where) if "://" in where
            else JournalSettings(Path(where).parent))
j = open_journal(settings)
r = j.active_rollout() or j.start_rollout("12.4", target, "inventory.yaml")
ids = [f"dep-{i:04d}" for i in range(n)]
j.ensure_deployments(r.id, 1, [DeploymentEntry(i, i, "repo", target) for i in ids])
print("ready", flush=True)
out = threading.Lock()

def work(mine):
    for dep in mine:
        state = j.deployment(r.id, dep).state
        for step in FORWARD[FORWARD.index(state) + 1:]:
            j.transition(r.id, dep, step, count_deploy=step == "deploying")
            with out:
                sys.stdout.write(f"{dep} {step}\\n")
                sys.stdout.flush()

threads = [threading.Thread(target=work, args=(ids[k::4],)) for k in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print("done", flush=True)
"""


def run_and_kill(where: str, kill_after: int | None, n: int) -> list[tuple[str, str]]:
    """Run the child; SIGKILL it after ``kill_after`` reported transitions (None: let it end)."""
    proc = python_child(CHILD, where, str(n))
    try:
        wait_line(proc, "ready")
        assert proc.stdout is not None
        reported: list[tuple[str, str]] = []
        for line in proc.stdout:
            if line.strip() == "done":
                break
            dep, state = line.split()
            reported.append((dep, state))
            if kill_after is not None and len(reported) >= kill_after:
                os.kill(proc.pid, signal.SIGKILL)
                break
        # Lines written before the kill are still in the pipe: each is a committed transition.
        reported += [tuple(line.split()) for line in proc.stdout.read().splitlines()  # type: ignore[misc]
                     if line.strip() != "done"]
        code = proc.wait(timeout=30)
        if kill_after is None:
            assert code == 0, proc.stderr.read() if proc.stderr else ""
        else:
            assert code in (-signal.SIGKILL, 0)
        return reported
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def committed_moves(j: Journal, rollout_id: int) -> list[tuple[str, str]]:
    return [(e.deployment_id, e.to_state) for e in j.events(rollout_id) if e.kind == "transition"]


def test_sigkill_at_random_moments_loses_nothing_reported_and_resume_finishes(
        settings: JournalSettings, open_journal: Callable[..., Journal]) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    where = settings.url or str(settings.file)
    n = N_DEPLOYMENTS if settings.url is None else N_DEPLOYMENTS // 2
    total = n * len(STEPS)
    reported: list[tuple[str, str]] = []

    for round_ in range(3):
        kill_after = rng.randint(1, total // 4)
        printed = run_and_kill(where, kill_after, n)
        reported += printed
        with open_journal() as j:
            rollout = j.active_rollout()
            assert rollout is not None
            moves = committed_moves(j, rollout.id)
            states = {d.deployment_id: d.state for d in j.deployments(rollout.id)}
        missing = set(printed) - set(moves)
        assert not missing, f"seed {seed}, round {round_}: reported but lost: {sorted(missing)[:5]}"
        for dep, state in printed:  # the row agrees with the event log
            assert FORWARD.index(states[dep]) >= FORWARD.index(state), (seed, dep)
        if settings.url is None:
            check = sqlite3.connect(settings.file)
            try:
                assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            finally:
                check.close()

    reported += run_and_kill(where, None, n)  # the same command, to the end

    with open_journal() as j:
        rollout = j.active_rollout()
        assert rollout is not None
        moves = committed_moves(j, rollout.id)
        rows = j.deployments(rollout.id)
    assert set(reported) <= set(moves)
    # Nothing done twice, nothing forgotten: each step exactly once for every Deployment.
    assert sorted(moves) == sorted((f"dep-{i:04d}", s) for i in range(n)
                                   for s in STEPS), f"seed {seed}"
    assert {(d.state, d.deploys) for d in rows} == {("verified", 1)}


# What each commit waits for: the move to deploying (before the irreversible deploy) waits
# for the disk; the other moves are committed without waiting, and go to disk with the
# next durable commit. Read inside the transaction, on each backend.
LEVEL_QUERY = {"sqlite": "PRAGMA synchronous", "postgresql": "SHOW synchronous_commit"}
ON_DISK = {"sqlite": "2", "postgresql": "on"}  # FULL, on
NOT_WAITING = {"sqlite": "1", "postgresql": "off"}  # NORMAL, off


def _level(db: object, backend: str) -> str:
    row = db.execute(LEVEL_QUERY[backend]).fetchone()  # type: ignore[attr-defined]
    return str(next(iter(row.values())) if isinstance(row, dict) else row[0])


def test_a_relaxed_write_does_not_wait_for_the_disk_and_the_next_durable_one_does(
        journal: Journal, backend: str):
    db = journal._db
    levels = []
    for durable in (True, False, False, True):
        with db.write(durable=durable) as open_db:
            levels.append(_level(open_db, backend))
    assert levels == [ON_DISK[backend], NOT_WAITING[backend], NOT_WAITING[backend],
                      ON_DISK[backend]]


def test_only_the_move_to_deploying_waits_for_the_disk(journal: Journal, rollout, monkeypatch):
    journal.ensure_deployments(rollout.id, 1, entries(["d1"]))
    real, asked = journal._db.write, []

    def write(durable: bool = True):  # the real write, noting what was asked of it
        asked.append(durable)
        return real(durable=durable)

    monkeypatch.setattr(journal._db, "write", write)
    for state in STEPS:
        journal.transition(rollout.id, "d1", state, count_deploy=state == "deploying")
    assert asked == [state == "deploying" for state in STEPS]
    assert journal.deployment(rollout.id, "d1").state == "verified"
