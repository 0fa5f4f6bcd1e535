"""From an empty directory to a plan on a fleet of repos given by URL, and what the checkouts
weigh on disk: the figures of issue 25 (a CI runner that holds nothing but the fleet repo).

The origins are bare repositories on this machine served by file:// with
``uploadpack.allowFilter`` on (as GitHub and GitLab serve partial clones). Each is an
Astro project (Dockerfile, .astro/config.yaml, a DAG) with ``--commits`` more commits,
each editing the DAG and rewriting ``include/data.csv`` with ``--data-kib`` KiB of fresh
random hex (a data file that changes wholesale: what makes a repo's history heavy).

Measured, each as a whole ``astro-fleet`` process run in a directory holding only
inventory.yaml (repos by ``url``, ``git.mode: direct``):

* cold: ``plan --offline`` with no checkout yet (clones included, all repos at once);
* warm: the same command again (a fetch per repo, nothing new);
* on disk: each checkout (blob-less: every commit and tree, blobs of HEAD only) against
  a full clone of the same origin (``git clone --no-local``), ``.git`` and work tree apart.

``--offline`` keeps Astro out of the figure: what is measured is the checkouts and the
plan's own work (the Dockerfiles read, the decisions). Exit 0 always; 1 if a command failed.

Usage: .venv/bin/python benchmarks/url_fleet.py [--repos 10] [--commits 50] [--data-kib 64]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent
GIT = ["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.invalid",
       "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"]
DAG = "from airflow.decorators import dag\n"


def make_origin(root: Path, name: str, commits: int, data_kib: int) -> Path:
    """A bare origin holding an Astro project and ``commits`` commits of history."""
    work = root / ".work" / name
    (work / ".astro").mkdir(parents=True)
    (work / "dags").mkdir()
    (work / "include").mkdir()
    (work / ".astro" / "config.yaml").write_text(f"project:\n  name: {name}\n")
    (work / "Dockerfile").write_text("FROM quay.io/astronomer/astro-runtime:12.1.0\n")
    (work / "requirements.txt").write_text("")
    (work / "dags" / "example_dag.py").write_text(DAG)
    subprocess.run([*GIT, "init", "-q"], cwd=work, check=True)
    for n in range(commits + 1):
        (work / "include" / "data.csv").write_text(os.urandom(data_kib * 512).hex())
        with (work / "dags" / "example_dag.py").open("a") as handle:
            handle.write(f"# change {n}\n")
        subprocess.run([*GIT, "add", "-A"], cwd=work, check=True)
        subprocess.run([*GIT, "commit", "-q", "-m", f"Change {n}"], cwd=work, check=True)
    bare = root / f"{name}.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "config", "uploadpack.allowFilter", "true"], cwd=bare, check=True)
    subprocess.run(["git", "push", "-q", bare.as_uri(), "main"], cwd=work, check=True)
    shutil.rmtree(work)
    return bare


def size(path: Path) -> int:
    """Bytes of the files under ``path`` (what they hold, not blocks)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "120"})
    wall = time.perf_counter() - start
    if done.returncode not in (0, 8):
        sys.stderr.write(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
        raise SystemExit(1)
    return wall


def mib(n: float) -> str:
    return f"{n / 2**20:.2f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=10)
    parser.add_argument("--commits", type=int, default=50)
    parser.add_argument("--data-kib", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="url-fleet-") as tmp:
        root = Path(tmp)
        origins = {f"repo{i:02d}": make_origin(root / "origins", f"repo{i:02d}", args.commits,
                                               args.data_kib) for i in range(args.repos)}
        runner = root / "runner"
        runner.mkdir()
        specs = {name: {"url": bare.as_uri(), "git": {"mode": "direct"},
                        "deployments": [{"id": f"clb{i:03d}", "name": f"{name}-prod",
                                         "workspace_id": "ws-1", "wave": 1}]}
                 for i, (name, bare) in enumerate(origins.items())}
        (runner / "inventory.yaml").write_text(
            yaml.safe_dump({"target": "12.4", "repos": specs}, sort_keys=False))
        argv = [str(BIN / "astro-fleet"), "plan", "--offline", "--detailed-exitcode"]
        cold = timed(argv, runner)
        warm = timed(argv, runner)

        workdir = runner / ".upgrade" / "checkouts"
        kept_git = sum(size(workdir / n / ".git") for n in origins)
        kept_all = sum(size(workdir / n) for n in origins)
        full = root / "full"
        for name, bare in origins.items():
            subprocess.run(["git", "clone", "-q", "--no-local", bare.as_uri(),
                            str(full / name)], check=True)
        full_git = sum(size(full / n / ".git") for n in origins)
        full_all = sum(size(full / n) for n in origins)
        origin_size = sum(size(b) for b in origins.values())

    print(f"{args.repos} repos by url (file:// origins, {args.commits + 1} commits each, "
          f"include/data.csv rewritten with {args.data_kib} KiB of random hex per commit; "
          f"origins {mib(origin_size)} in all)")
    print(f"  empty directory -> plan --offline, clones included: {cold:.2f} s")
    print(f"  plan --offline again (fetch, nothing new):          {warm:.2f} s")
    print(f"  checkouts on disk (blob-less): {mib(kept_all)} ({mib(kept_git)} in .git)")
    print(f"  full clones of the same:       {mib(full_all)} ({mib(full_git)} in .git)")
    print(f"  blob-less / full: {kept_all / full_all:.2f} on disk, {kept_git / full_git:.2f} "
          "of .git")
    return 0


if __name__ == "__main__":
    sys.exit(main())
