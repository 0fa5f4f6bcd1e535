"""verify-all at fleet scale: 1,000 simulated Deployments, against the 10 s limit.

Seeds a simulator with 1,000 Deployments in 10 workspaces, fed by 250 generated repos
(4 Deployments each; 1 % of the Dockerfiles pinned to another Runtime so some rows
drift), loads the inventory, reads the Dockerfiles and times ``check_fleet`` end to end.
Peers, timed in the same process against the same simulator:

* a plain sequential loop of the same 1,000 Airflow health calls;
* a plain sequential loop of the 10 ``astro deployment list`` calls;
* ``astro deployment inspect`` for 40 Deployments, 8 at a time, scaled to 1,000 (the
  per-Deployment status path this design avoids).

Usage: .venv/bin/python benchmarks/verify_all.py [--deployments 1000] [--workspaces 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the tests' simulator helpers

# The imports below come after the path set-up above (E402).
from simulators import control_plane_settings  # noqa: E402

from fleet_sim import lifecycle  # noqa: E402
from upgrade.config.control_plane import ControlPlaneConfig  # noqa: E402
from upgrade.config.inventory_loader import load_inventory  # noqa: E402
from upgrade.controlplane.control_plane import ControlPlane  # noqa: E402
from upgrade.hosts.host import LocalHost  # noqa: E402
from upgrade.model.versions import parse_version  # noqa: E402
from upgrade.plan.facts import read_dockerfiles  # noqa: E402
from upgrade.run.verify.drift import PlatformReader, check_fleet  # noqa: E402

LIMIT_S = 10.0
PER_REPO = 4
VERSION = "12.4.0"
OTHER = "12.5.0"


def build_fleet(root: Path, deployments: int, workspaces: int) -> tuple[Path, list[dict]]:
    """Repos with Dockerfiles, an inventory.yaml, and the simulator's seed list."""
    lines = ['target: "12.4"', "groups:", "  fleet: {wave: 1}", "repos:"]
    seed = []
    repos = (deployments + PER_REPO - 1) // PER_REPO
    for r in range(repos):
        repo = root / "repos" / f"repo-{r:04d}"
        repo.mkdir(parents=True)
        pin = OTHER if r % 100 == 7 else VERSION
        (repo / "Dockerfile").write_text(f"FROM quay.io/astronomer/astro-runtime:{pin}\n")
        lines += [f"  repo-{r:04d}:", f"    path: repos/repo-{r:04d}", "    groups: [fleet]",
                  "    deployments:"]
        for k in range(PER_REPO):
            n = r * PER_REPO + k
            if n >= deployments:
                break
            ws = f"ws-{n % workspaces:02d}"
            lines += [f"      - {{id: dep{n:05d}, name: dep-{n:05d}, workspace_id: {ws}}}"]
            seed.append({"id": f"dep{n:05d}", "name": f"dep-{n:05d}", "workspace_id": ws,
                         "runtime_version": VERSION})
    inventory = root / "inventory.yaml"
    inventory.write_text("\n".join(lines) + "\n")
    return inventory, seed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--workspaces", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="verify-all-bench-") as tmp:
        root = Path(tmp)
        state = root / "sim"
        info = lifecycle.start(state, time_scale=1.0)
        try:
            inventory_path, seed = build_fleet(root, args.deployments, args.workspaces)
            for i in range(0, len(seed), 500):
                lifecycle.seed(info.url, seed[i:i + 500])
            cp = ControlPlane(ControlPlaneConfig(**control_plane_settings(info.url)))
            inventory = load_inventory(inventory_path)
            deps = list(inventory.deployments)
            expected = {d.id: parse_version(VERSION) for d in deps}
            host = LocalHost()
            print(f"fleet: {len(deps)} Deployments, {len(inventory.repos)} repos, "
                  f"{args.workspaces} workspaces; simulator {info.url}")

            started = time.perf_counter()
            files = read_dockerfiles(inventory, deps, lambda repo: host)
            read_s = time.perf_counter() - started
            report = check_fleet(cp, inventory, deps, files, expected)
            total_s = time.perf_counter() - started
            check_s = total_s - read_s
            print(f"  {report.summary()}")
            print(f"  read Dockerfiles      {read_s:7.2f} s")
            print(f"  check_fleet           {check_s:7.2f} s")
            print(f"  end to end            {total_s:7.2f} s   ratio to {LIMIT_S:g} s limit "
                  f"{total_s / LIMIT_S:.2f}")
            for note in report.notes:
                print(f"  note: {note}")

            # Peers, same process, same simulator.
            reader = PlatformReader.for_config(cp.config)
            assert reader is not None
            infos = {}
            for ws in sorted({d.workspace_id for d in deps}):
                infos.update(reader.workspace(ws))
            reader.close()
            started = time.perf_counter()
            for dep in deps:
                cp.airflow_health(infos[dep.id])
            health_s = time.perf_counter() - started
            started = time.perf_counter()
            for ws in sorted({d.workspace_id for d in deps}):
                cp.list(ws)
            list_s = time.perf_counter() - started
            sample = deps[:40]
            started = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda d: cp.inspect(d.id, d.workspace_id), sample))
            inspect_s = (time.perf_counter() - started) * len(deps) / len(sample)
            print("peers (same process tree):")
            print(f"  {len(deps)} health calls, sequential      {health_s:7.2f} s   "
                  f"check_fleet / peer {check_s / health_s:.2f}")
            print(f"  {args.workspaces} deployment lists, sequential  {list_s:7.2f} s   "
                  f"check_fleet / peer {check_s / list_s:.2f}")
            print(f"  {len(deps)} inspects, 8 at a time (est.)  {inspect_s:7.2f} s   "
                  f"ratio to {LIMIT_S:g} s limit {inspect_s / LIMIT_S:.2f}")
            runs = []
            for _ in range(3):
                started = time.perf_counter()
                check_fleet(cp, inventory, deps, files, expected)
                runs.append(time.perf_counter() - started)
            print(f"  check_fleet again x3: median {statistics.median(runs):.2f} s")
            cp.close()
        finally:
            lifecycle.stop(state)
    return 0 if total_s < LIMIT_S else 1


if __name__ == "__main__":
    sys.exit(main())
