"""Time `invoke plan --json` end to end on a synthetic fleet of 10,000 Deployments.

2,000 repos with mixed real-world Dockerfile shapes, 5 Deployments each. Prints wall time,
peak RSS and per-Deployment cost, each against its limit (2 s, 200 MB), and against a peer
in the same process tree: a bare `python -c "import yaml; yaml.load(...)"` of the same
inventory (the floor any YAML-based tool pays).

    .venv/bin/python benchmarks/plan.py [--repos 2000] [--per-repo 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WALL_LIMIT, RSS_LIMIT_MB = 2.0, 200.0

SHAPES = [
    "FROM quay.io/astronomer/astro-runtime:{v}\n",
    "ARG ASTRO_RUNTIME_VERSION={v}\nFROM quay.io/astronomer/astro-runtime:${{ASTRO_RUNTIME_VERSION}}-base\n"
    "USER root\nRUN apt-get update && apt-get install -y libgomp1\nUSER astro\n",
    "# Finance\r\nFROM --platform=linux/amd64 quay.io/astronomer/astro-runtime:{v}-python-3.12-base AS stage1\r\n"
    "COPY requirements.txt .\r\nRUN pip install -r requirements.txt\r\n\r\nFROM stage1 AS stage2\r\n",
    '\nARG IMAGE_NAME="quay.io/astronomer/astro-runtime:{v}-slim-base"\nFROM ${{IMAGE_NAME}}\n'
    "ENV PYTHONPATH=/usr/local/airflow/include\n",
    "# syntax=quay.io/astronomer/airflow-extensions:v1\n\n# FROM quay.io/astronomer/astro-runtime:11.3.0\n"
    "FROM quay.io/astronomer/astro-runtime:{v}\nPYENV 3.10 snowpark requirements-snowpark.txt",
]
VERSIONS = ["12.0.0", "12.1.0", "12.2.0", "12.3.0", "12.4.0"]


def build_fleet(root: Path, repos: int, per_repo: int) -> Path:
    """Write the repos and an inventory; return the inventory path."""
    lines = ['target: "12.4"', "control_plane:", "  api_url: http://127.0.0.1:18764/v1", "waves:",
             '  1: {match: ["*-dev*"], parallel: 50}', '  2: {match: ["*-stg*"]}',
             '  3: {match: ["*-prd*"]}', "repos:"]
    for r in range(repos):
        name = f"repo-{r:05d}"
        path = root / "repos" / name
        path.mkdir(parents=True)
        shape = SHAPES[r % len(SHAPES)]
        (path / "Dockerfile").write_bytes(shape.format(v=VERSIONS[r % len(VERSIONS)]).encode())
        lines += [f"  {name}:", f"    path: repos/{name}", "    deployments:"]
        for d in range(per_repo):
            kind = "dev" if d == 0 else ("stg" if d < per_repo // 2 + 1 else "prd")
            lines.append(
                f"      - {{id: cm{r:05d}x{d:02d}, name: {name}-{kind}{d}, "
                f"workspace_id: ws-{r % 10}}}"
            )
    (root / "inventory.yaml").write_text("\n".join(lines) + "\n")
    return root / "inventory.yaml"


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, bytes, int]:
    """(wall seconds, peak RSS MB, stdout, exit code) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, _ = proc.communicate()
    wall = time.perf_counter() - start
    # The child's own rusage (ru_maxrss is in KiB on Linux); communicate() reaped it, so
    # ask for the cumulative children figure's high-water mark instead.
    import resource

    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, peak, out, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=2000)
    parser.add_argument("--per-repo", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="plan-bench-"))
    try:
        inventory = build_fleet(tmp, args.repos, args.per_repo)
        deployments = args.repos * args.per_repo
        env = {**os.environ, "COLUMNS": "200"}
        peer_argv = [sys.executable, "-c",
                     "import yaml,sys; yaml.load(open(sys.argv[1]), Loader=yaml.CSafeLoader)",
                     str(inventory)]
        walls, peers, peak = [], [], 0.0
        for _ in range(args.runs):
            wall, rss, out, code = timed(
                [str(BIN / "invoke"), "-r", str(ROOT), "plan", "--json", "--offline"], tmp, env)
            if code not in (0, 3):
                print(f"plan failed with exit {code}", file=sys.stderr)
                return 1
            doc = json.loads(out)
            assert len(doc["deployments"]) == deployments
            walls.append(wall)
            peak = max(peak, rss)
            peers.append(timed(peer_argv, tmp, env)[0])
        wall, peer = statistics.median(walls), statistics.median(peers)
        print(f"fleet: {args.repos} repos, {deployments} Deployments ({doc['summary']})")
        print(f"invoke plan --json --offline: wall {wall:.2f} s (median of {args.runs}), "
              f"ratio to the {WALL_LIMIT:g} s limit {wall / WALL_LIMIT:.2f}")
        print(f"peak RSS {peak:.0f} MB, ratio to the {RSS_LIMIT_MB:g} MB limit {peak / RSS_LIMIT_MB:.2f}")
        print(f"per Deployment: {wall / deployments * 1e6:.0f} µs")
        print(f"peer (bare CSafeLoader parse of the same inventory): {peer:.2f} s; "
              f"plan / peer = {wall / peer:.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
