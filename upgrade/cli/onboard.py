"""The commands that bring a fleet in: ``init`` (a new fleet repo) and ``discover`` (its
inventory, from what Astro knows)."""

from __future__ import annotations

from pathlib import Path

from upgrade.cli.commands import _console
from upgrade.cli.flags import DIR, SIMULATOR, TARGET, Args, command
from upgrade.errors import EXIT_OK


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
