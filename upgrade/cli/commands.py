"""The commands: one function each, taking its flags and calling one function that does the work.

Errors are caught here and only here (:func:`run`): an ``UpgradeError`` becomes its
message on stderr and its documented exit code (``upgrade.errors``); anything else is a
bug, reported in one line (the traceback only with ``UPGRADE_DEBUG=1``). A result that
did not succeed (a plan with refusals, a halted wave, drift) is printed first, then its
error decides the exit code.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from upgrade.cli.flags import (
    ACCEPT_FINDINGS,
    ADOPT,
    BRANCH,
    COMMANDS,
    COMMIT,
    DETAILED_EXITCODE,
    DRY_RUN,
    FEED,
    FILE,
    INVENTORY,
    JSON,
    LIMIT,
    MODE,
    NAME,
    OFFLINE,
    OUTPUT,
    PLAYBOOK,
    PUSH,
    REASON,
    REPORT,
    RESOLVE,
    ROLLOUT,
    SKIP_GATE,
    TARGET,
    WAVE,
    Args,
    command,
)
from upgrade.errors import (
    EXIT_CHANGES_PENDING,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_UNEXPECTED,
    InputError,
    UpgradeError,
)

# Only what every command needs is imported above: each command imports the floors it
# uses (rich, fabric/paramiko, httpx, jinja2, the journal) itself, so `astro-fleet --help`
# and the read-only commands start in a fraction of the time a full import takes.

PROGRAM = "astro-fleet"  # how the commands are typed, in messages and the lock's holder


def run(name: str, given: Mapping[str, Any]) -> int:
    """Run command ``name`` with the parser's values; its exit code, errors mapped."""
    import logging

    log = logging.getLogger("upgrade.cli")
    try:
        code = COMMANDS[name].call(given)
    except UpgradeError as exc:
        consoles().error(str(exc))
        code = exc.exit_code
    except KeyboardInterrupt:
        consoles().note("interrupted.")
        code = EXIT_SIGINT
    except Exception as exc:  # a bug: say so plainly, keep the traceback opt-in
        log.debug("unexpected error", exc_info=True)
        if os.environ.get("UPGRADE_DEBUG"):
            import traceback

            traceback.print_exc()
        consoles().error(f"unexpected {type(exc).__name__}: {exc} (run again with "
                         "UPGRADE_DEBUG=1 for the traceback, and report it)")
        code = EXIT_UNEXPECTED
    log.debug("%s: exit %d", name, code)
    return code


def consoles() -> Any:
    """``upgrade.report.console``, imported when first used (rich is slow to import)."""
    from upgrade.report import console

    return console


def _exit_code(result: Any) -> int:
    """The exit code of a printed result: 0, or its error raised for :func:`run` to map."""
    error = result.error()
    if error is not None:
        raise error
    return EXIT_OK


def _now() -> datetime:
    return datetime.now(UTC)


def inventory_path(a: Args) -> Path:
    """The inventory this command reads: --inventory, $ASTRO_FLEET_INVENTORY, ./inventory.yaml."""
    from upgrade.config.inventory_loader import locate_inventory

    return locate_inventory(a.inventory)


def load(a: Args, *, check_repos: bool = True) -> Any:
    """The inventory the flags name, validated (every problem at once)."""
    from upgrade.config.inventory_loader import load_inventory

    return load_inventory(inventory_path(a), check_repos=check_repos)


def open_fleet(a: Args, **options: Any) -> Any:
    """The Session of the inventory the flags name (a context manager)."""
    from upgrade.run.session import Session

    return Session.load(inventory_path(a), **options)


