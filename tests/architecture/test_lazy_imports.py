"""`plan --offline` imports only what it uses: none of the heavy optional libraries.

Lazy imports are a rule only for these, each imported by the code that needs it (Astro
and webhooks: httpx; template-managed repos and playbook steps: jinja2; SSH runners:
fabric/paramiko; tables and messages: rich; the team journal: psycopg; `discover
--merge`: ruamel.yaml). Each costs 0.15-1 s to import on a cold cache (``python -X
importtime``); the rest of the package imports at module level as usual. A module-level
import of one of them anywhere on the plan's path shows here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("httpx", "jinja2", "fabric", "paramiko", "rich", "psycopg", "ruamel")

# Runs the real command line in-process, then prints the modules it loaded.
PROBE = """
import json, sys
from upgrade.cli.program import main
try:
    main(["astro-fleet", "plan", "--offline", "--json"])
except SystemExit as exit:
    code = exit.code
sys.stderr.write(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

INVENTORY = """\
target: "12.4"
repos:
  billing:
    path: billing
    deployments:
      - {id: cm0billing0dev, name: billing-dev, workspace_id: ws1, wave: 1}
      - {id: cm0billing0prd, name: billing-prd, workspace_id: ws1, wave: 2}
"""


def test_plan_offline_json_imports_none_of_the_heavy_libraries(tmp_path: Path) -> None:
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    (tmp_path / "billing").mkdir()
    (tmp_path / "billing" / "Dockerfile").write_text(
        "FROM quay.io/astronomer/astro-runtime:12.1.0\n")
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    report = json.loads(done.stderr.splitlines()[-1])
    assert report["code"] in (0, None), done.stderr
    assert json.loads(done.stdout)["summary"]["upgrade"] == 2
    loaded = {name.split(".")[0] for name in report["modules"]}
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
