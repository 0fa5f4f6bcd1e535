"""The journal's cost per transition on both backends: SQLite and PostgreSQL.

Each transition is the production path: one committed transaction holding the Deployment's
row, its event and (on deployed/verified) its high-water mark. N Deployments are walked
through 8 transitions (rendered, committed, failed, pending, tested, deploying, deployed,
verified), first from 8 worker threads sharing one journal (as a wave runs), then from one
thread. SQLite is a file in a temp dir (WAL, synchronous=FULL); PostgreSQL is a throw-away
cluster on 127.0.0.1 started by scripts/postgres-test-server.sh with fsync on, reached
over TCP with synchronous_commit=on. Prints the figures; there is no limit to meet.

    .venv/bin/python benchmarks/journal.py [--deployments 500] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from upgrade.config.settings import JournalSettings  # noqa: E402
from upgrade.journal.configured import open_journal  # noqa: E402
from upgrade.journal.records import DeploymentEntry  # noqa: E402
from upgrade.model.versions import parse_version  # noqa: E402

SCRIPT = ROOT / "scripts" / "postgres-test-server.sh"
TARGET = parse_version("12.4.2")
STEPS = [("rendered", None), ("committed", None), ("failed", "push rejected"),
         ("pending", None), ("tested", None), ("deploying", None), ("deployed", None),
         ("verified", None)]


def walk(settings: JournalSettings, n: int, threads: int) -> float:
    """Seconds for n Deployments x 8 transitions from ``threads`` threads (a new rollout)."""
    with open_journal(settings) as journal:
        active = journal.active_rollout()
        if active is not None:
            journal.complete_rollout(active.id)
        rollout = journal.start_rollout("12.4", TARGET, "inventory.yaml")
        ids = [f"dep-{threads}-{i:05d}" for i in range(n)]
        journal.ensure_deployments(rollout.id, 1, [DeploymentEntry(i, i, "repo", TARGET)
                                                   for i in ids])
        errors: list[BaseException] = []

        def worker(mine: list[str]) -> None:
            try:
                for dep in mine:
                    for state, error in STEPS:
                        journal.transition(rollout.id, dep, state, error=error,
                                           count_deploy=state == "deploying")
            except BaseException as exc:
                errors.append(exc)

        pool = [threading.Thread(target=worker, args=(ids[k::threads],))
                for k in range(threads)]
        began = time.perf_counter()
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - began
        if errors:
            raise errors[0]
        return elapsed


def report(backend: str, settings: JournalSettings, n: int, detail: str) -> None:
    for threads in (8, 1):
        count = n * len(STEPS) if threads == 8 else max(n // 4, 1) * len(STEPS)
        seconds = walk(settings, count // len(STEPS), threads)
        print(f"journal {backend:<10} {threads} thread{'s' if threads > 1 else ' '}: "
              f"{count:>6,} transitions in {seconds:6.2f} s = "
              f"{seconds / count * 1000:6.3f} ms per transition  ({detail})", flush=True)


def postgres(directory: Path) -> tuple[str, str]:
    """Start a cluster (fsync on); (url, password)."""
    for args in (["install"], ["start", str(directory)]):
        done = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                              env={**os.environ, "PG_FSYNC": "on"}, check=False)
        if done.returncode != 0:
            sys.exit(f"cannot start PostgreSQL: {done.stderr.strip()}")
    env = dict(line.split("=", 1) for line in done.stdout.split() if "=" in line)
    return f"postgresql://{env['PG_USER']}@127.0.0.1:{env['PG_PORT']}/postgres", env["PG_PASSWORD"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=500)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), action="append")
    args = parser.parse_args()
    backends = args.backend or ["sqlite", "postgresql"]
    with tempfile.TemporaryDirectory(prefix="journal-bench-") as tmp:
        if "sqlite" in backends:
            report("sqlite", JournalSettings(Path(tmp) / ".upgrade"), args.deployments,
                   "WAL, synchronous=FULL, local file")
        if "postgresql" in backends:
            directory = Path(tmp) / "postgres"
            url, password = postgres(directory)
            os.environ["PGPASSWORD"] = password
            try:
                report("postgresql", JournalSettings(Path(tmp) / ".upgrade", url),
                       args.deployments, "127.0.0.1 TCP, fsync on, synchronous_commit=on")
            finally:
                subprocess.run(["bash", str(SCRIPT), "stop", str(directory)],
                               capture_output=True, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
