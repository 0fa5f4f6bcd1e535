"""The commands that bring a fleet in: ``init`` (a new fleet repo) and ``discover`` (its
inventory, from what Astro knows)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from upgrade.cli.commands import consoles, print_document
from upgrade.cli.flags import (
    CI,
    DIR,
    INVENTORY,
    JSON,
    MERGE,
    OUTPUT,
    REPOS,
    SIMULATOR,
    TARGET,
    WORKSPACE,
    Args,
    command,
)
from upgrade.errors import EXIT_OK


@command("init", DIR, TARGET, SIMULATOR, CI)
def init(a: Args) -> int:
    """Create a fleet repo: inventory, tasks.py, playbook, templates, .gitignore, CI pipeline.

    Refuses to overwrite anything: when a file is already there, it lists them and writes
    nothing.
    """
    from upgrade.config.scaffold import JOURNAL_ENV, default_target, scaffold
    from upgrade.model.catalog import load_catalog
    from upgrade.model.versions import parse_spec

    console = consoles()
    if a.target:
        parse_spec(a.target, source="--target")
    target = a.target or default_target(load_catalog(None))
    root = Path(a.dir)
    for name in scaffold(target, a.simulator, a.ci).write(root):
        console.say(f"wrote {root / name}")
    if a.ci:
        console.say(f"\nThe pipeline needs the team's journal: export its postgresql:// URL in "
                    f"{JOURNAL_ENV} here, and add it as the CI secret {JOURNAL_ENV} (with "
                    "ASTRO_API_TOKEN; the pipeline's header lists them).")
    console.say("\nNext: fill the inventory from Astro with `astro-fleet discover --merge`, "
                "then `astro-fleet plan`.")
    return EXIT_OK


@command("discover", INVENTORY, WORKSPACE, MERGE, OUTPUT, REPOS, JSON)
def discover(a: Args) -> int:
    """Build or extend the inventory from Astro: every Deployment and the repo it is deployed from.

    Deployments deployed from the same repository become one repo entry; waves are suggested
    by name suffix (-dev, -stg/-staging, -prod) and marked as suggestions; Deployments whose
    deploys carry no git metadata are listed in a commented 'unmapped:' block. Writes only
    when everything was read and the result validates.
    """
    from upgrade.config.inventory_loader import DEFAULT_INVENTORY, INVENTORY_ENV
    from upgrade.report.discover import print_discovery
    from upgrade.run.services.discover import discover_inventory

    inventory = Path(a.inventory or os.environ.get(INVENTORY_ENV, "").strip()
                     or DEFAULT_INVENTORY)
    written = discover_inventory(inventory, merge=a.merge, output=a.output,
                                 workspaces=a.workspace, repos_dir=a.repos)
    if a.json:
        print_document("discover", {
            "url": written.url, **written.discovery.to_json(str(written.root)),
            "written": None if written.output == "-" else written.output,
            "added": written.merged.added, "new_repos": written.merged.new_repos})
    elif written.output == "-":
        sys.stdout.write(written.merged.text)
    else:
        print_discovery(written)
    return EXIT_OK
