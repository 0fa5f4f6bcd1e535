"""Origins for repos given by URL: bare repositories with some history, served by file://.

Each origin is what a forge holds: an Astro project (tests/simulators.py) with a few
commits on ``main`` (a DAG edited, a data file grown), pushed to a bare repository with
``uploadpack.allowFilter`` on, as GitHub and GitLab serve partial clones; the working copy
it was made in is removed, so nothing but the origin is left on the machine.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from simulators import make_astro_project

from tests.rollout.helpers import DOCKERFILE, START

GIT = ["git", "-c", "user.name=Origin", "-c", "user.email=origin@example.invalid",
       "-c", "commit.gpgsign=false"]


def make_origin(root: Path, name: str, *, version: str = START, history: int = 3,
                data_kib: int = 64) -> Path:
    """A bare origin ``root/<name>.git`` whose ``main`` holds an Astro project at ``version``
    after ``history`` more commits, each adding ``data_kib`` KiB to ``include/data.csv``."""
    work = root / ".work" / name
    make_astro_project(work, DOCKERFILE.format(version=version))
    (work / "include").mkdir()
    for n in range(history):
        with (work / "include" / "data.csv").open("a", encoding="utf-8") as handle:
            handle.writelines(f"{n},{i},{'x' * 56}\n" for i in range(data_kib * 16))
        with (work / "dags" / "example_dag.py").open("a", encoding="utf-8") as handle:
            handle.write(f"# change {n}\n")
        subprocess.run([*GIT, "add", "-A"], cwd=work, check=True)
        subprocess.run([*GIT, "commit", "-q", "-m", f"Change {n}"], cwd=work, check=True)
    bare = root / f"{name}.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "config", "uploadpack.allowFilter", "true"], cwd=bare, check=True)
    subprocess.run(["git", "push", "-q", bare.as_uri(), "main"], cwd=work, check=True)
    shutil.rmtree(work)
    return bare


def origin_text(bare: Path, path: str = "Dockerfile", ref: str = "main") -> str:
    """A file as the origin's branch holds it."""
    return subprocess.run(["git", "show", f"{ref}:{path}"], cwd=bare, capture_output=True,
                          text=True, check=True).stdout