def print_document(name: str, doc: Any) -> None:
    """A ``--json`` document, stamped with its schema (docs/schemas/<name>.schema.json).

    Redacted: a secret that reached a message stays hidden. Plain text, so ``--json``
    does not import rich (the consoles, ``upgrade.report.console``).
    """
    import json

    from upgrade.model.redact import redact
    from upgrade.report.documents import stamp

    sys.stdout.write(redact(json.dumps(stamp(name, doc), indent=2)) + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------------ read-only


@command("catalog", RESOLVE, FEED, MODE, JSON, INVENTORY)
def catalog(a: Args) -> int:
    """Show the Astro Runtime release catalog, newest first, or resolve one spec.

    The feed comes from --feed, else from the inventory's ``catalog:`` (when there is an
    inventory file), else the bundled snapshot is used alone.
    """
    from upgrade.model.catalog import load_catalog

    console = consoles()
    feed, mode, base_dir = a.feed, a.mode, None
    path = None
    if feed is None:
        with contextlib.suppress(InputError):  # no inventory: the bundled catalog alone
            path = inventory_path(a)
    if path is not None:
        inv = load(a, check_repos=False)
        feed, mode, base_dir = inv.catalog.feed, mode or inv.catalog.mode, inv.root
    if mode not in (None, "extend", "replace"):
        raise InputError(f"--mode must be extend or replace, got '{mode}'.")
    cat = load_catalog(feed, mode=mode or "extend", base_dir=base_dir)  # type: ignore[arg-type]
    day = _now().date()
    if a.resolve is not None:
        resolution = cat.resolve(a.resolve, source="--resolve")
        if a.json:
            doc = {"spec": str(resolution.spec), "warnings": list(resolution.warnings)}
            doc.update(resolution.release.to_json(day))
            print_document("catalog-resolve", doc)
        else:
            console.say(f"{resolution.spec} → {resolution.version}", style="bold")
            console.say(f"image: {resolution.release.image()}")
            for warning in resolution.warnings:
                console.warn(warning)
        return EXIT_OK
    if a.json:
        print_document("catalog", {"sources": list(cat.sources),
                                   "releases": [r.to_json(day) for r in cat]})
    else:
        from upgrade.report.tables import catalog_table

        console.stdout.print(catalog_table(cat, day))
    return EXIT_OK


@command("inventory", NAME, INVENTORY, JSON)
def inventory(a: Args) -> int:
    """Show the fleet by wave, or the merged view of one Deployment."""
    console = consoles()
    inv = load(a)
    if a.name:
        view = inv.merged_view(a.name)
        if a.json:
            print_document("inventory-deployment", view)
        else:
            console.stdout.print_json(data=view, default=str)
    elif a.json:
        print_document("inventory", {"inventory": str(inv.path), "deployments": [
            inv.merged_view(d.name) for d in inv.deployments]})
    else:
        from upgrade.report.tables import inventory_table

        console.stdout.print(inventory_table(inv))
    return EXIT_OK


@command("plan", INVENTORY, TARGET, WAVE, LIMIT, JSON, OFFLINE, ADOPT, FEED, DETAILED_EXITCODE)
def plan(a: Args) -> int:
    """Show what an upgrade would change, per Deployment, with diffs. Changes nothing.

    It follows the active rollout's pins, and with --wave shows what the gate would say.
    With --detailed-exitcode (as Terraform's): 0 nothing to do, 8 changes pending and
    nothing refused, 3 some Deployment refused, 2 invalid input.
    """
    from upgrade.run.rollout import preflight

    with open_fleet(a, target=a.target, feed=a.feed) as fleet:
        result, note = preflight.plan_fleet(fleet, a.wave, a.limit, offline=a.offline,
                                          adopt=a.adopt)
    if note:
        consoles().note(note)
    if a.json:
        print_document("plan", result.to_json())
    else:
        from upgrade.report.plan import local_mode_warning, print_plan

        print_plan(result, consoles().stdout)
        warning = local_mode_warning(result, fleet.inventory)
        if warning:
            consoles().note(warning)
    code = _exit_code(result)
    if a.detailed_exitcode and result.pending():
        return EXIT_CHANGES_PENDING
    return code


@command("status", INVENTORY, JSON)
def status(a: Args) -> int:
    """Show every rollout in the journal: pins, waves, their state, soak time left."""
    from upgrade.journal.configured import existing_journal, live_holder

    console = consoles()
    inv = load(a, check_repos=False)
    journal = existing_journal(inv.journal)
    if journal is None:
        if a.json:
            print_document("status", {"journal": inv.journal.where, "rollouts": []})
        else:
            console.say(f"no journal yet ({inv.journal.where}): nothing has been rolled out")
        return EXIT_OK
    from upgrade.report.status import print_status, rollout_status

    with journal:
        doc = rollout_status(journal, _now(), live_holder(inv.journal, journal))
    if a.json:
        print_document("status", {"journal": inv.journal.where, **doc})
    else:
        print_status(doc, console.stdout)
    return EXIT_OK


@command("verify-all", INVENTORY, LIMIT, JSON, REPORT)
def verify_all(a: Args) -> int:
    """Check the whole fleet: deployed vs Dockerfile vs journal, health, import errors."""
    from upgrade.report.drift import drift_markdown, print_report
    from upgrade.run.verify import drift

    console = consoles()
    with open_fleet(a) as fleet:
        result = drift.verify_all(fleet, a.limit)
    if a.report:
        Path(a.report).write_text(drift_markdown(result), "utf-8")
    if a.json:
        print_document("verify-all", result.to_json())
    else:
        print_report(result, console.stdout)
        if a.report:
            console.say(f"report: {a.report}")
    return _exit_code(result)


@command("report", ROLLOUT,
         OUTPUT.saying("Write the HTML report here (default: rollout-N.html beside the wave "
                       "reports, in the journal's reports directory)."),
         OFFLINE.saying("Do not ask Astro what each Deployment runs now (versions from the "
                        "journal only)."),
         INVENTORY)
def report(a: Args) -> int:
    """Write a rollout's HTML report: timeline, fleet version matrix, summary. Changes nothing.

    One self-contained file (no script, no network) to attach to a change ticket or keep
    as a CI artifact; also written after every wave.
    """
    from upgrade.report.html import write_report
    from upgrade.run.services.deployed import deployed_versions

    with open_fleet(a) as fleet:
        observed, note = ({}, "") if a.offline else deployed_versions(fleet)
        view = write_report(fleet.inventory, fleet.catalog, a.rollout,
                            Path(a.output) if a.output else None,
                            program=PROGRAM, observed=observed, observed_note=note)
    console = consoles()
    if not (a.offline or observed):
        console.warn(f"the version matrix is the journal's: {note}")
    console.say(f"report: {view.path}")
    return EXIT_OK


@command("runners", INVENTORY)
def runners(a: Args) -> int:
    """Check every runner: reachable, git and astro present, repo paths exist (all at once)."""
    from upgrade.hosts.pool import check_runners
    from upgrade.report.tables import runner_lines

    console = consoles()
    with open_fleet(a) as fleet:
        problems = check_runners(fleet.inventory, fleet.hosts,
                                 astro_bin=fleet.control_plane.config.astro_bin)
        for line in runner_lines(fleet.inventory, problems):
            console.stdout.print(line)
    for problem in problems:
        console.note(f"  {problem}")
    if problems:
        raise InputError(f"{len(problems)} runner problem(s), listed above.")
    return EXIT_OK


# ------------------------------------------------------------------------ changes


@command("render", INVENTORY, TARGET, WAVE, LIMIT, COMMIT, PUSH, BRANCH, OFFLINE, ADOPT)
def render(a: Args) -> int:
    """Write the planned Dockerfile changes into the repos (for CI that deploys on merge)."""
    from upgrade.run.services.render import DEFAULT_BRANCH, RenderOptions
    from upgrade.run.services.render import render as write_render

    console = consoles()
    options = RenderOptions(commit=a.commit or a.push, push=a.push,
                            branch=a.branch or DEFAULT_BRANCH)
    with open_fleet(a, target=a.target) as fleet:
        result = fleet.plan(fleet.select(a.wave, a.limit), offline=a.offline, adopt=a.adopt)
        for p in result.deployments:
            if p.action in ("refuse", "blocked"):
                console.note(f"{p.action}: {p.deployment.name}: {p.reason}")
        done = write_render(fleet.inventory, result, fleet.host_for, options,
                            fleet.planned(result))
    for repo, outcome in done.outcomes.items():
        extra = f" {done.commits[repo][:12]}" if repo in done.commits else ""
        pushed = " (pushed)" if repo in done.pushed else ""
        console.say(f"{repo}: {outcome}{extra}{pushed}")
        if repo in done.switched:
            console.say(f"{repo}: {done.switched[repo]}")
    if not done.outcomes:
        console.say("Nothing to render: every selected repo is already at the target.")
    return _exit_code(result)


@command("upgrade", WAVE.needed("The wave to run."), INVENTORY, LIMIT, TARGET, PLAYBOOK, JSON,
         DRY_RUN, SKIP_GATE, REASON, ACCEPT_FINDINGS)
def upgrade(a: Args) -> int:
    """Upgrade one wave: render, commit, test, deploy, verify; resumable, recorded."""
    from upgrade.config.playbook_loader import load_playbook
    from upgrade.journal.records import actor
    from upgrade.report.progress import LiveReporter, LogReporter
    from upgrade.report.recap import print_recap, write_wave_markdown
    from upgrade.run.rollout import rollout
    from upgrade.run.rollout.preflight import WaveRequest

    console = consoles()
    if a.skip_gate and not (a.reason or "").strip():
        raise InputError('--skip-gate needs --reason "why": it is recorded and shown in reports.')
    resume = _command_line(a.wave, a.limit)
    with open_fleet(a, target=a.target) as fleet:
        inv = fleet.inventory
        book = load_playbook(Path(a.playbook) if a.playbook else inv.playbook.path)
        if not a.playbook and inv.playbook.packaged:
            console.note(f"playbook: the packaged default ({inv.playbook.path.name}); set "
                         "'playbook:' in the inventory to use your own.")
        for warning in book.warnings:
            console.warn(warning)
        request = WaveRequest(a.wave, tuple(a.limit), actor(),
                              skip_gate_reason=a.reason if a.skip_gate else None,
                              accept_findings=a.accept_migration_findings)
        if a.dry_run:
            return _dry_run(rollout.dry_run(fleet, book, request), book, a.json)
        stop = threading.Event()
        live = console.stderr.is_terminal and not a.json
        reporter = LiveReporter(console.stderr) if live else LogReporter(console.stderr)
        with _stop_on_interrupt(stop, reporter, resume):
            result = rollout.upgrade_wave(fleet, book, request, reporter, stop,
                                          command=resume)
        report_path = write_wave_markdown(inv.journal.reports, result)
        html = _html_report(fleet, result.rollout_id)
    if a.json:
        print_document("upgrade", result.to_json())
    else:
        print_recap(result, console.stdout)
        console.say(f"report: {report_path}")
        if html is not None:
            console.say(f"HTML report: {html}")
    if result.status != "passed" and result.resumable:
        console.note(f"resume with: {result.resume or resume}")
    return _exit_code(result)


def _html_report(fleet: Any, rollout_id: int) -> Path | None:
    """The rollout's HTML report, rewritten after a wave; a failure to write it is a
    warning, never the wave's exit code (the journal has everything: `report` rewrites it)."""
    from upgrade.report.html import write_report

    try:
        return write_report(fleet.inventory, fleet.catalog, rollout_id, None,
                            program=PROGRAM).path
    except Exception as exc:
        import logging

        logging.getLogger("upgrade.cli").debug("HTML report", exc_info=True)
        consoles().warn(f"the HTML report could not be written ({type(exc).__name__}: {exc}); "
                        f"write it with: {PROGRAM} report --rollout {rollout_id}")
        return None


def _dry_run(result: Any, book: Any, as_json: bool) -> int:
    console = consoles()
    if as_json:
        doc = result.to_json()
        doc["steps"] = [{"name": s.name, "kind": s.kind, "scope": s.scope} for s in book.steps]
        print_document("plan", doc)
        return _exit_code(result)
    from upgrade.report.plan import print_plan

    print_plan(result, console.stdout)
    console.say(f"\nWould run playbook {book.path.name} ('{book.name}') for each upgrading "
                "Deployment (dry run: nothing was changed):")
    for step in book.steps:
        when = f" when {step.when}" if step.when else ""
        console.say(f"  {step.index + 1}. {step.name} [{step.kind}, once per {step.scope}]{when}")
    return _exit_code(result)


def _command_line(wave: int, limits: Sequence[str]) -> str:
    return f"{PROGRAM} upgrade --wave {wave}" + "".join(
        f" --limit {shlex.quote(x)}" for x in limits)


@contextlib.contextmanager
def _stop_on_interrupt(stop: threading.Event, reporter: Any, resume: str) -> Iterator[None]:
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
        reporter.note(
            "interrupted: no new Deployment starts; in-flight steps finish "
            "(Ctrl-C again to exit at once)"
        )

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@command("approve", WAVE.needed("The wave to approve."),
         REASON.needed("Why (recorded with your name)."), INVENTORY)
def approve(a: Args) -> int:
    """Approve a wave that requires approval; records who and why in the journal."""
    from upgrade.journal.records import actor
    from upgrade.run.rollout import rollout

    console = consoles()
    with open_fleet(a) as fleet:
        rollout_id, pins, note = rollout.approve(
            fleet, a.wave, actor(), a.reason, command=f"{PROGRAM} approve --wave {a.wave}")
    if note:
        console.say(note)
    console.say(f"wave {a.wave} of rollout {rollout_id} ({pins.describe()}) approved by "
                f"{actor()}")
    return EXIT_OK


@command("abandon", REASON.needed("Why (recorded with your name)."), INVENTORY)
def abandon(a: Args) -> int:
    """Abandon the active rollout (so a different target can start a new one)."""
    from upgrade.journal.records import actor
    from upgrade.run.rollout import rollout

    console = consoles()
    with open_fleet(a) as fleet:
        ended = rollout.abandon(fleet, actor(), a.reason, command=f"{PROGRAM} abandon")
    if ended is None:
        console.say("no active rollout")
    else:
        console.say(f"rollout {ended.id} (→ {ended.target_version}) abandoned: {a.reason}")
    return EXIT_OK


@command("unlock", INVENTORY)
def unlock(a: Args) -> int:
    """Clear the journal lock left by a run that died (refused while a live run holds it)."""
    from upgrade.journal.configured import unlock as clear_lock

    cleared = clear_lock(load(a, check_repos=False).journal)
    consoles().say(f"cleared: {cleared}" if cleared else "the journal was not locked")
    return EXIT_OK


# ------------------------------------------------------------------------ journal


@command("journal.export", FILE.needed("Where to write the journal (JSON lines; replaced)."),
         INVENTORY)
def journal_export(a: Args) -> int:
    """Write the whole journal to a JSON-lines file, e.g. to move it to PostgreSQL."""
    from upgrade.journal.transfer import export_journal

    done = export_journal(load(a, check_repos=False).journal, Path(a.file))
    consoles().say(f"exported {done.summary()} from {done.journal} to {done.file}")
    return EXIT_OK


@command("journal.import", FILE.needed("A file written by journal.export."), INVENTORY)
def journal_import(a: Args) -> int:
    """Load a journal export into this inventory's journal, which must be empty."""
    from upgrade.journal.transfer import import_journal

    done = import_journal(load(a, check_repos=False).journal, Path(a.file),
                          command=f"{PROGRAM} journal.import")
    consoles().say(f"imported {done.summary()} from {done.file} into {done.journal}")
    return EXIT_OK
