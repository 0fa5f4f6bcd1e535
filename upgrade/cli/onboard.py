"""The commands that bring a fleet in: ``init`` (a new fleet repo) and ``discover`` (its
inventory, from what Astro knows)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from upgrade.cli.commands import _console, print_document
from upgrade.cli.flags import (
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
from upgrade.errors import EXIT_OK, InputError


@command("init", DIR, TARGET, SIMULATOR)
def init(a: Args) -> int:
    """Create a fleet repo: inventory, tasks.py, playbook, templates, .gitignore, CI workflow.

    Refuses to overwrite anything: when a file is already there, it lists them and writes
    nothing.
    """
    from upgrade.config.scaffold import scaffold
    from upgrade.model.catalog import load_catalog
    from upgrade.model.versions import parse_spec

    console = _console()
    target = a.target or _newest_line(load_catalog(None))
    parse_spec(target, source="--target")
    root = Path(a.dir)
    written = scaffold(target, a.simulator).write(root)
    for name in written:
        console.say(f"wrote {root / name}")
    console.say("\nNext: fill the inventory from Astro with `astro-fleet discover --merge`, "
                "then `astro-fleet plan`.")
    return EXIT_OK


def _newest_line(catalog: object) -> str:
    """The newest stable Runtime line of the Airflow 2 scheme ("12.4"): a safe first target."""
    best = None
    for release in catalog:  # type: ignore[attr-defined]
        v = release.version
        if v.scheme == "af2" and not release.yanked and release.channel in ("stable", None) \
                and not v.is_prerelease and (best is None or v > best):
            best = v
    return f"{best.major}.{best.minor}" if best is not None else "latest"


@command("discover", INVENTORY, WORKSPACE, MERGE, OUTPUT, REPOS, JSON)
def discover(a: Args) -> int:
    """Build or extend the inventory from Astro: every Deployment and the repo it is deployed from.

    Deployments deployed from the same repository become one repo entry; waves are suggested
    by name suffix (-dev, -stg/-staging, -prod) and marked as suggestions; Deployments whose
    deploys carry no git metadata are listed in a commented 'unmapped:' block. Writes only
    when everything was read and the result validates.
    """
    from upgrade.config.control_plane import ControlPlaneConfig
    from upgrade.config.inventory_loader import DEFAULT_INVENTORY, INVENTORY_ENV, load_inventory
    from upgrade.config.scaffold import inventory_text
    from upgrade.model.catalog import load_catalog
    from upgrade.run import discover as found

    console = _console()
    target = Path(a.inventory or os.environ.get(INVENTORY_ENV, "").strip() or DEFAULT_INVENTORY)
    exists = target.is_file()
    if exists and not a.merge and a.output is None:
        raise InputError(f"{target} exists: --merge adds the Deployments it lacks (keeping "
                         "everything written there), or --output PATH writes a new inventory "
                         "elsewhere ('-' prints it). Nothing was read or written.")
    if a.merge and not exists:
        raise InputError(f"--merge: there is no {target} to merge into (in "
                         f"{target.resolve().parent}). Leave --merge out to create it.")
    root = target.resolve().parent
    if exists:
        inv = load_inventory(target, check_repos=False)
        config, waves, groups = inv.control_plane, tuple(inv.waves), inv.groups
        base = target.read_text("utf-8") if a.merge else None
    else:
        config, waves, groups, base = ControlPlaneConfig(), (1, 2, 3), {"production": None}, None
    if base is None:
        base = inventory_text(_newest_line(load_catalog(None)), config.simulator,
                              own_files=False)
    discovery, url = found.read_fleet(config, a.workspace, Path(a.repos or root), waves or (1,))
    merged = found.merge(discovery, base, root, "production" in groups)
    found.validate(merged.text, root)
    output = a.output or str(target)
    if output != "-":
        Path(output).write_text(merged.text, "utf-8")
    if a.json:
        print_document("discover", {"url": url, **discovery.to_json(str(root)),
                                    "written": None if output == "-" else output,
                                    "added": merged.added, "new_repos": merged.new_repos})
        return EXIT_OK
    if output == "-":
        sys.stdout.write(merged.text)
        return EXIT_OK
    _say_discovered(console, discovery, merged, url, output)
    return EXIT_OK


def _say_discovered(console: Any, discovery: Any, merged: Any, url: str, output: str) -> None:
    console.say(f"{discovery.deployments} Deployment(s) in {len(discovery.workspaces)} "
                f"workspace(s) at {url}: {len(discovery.repos)} repo(s), "
                f"{len(discovery.unmapped)} unmapped.")
    console.say(f"{output}: added {len(merged.added)} Deployment(s)"
                + (f" in {len(merged.new_repos)} new repo(s)" if merged.new_repos else "")
                + (f"; {merged.kept} already listed" if merged.kept else "")
                + ". Waves are suggestions from the names: check them.")
    for repo in discovery.missing_checkouts():
        console.note(f"no checkout of {repo.repository} found: git clone {repo.clone_url} "
                     f"{repo.path(str(Path(output).resolve().parent))}")
    if discovery.unmapped:
        names = [d.name for d in discovery.unmapped]
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        console.note(f"unmapped: {shown}: their deploys carry no git metadata (deployed from "
                     f"a dirty tree, without origin, or with git_metadata off); they are "
                     f"listed at the end of {output}: add each under its repo by hand.")
