"""`invoke catalog`: the real command, its JSON, its refusals, and a feed served over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from simulators import SimHandle
from support import INVOKE, ROOT

from upgrade.model.catalog import load_feed


def invoke(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([INVOKE, "-r", str(ROOT), "catalog", *args], cwd=cwd,
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})


def test_json_lists_every_release_newest_first(tmp_path: Path) -> None:
    out = invoke("--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    versions = [r["version"] for r in doc["releases"]]
    assert len(versions) == 183 and versions[0] == "3.3-8" and versions[-1] == "2.1.1"
    eleven = next(r for r in doc["releases"] if r["version"] == "11.8.0")
    assert eleven["airflow"] == "2.9.3" and eleven["end_of_maintenance"] == "2025-10-31"
    assert eleven["status"] == "deprecated"


def test_resolve_json(tmp_path: Path) -> None:
    out = invoke("--resolve", "12.4", "--json", cwd=tmp_path)
    doc = json.loads(out.stdout)
    assert (doc["spec"], doc["version"], doc["image"]) == (
        "12.4", "12.4.0", "quay.io/astronomer/astro-runtime:12.4.0")
    assert doc["warnings"] and "observed" in doc["status"]


def test_table_shows_unknowns_honestly(tmp_path: Path) -> None:
    out = invoke(cwd=tmp_path)
    row = next(line for line in out.stdout.splitlines() if "│ 12.4.0 " in line)
    assert "2.10.*" in row and "?" in row and "observed" in row


def test_bad_spec_is_one_line_exit_2(tmp_path: Path) -> None:
    out = invoke("--resolve", "twelve", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: --resolve: 'twelve' is not a valid Runtime version spec. Accepted forms: an "
        "exact version (12.4.0, 3.1-12), a line (12.4, 12, 3.1, 3, also written 12.4.x) or 'latest'."
    ]


def test_unreachable_feed_names_the_url(tmp_path: Path) -> None:
    out = invoke("--feed", "http://127.0.0.1:9/astronomer-runtime", cwd=tmp_path)
    assert out.returncode == 2
    assert "feed http://127.0.0.1:9/astronomer-runtime: cannot be reached" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_simulator_serves_a_feed_our_loader_reads(sim: SimHandle, tmp_path: Path) -> None:
    feed = f"{sim.url}/astronomer-runtime"
    catalog = load_feed(feed)
    assert len(catalog) == 183
    yanked = [str(r.version) for r in catalog if r.yanked]
    assert "9.0.0" in yanked and "11.1.0" in yanked and len(yanked) == 10
    out = invoke("--feed", feed, "--mode", "replace", "--resolve", "11", cwd=tmp_path)
    # Runtime 11 is past end of maintenance: its feed channel is "deprecated".
    assert out.returncode == 3 and "'11' resolves to nothing" in out.stderr
