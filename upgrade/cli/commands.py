"""The command-line boundary: one function per invoke task, each returning an exit code.

Errors are caught here and only here: an ``UpgradeError`` becomes its message on stderr
and its documented exit code; anything else is a bug, reported in one line (the
traceback only with ``UPGRADE_DEBUG=1``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import ParamSpec

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from upgrade.config.playbook import Playbook, default_playbook_path, load_playbook
from upgrade.errors import (
    EXIT_INPUT,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_UNEXPECTED,
    DockerfileError,
    InputError,
    UpgradeError,
)
from upgrade.hosts.pool import check_runners
from upgrade.journal.lock import RunLock, force_unlock
from upgrade.journal.store import Journal, actor
from upgrade.model.catalog import Catalog, load_catalog
from upgrade.model.dockerfile import find_base_image
from upgrade.plan.facts import read_dockerfiles
from upgrade.plan.fleet import Fleet
from upgrade.report.progress import LiveReporter, LogReporter
from upgrade.report.recap import (
    print_plan,
    print_recap,
    print_status,
    rollout_status,
    write_wave_markdown,
)
from upgrade.run.drift import check_fleet
from upgrade.run.drift import print_report as print_drift
from upgrade.run.render import DEFAULT_BRANCH, RenderOptions
from upgrade.run.render import render as apply_render
from upgrade.run.rollout import WaveRequest, pinned_target, run_wave

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
            # escape(): a message is text, not markup; rich used to eat "[deployment-id]"
            # and any other bracketed words out of it (fix from the rollout tests).
            stderr.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
            return exc.exit_code
        except KeyboardInterrupt:
            stderr.print("interrupted.")
            return EXIT_SIGINT
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
    mode: str | None = None,
    resolve: str | None = None,
    as_json: bool = False,
    inventory: str | None = None,
) -> int:
    """`invoke catalog`: the releases newest first, or one spec resolved.

    The feed comes from --feed, else from the inventory's ``catalog:`` (when an inventory
    file is there), else the bundled snapshot is used alone.
    """
    base_dir = None
    if feed is None and inventory and Path(inventory).is_file():
        settings = _fleet(inventory).inventory.catalog
        feed, mode, base_dir = settings.feed, mode or settings.mode, Path(inventory).parent
    cat = load_catalog(feed, mode=mode or "extend", base_dir=base_dir)  # type: ignore[arg-type]
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
    from upgrade.sim import lifecycle

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
    from upgrade.sim import lifecycle

    stopped = lifecycle.stop(_sim_dir(inventory))
    stdout.print("simulator stopped" if stopped else "no simulator was running")
    return EXIT_OK


@boundary
def sim_status(*, inventory: str) -> int:
    """`invoke sim.status`: exit 0 when running, 1 when not."""
    from upgrade.sim import lifecycle

    info = lifecycle.status(_sim_dir(inventory))
    if info is None:
        stdout.print("simulator: not running (start it with: invoke sim.start)")
        return EXIT_UNEXPECTED
    stdout.print(f"simulator: running at {info.url} (pid {info.pid})")
    return EXIT_OK


def _sim_url(inventory: str) -> str:
    """The URL of the inventory's simulator: given directly, or found via its state dir."""
    from upgrade.sim import lifecycle

    where = _fleet(inventory).inventory.control_plane.get("simulator")
    if isinstance(where, str) and where.startswith(("http://", "https://")):
        return where
    info = lifecycle.status(_sim_dir(inventory))
    if info is None:
        raise UpgradeError("the simulator is not running: start it with `invoke sim.start`.")
    return info.url


@boundary
def sim_seed(*, inventory: str) -> int:
    """`invoke sim.seed`: create the inventory's Deployments at their Dockerfiles' versions."""
    from upgrade.sim import lifecycle

    url = _sim_url(inventory)
    docs, skipped = seed_documents(_fleet(inventory))
    lifecycle.seed(url, docs)
    stdout.print(f"seeded {len(docs)} Deployments into the simulator at {url}")
    for line in skipped:
        stderr.print(f"skipped {line}")
    return EXIT_OK


def seed_documents(fleet: Fleet) -> tuple[list[dict], list[str]]:
    """Simulator Deployments for the inventory, at their Dockerfiles' versions; and skips."""
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
    return docs, skipped


@boundary
def sim_reset(*, inventory: str) -> int:
    """`invoke sim.reset`: forget every simulated Deployment and fault."""
    from upgrade.sim import lifecycle

    lifecycle.reset(_sim_url(inventory))
    stdout.print("simulator reset")
    return EXIT_OK


