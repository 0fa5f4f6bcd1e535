"""``astro-sim`` stays lean: a fleet run starts it once per deploy (benchmarks/sim_cli.py).

Each common command runs under ``python -X importtime``, which lists every module the
interpreter loaded; none of the modules whose import alone costs a call a large part of
its 25 ms CPU budget may be among them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from upgrade.sim.testing import SimHandle, make_astro_project

# Measured per process here: re ~8 ms (with enum), json ~12, subprocess ~11, pathlib ~10,
# dockerfile_parse ~20 (with logging), typing ~4; urllib.parse, base64, socket, datetime
# and dataclasses each pull one of those in or cost a few ms of their own.
HEAVY = ("re", "enum", "json", "subprocess", "pathlib", "urllib.parse", "base64", "socket",
         "datetime", "dataclasses", "typing", "logging", "dockerfile_parse", "http.client")


def _loaded(sim: SimHandle, cwd: Path, *args: str) -> set[str]:
    done = subprocess.run([sys.executable, "-X", "importtime", sim.astro_bin, *args], cwd=cwd,
                          env={**os.environ, **sim.env}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:") and line.count("|") == 2}


@pytest.mark.parametrize("args", [
    ("deploy", "cl001", "-f", "--workspace-id", "ws-1", "--description", "lean"),
    ("deployment", "inspect", "cl001", "-o", "json", "--workspace-id", "ws-1"),
    ("deployment", "list", "--json", "--workspace-id", "ws-1"),
], ids=["deploy", "inspect", "list"])
def test_common_commands_import_none_of_the_heavy_modules(sim: SimHandle, tmp_path: Path,
                                                           args: tuple[str, ...]) -> None:
    sim.add_deployment("cl001", "lean", runtime_version="12.1.0")
    proj = make_astro_project(tmp_path / "proj", "FROM quay.io/astronomer/astro-runtime:12.4.0\n",
                              origin="git@github.com:acme/lean.git")
    loaded = _loaded(sim, proj, *args)
    assert "upgrade.sim.cli" in loaded  # the list is real
    assert sorted(m for m in HEAVY if m in loaded) == []
