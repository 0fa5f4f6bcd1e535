"""The command-line boundary: one function per invoke task, each returning an exit code.

Errors are caught here and only here: an ``UpgradeError`` becomes its message on stderr
and its documented exit code; anything else is a bug, reported in one line (the
traceback only with ``UPGRADE_DEBUG=1``).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import ParamSpec

from rich.console import Console
from rich.table import Table

from .catalog import Catalog, load_catalog
from .errors import EXIT_OK, EXIT_UNEXPECTED, UpgradeError

P = ParamSpec("P")

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def boundary(func: Callable[P, int]) -> Callable[P, int]:
    """Map the tool's errors to their exit codes with one clear message, no traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            return func(*args, **kwargs)
        except UpgradeError as exc:
            stderr.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
            return exc.exit_code
        except KeyboardInterrupt:
            stderr.print("interrupted.")
            return 130
        except Exception as exc:  # a bug: say so plainly, keep the traceback opt-in
            if os.environ.get("UPGRADE_DEBUG"):
                traceback.print_exc()
            stderr.print(
                f"unexpected error: {type(exc).__name__}: {exc} "
                "(run again with UPGRADE_DEBUG=1 for the traceback, and report it)"
            )
            return EXIT_UNEXPECTED

    return wrapper


def today() -> datetime:
    """Now, in UTC: every date comparison uses one clock."""
    return datetime.now(UTC)


@boundary
def catalog(
    *,
    feed: str | None = None,
    mode: str = "extend",
    resolve: str | None = None,
    as_json: bool = False,
    base_dir: Path | None = None,
) -> int:
    """`invoke catalog`: the releases newest first, or one spec resolved."""
    cat = load_catalog(feed, mode=mode, base_dir=base_dir)  # type: ignore[arg-type]
    day = today().date()
    if resolve is not None:
        resolution = cat.resolve(resolve, source="--resolve")
        if as_json:
            doc = {"spec": str(resolution.spec), "warnings": list(resolution.warnings)}
            doc.update(resolution.release.to_json(day))
            _print_json(doc)
        else:
            stdout.print(f"{resolution.spec} → [bold]{resolution.version}[/]", markup=True)
            stdout.print(f"image: {resolution.release.image()}")
            for warning in resolution.warnings:
                stderr.print(f"warning: {warning}")
        return EXIT_OK
    if as_json:
        _print_json({"sources": list(cat.sources), "releases": [r.to_json(day) for r in cat]})
    else:
        stdout.print(catalog_table(cat, day))
    return EXIT_OK


def catalog_table(cat: Catalog, day: object) -> Table:
    """A table of the catalog, newest first; unknown values are shown as '?'."""
    table = Table(title=f"Astro Runtime releases ({len(cat)}; {', '.join(cat.sources)})")
    for column in ("version", "Airflow", "Python", "released", "end of maintenance", "status"):
        table.add_column(column)
    for r in cat:
        table.add_row(
            str(r.version),
            r.airflow or "?",
            r.python or "?",
            str(r.released or "?"),
            str(r.end_of_maintenance or "?"),
            r.status(day),  # type: ignore[arg-type]
        )
    return table


def _print_json(doc: object) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()