# ----------------------------------------------------------------------------- rollout


@boundary
def upgrade(
    *,
    inventory: str,
    wave: int,
    limits: Sequence[str] = (),
    target: str | None = None,
    playbook: str | None = None,
    as_json: bool = False,
    dry_run: bool = False,
    skip_gate: bool = False,
    reason: str | None = None,
    command: str = "invoke upgrade",
) -> int:
    """`invoke upgrade --wave N`: run one wave (or, with --dry-run, show what would run)."""
    if skip_gate and not (reason or "").strip():
        raise InputError('--skip-gate needs --reason "why": it is recorded and shown in reports.')
    fleet = _fleet(inventory, target)
    inv = fleet.inventory
    book = load_playbook(Path(playbook) if playbook else default_playbook_path(inv.root))
    # markup=False on every line below that holds names, paths or --limit globs: rich
    # markup would eat "[...]" out of them (a glob such as 'r0[0-3]*' lost its brackets
    # in the resume hint). Fix from the rollout tests.
    for warning in book.warnings:
        stderr.print(f"warning: {warning}", markup=False)
    try:
        if dry_run:
            return _dry_run(fleet, book, wave, limits, as_json)
        with RunLock(inv.journal, command) as lock, Journal.open_dir(inv.journal) as journal:
            if lock.note:
                stderr.print(f"note: {lock.note}", markup=False)
                journal.event("lock_taken_over", message=lock.note)
            stop = threading.Event()
            reporter = (
                LiveReporter(stderr) if stderr.is_terminal and not as_json else LogReporter(stderr)
            )
            with _stop_on_interrupt(stop, reporter, _resume_command(wave, limits)):
                request = WaveRequest(
                    wave, tuple(limits), actor(), skip_gate_reason=reason if skip_gate else None
                )
                result = run_wave(fleet, journal, book, request, reporter, stop)
            report_path = write_wave_markdown(inv.journal, result)
    finally:
        fleet.close()
    if as_json:
        _print_json(result.to_json())
    else:
        print_recap(result, stdout)
        stdout.print(f"report: {report_path}", markup=False)
    if result.status != "passed":
        stderr.print(f"resume with: {_resume_command(wave, limits)}", markup=False)
    return result.exit_code


def _resume_command(wave: int, limits: Sequence[str]) -> str:
    return f"invoke upgrade --wave {wave}" + "".join(f" --limit {shlex.quote(x)}" for x in limits)


def _dry_run(fleet: Fleet, book: Playbook, wave: int, limits: Sequence[str], as_json: bool) -> int:
    journal_file = fleet.inventory.journal / "journal.db"
    resolution, high_water = None, {}
    if journal_file.exists():
        with Journal.open(journal_file) as journal:
            active = journal.active_rollout()
            if active is not None:
                resolution = fleet.catalog.resolve(str(active.target_version))
            high_water = journal.high_water()
    result = fleet.plan(fleet.select(wave, limits), resolution=resolution, high_water=high_water)
    if as_json:
        doc = result.to_json()
        doc["steps"] = [{"name": s.name, "kind": s.kind, "scope": s.scope} for s in book.steps]
        _print_json(doc)
    else:
        print_plan(result, stdout)
        stdout.print(
            f"\nWould run playbook {book.path.name} ('{book.name}') for each upgrading "
            "Deployment (dry run: nothing was changed):",
            markup=False,
        )
        for step in book.steps:
            when = f" when {step.when}" if step.when else ""
            stdout.print(
                f"  {step.index + 1}. {step.name} [{step.kind}, once per {step.scope}]{when}",
                markup=False,
            )
    return result.exit_code()


@contextlib.contextmanager
def _stop_on_interrupt(stop: threading.Event, reporter: object, resume: str) -> Iterator[None]:
    """First Ctrl-C: start no new work, let in-flight steps finish. Second: exit at once.

    Exiting at once is safe for the same reason a kill is: every state change is already
    in the journal, and the resume rules inspect any Deployment caught mid-deploy.
    """

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            sys.stderr.write(
                "\nstopping now. Deploys already started go on at Astro; the journal has every "
                f"state change. Resume with: {resume}\n"
            )
            sys.stderr.flush()
            os._exit(EXIT_SIGINT)
        stop.set()
        reporter.note(  # type: ignore[attr-defined]
            "interrupted: no new Deployment starts; in-flight steps finish "
            "(Ctrl-C again to exit at once)"
        )

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@boundary
def status(*, inventory: str, as_json: bool = False) -> int:
    """`invoke status`: every rollout in the journal, its waves, soak time left."""
    inv = _fleet(inventory).inventory
    journal_file = inv.journal / "journal.db"
    if not journal_file.exists():
        stdout.print(f"no journal yet ({journal_file}): nothing has been rolled out", markup=False)
        return EXIT_OK
    with Journal.open(journal_file) as journal:
        doc = rollout_status(journal, today())
    if as_json:
        _print_json(doc)
    else:
        print_status(doc, stdout)
    return EXIT_OK


