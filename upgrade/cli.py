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
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import ParamSpec

from rich.console import Console
from rich.table import Table

from .catalog import Catalog, load_catalog
from .dockerfile import find_base_image
from .errors import EXIT_OK, EXIT_UNEXPECTED, DockerfileError, InputError, UpgradeError
from .facts import read_dockerfiles
from .fleet import Fleet
from .render import DEFAULT_BRANCH, RenderOptions
from .render import render as apply_render
from .report import print_plan

P = ParamSpec("P")

# Piped output (CI logs, runbooks) gets a wide fixed width instead of rich's 80 columns,
# so tables do not fold every reason into a column of single words.
_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
stdout = Console(highlight=False, soft_wrap=True, width=_WIDTH)
stderr = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)


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


def _fleet(inventory: str, target: str | None = None, feed: str | None = None) -> Fleet:
    return Fleet.load(inventory, target=target, feed=feed)


@boundary
def plan(
    *,
    inventory: str,
    target: str | None = None,
    wave: int | None = None,
    limits: Sequence[str] = (),
    as_json: bool = False,
    offline: bool = False,
    adopt: bool = False,
    feed: str | None = None,
) -> int:
    """`invoke plan`: what would change, with diffs; changes nothing."""
    fleet = _fleet(inventory, target, feed)
    try:
        result = fleet.plan(fleet.select(wave, limits), offline=offline, adopt=adopt)
    finally:
        fleet.close()
    if as_json:
        _print_json(result.to_json())
    else:
        print_plan(result, stdout)
    return result.exit_code()


@boundary
def render(
    *,
    inventory: str,
    target: str | None = None,
    wave: int | None = None,
    limits: Sequence[str] = (),
    commit: bool = False,
    push: bool = False,
    branch: str | None = None,
    offline: bool = False,
    adopt: bool = False,
) -> int:
    """`invoke render`: write the planned Dockerfile changes (optionally commit and push)."""
    fleet = _fleet(inventory, target)
    try:
        result = fleet.plan(fleet.select(wave, limits), offline=offline, adopt=adopt)
    finally:
        fleet.close()
    for p in result.deployments:
        if p.action == "refuse":
            stderr.print(f"refused: {p.deployment.name}: {p.reason}")
    options = RenderOptions(commit=commit or push, push=push, branch=branch or DEFAULT_BRANCH)
    done = apply_render(fleet.inventory, result, fleet.host_for, options)
    for repo, outcome in done.outcomes.items():
        extra = f" {done.commits[repo][:12]}" if repo in done.commits else ""
        pushed = " (pushed)" if repo in done.pushed else ""
        stdout.print(f"{repo}: {outcome}{extra}{pushed}")
    if not done.outcomes:
        stdout.print("Nothing to render: every selected repo is already at the target.")
    return result.exit_code()


@boundary
def show_inventory(*, inventory: str, name: str | None = None, as_json: bool = False) -> int:
    """`invoke inventory`: the merged view of one Deployment, or the fleet by wave."""
    inv = _fleet(inventory).inventory
    if name:
        view = inv.merged_view(name)
        if as_json:
            _print_json(view)
        else:
            stdout.print_json(json.dumps(view, default=str))
        return EXIT_OK
    table = Table(title=f"{inv.file}: {len(inv.deployments)} Deployments, {len(inv.repos)} repos")
    for column in ("wave", "deployment", "id", "workspace", "repo", "groups"):
        table.add_column(column)
    for d in sorted(inv.deployments, key=lambda d: d.wave):
        table.add_row(
            str(d.wave), d.name, d.id, d.workspace_id, d.repo, ", ".join(sorted(d.groups))
        )
    if as_json:
        _print_json([inv.merged_view(d.name) for d in inv.deployments])
    else:
        stdout.print(table)
    return EXIT_OK


# ----------------------------------------------------------------------------- simulator


def _sim_dir(inventory: str) -> Path:
    """The simulator state dir named by the inventory's control_plane.simulator."""
    inv = _fleet(inventory).inventory
    where = inv.control_plane.get("simulator")
    if not isinstance(where, str) or where.startswith(("http://", "https://")):
        raise InputError(
            f"{inv.file}: control_plane.simulator: set it to the simulator's state directory "
            "(e.g. .sim) to manage a local simulator with invoke sim.*."
        )
    return inv.root / where


@boundary
def sim_start(
    *, inventory: str, port: int = 0, time_scale: float = 1.0, faults: str | None = None
) -> int:
    """`invoke sim.start`: start the local control-plane simulator (loopback only)."""
    from .sim import lifecycle

    state_dir = _sim_dir(inventory)
    running = lifecycle.status(state_dir)
    if running is not None:
        stdout.print(f"simulator already running at {running.url} (pid {running.pid})")
        return EXIT_OK
    info = lifecycle.start(
        state_dir, port=port, time_scale=time_scale, faults=Path(faults) if faults else None
    )
    stdout.print(f"simulator running at {info.url} (pid {info.pid}, state in {state_dir})")
    return EXIT_OK


@boundary
def sim_stop(*, inventory: str) -> int:
    """`invoke sim.stop`."""
    from .sim import lifecycle

    stopped = lifecycle.stop(_sim_dir(inventory))
    stdout.print("simulator stopped" if stopped else "no simulator was running")
    return EXIT_OK


@boundary
def sim_status(*, inventory: str) -> int:
    """`invoke sim.status`: exit 0 when running, 1 when not."""
    from .sim import lifecycle

    info = lifecycle.status(_sim_dir(inventory))
    if info is None:
        stdout.print("simulator: not running (start it with: invoke sim.start)")
        return EXIT_UNEXPECTED
    stdout.print(f"simulator: running at {info.url} (pid {info.pid})")
    return EXIT_OK


@boundary
def sim_seed(*, inventory: str) -> int:
    """`invoke sim.seed`: create the inventory's Deployments at their Dockerfiles' versions."""
    from .sim import lifecycle

    fleet = _fleet(inventory)
    info = lifecycle.status(_sim_dir(inventory))
    if info is None:
        raise UpgradeError("the simulator is not running: start it with `invoke sim.start`.")
    inv = fleet.inventory
    files = read_dockerfiles(inv, inv.deployments, fleet.host_for)
    docs, skipped = [], []
    for dep in inv.deployments:
        text = files[dep.repo].text
        try:
            if text is None:
                raise DockerfileError(files[dep.repo].error or "unreadable")
            version = find_base_image(text, path=str(inv.repos[dep.repo].dockerfile_path)).version
        except DockerfileError as exc:
            skipped.append(f"{dep.name}: {exc}")
            continue
        docs.append(
            {
                "id": dep.id,
                "name": dep.name,
                "workspace_id": dep.workspace_id,
                "runtime_version": str(version),
            }
        )
    lifecycle.seed(info.url, docs)
    stdout.print(f"seeded {len(docs)} Deployments into the simulator at {info.url}")
    for line in skipped:
        stderr.print(f"skipped {line}")
    return EXIT_OK


@boundary
def sim_reset(*, inventory: str) -> int:
    """`invoke sim.reset`: forget every simulated Deployment and fault."""
    from .sim import lifecycle

    info = lifecycle.status(_sim_dir(inventory))
    if info is None:
        raise UpgradeError("the simulator is not running: start it with `invoke sim.start`.")
    lifecycle.reset(info.url)
    stdout.print("simulator reset")
    return EXIT_OK