@boundary
def unlock(*, inventory: str) -> int:
    """`invoke unlock`: clear a lock left behind by a run that died."""
    cleared = force_unlock(_fleet(inventory).inventory.journal)
    stdout.print(f"cleared: {cleared}" if cleared else "the journal was not locked", markup=False)
    return EXIT_OK


@boundary
def approve(*, inventory: str, wave: int, reason: str) -> int:
    """`invoke approve --wave N --reason`: record who approved a wave, and why."""
    if not (reason or "").strip():
        raise InputError('approve needs --reason "why".')
    fleet = _fleet(inventory)
    inv = fleet.inventory
    if wave not in inv.waves:
        raise InputError(f"--wave {wave}: the inventory has no such wave.")
    with (
        RunLock(inv.journal, f"invoke approve --wave {wave}"),
        Journal.open_dir(inv.journal) as journal,
    ):
        rollout_id, resolution, note = pinned_target(fleet, journal, actor())
        if note:
            stdout.print(note, markup=False)
        journal.record_approval(rollout_id, wave, actor(), reason)
    stdout.print(
        f"wave {wave} of rollout {rollout_id} (→ {resolution.version}) approved by {actor()}",
        markup=False,
    )
    return EXIT_OK


@boundary
def abandon(*, inventory: str, reason: str) -> int:
    """`invoke abandon --reason`: end the active rollout so a new target can start."""
    if not (reason or "").strip():
        raise InputError('abandon needs --reason "why".')
    inv = _fleet(inventory).inventory
    with RunLock(inv.journal, "invoke abandon"), Journal.open_dir(inv.journal) as journal:
        active = journal.active_rollout()
        if active is None:
            stdout.print("no active rollout")
            return EXIT_OK
        journal.abandon_rollout(active.id, actor(), reason)
    stdout.print(
        f"rollout {active.id} (→ {active.target_version}) abandoned: {reason}", markup=False
    )
    return EXIT_OK


@boundary
def verify_all(
    *,
    inventory: str,
    limits: Sequence[str] = (),
    as_json: bool = False,
    report: str | None = None,
) -> int:
    """`invoke verify-all`: is every Deployment what it should be? Exit 5 on drift."""
    fleet = _fleet(inventory)
    inv = fleet.inventory
    try:
        deployments = fleet.select(None, limits)
        files = read_dockerfiles(inv, deployments, fleet.host_for)
        expected = {}
        if (inv.journal / "journal.db").exists():
            with Journal.open_dir(inv.journal) as journal:
                expected = journal.high_water()
        result = check_fleet(fleet.control_plane, inv, deployments, files, expected)
    finally:
        fleet.close()
    if report:
        Path(report).write_text(result.to_markdown(), "utf-8")
    if as_json:
        _print_json(result.to_json())
    else:
        print_drift(result, stdout)
        if report:
            stdout.print(f"report: {report}")
    return result.exit_code


@boundary
def runners(*, inventory: str) -> int:
    """`invoke runners`: every runner reachable, git and astro present, repo paths there."""
    fleet = _fleet(inventory)
    inv = fleet.inventory
    try:
        problems = check_runners(inv, fleet.hosts, astro_bin=fleet.control_plane.config.astro_bin)
    finally:
        fleet.close()
    used = sorted({r.runner for r in inv.repos.values()})
    for name in used:
        runner = inv.runners[name]
        where = (
            "this machine"
            if runner.is_local
            else f"{runner.user or ''}@{runner.host}:{runner.port}"
        )
        count = sum(1 for r in inv.repos.values() if r.runner == name)
        bad = [p for p in problems if p.runner == name]
        mark = "[red]problems[/]" if bad else "[green]ok[/]"
        stdout.print(
            f"{name} ({where}, parallel {runner.parallel}, {count} repos): {mark}", markup=True
        )
    for problem in problems:
        stderr.print(f"  {problem}")
    return EXIT_INPUT if problems else EXIT_OK
