"""``analyze``: the soak's analyses of the active rollout, measured, restarted or accepted."""

from __future__ import annotations

from upgrade.cli.commands import PROGRAM, consoles, open_fleet
from upgrade.cli.flags import ACCEPT, INVENTORY, REASON, RETRY, WATCH, WAVE, Args, command
from upgrade.errors import EXIT_HALTED, EXIT_OK, InputError


@command("analyze", WAVE, RETRY, ACCEPT, REASON, WATCH, INVENTORY)
def analyze(a: Args) -> int:
    """Measure the soak analyses (DAG runs after the deploy vs before); --retry, --accept.

    Exit 0 when none keeps the next wave's gate closed for a failure, 4 when one failed
    (or is inconclusive where the wave's settings say that blocks)."""
    from upgrade.journal.records import actor
    from upgrade.report.analysis import analysis_rows, print_analyses
    from upgrade.run.services.analyze import analyze as run

    console = consoles()
    if a.retry and a.accept:
        raise InputError("give --retry (start again after a fix) or --accept (go on as it "
                         "is), not both.")
    if (a.retry or a.accept) and not (a.reason or "").strip():
        which = "--retry" if a.retry else "--accept"
        raise InputError(f'{which} needs --reason "why": it is recorded and shown in reports.')
    wave = f" --wave {a.wave}" if a.wave is not None else ""
    with open_fleet(a) as fleet:
        done = run(fleet, a.wave, actor=actor(), command=f"{PROGRAM} analyze{wave}",
                   retry=a.reason if a.retry else None,
                   accept=a.reason if a.accept else None, watch=a.watch)
    for name in done.retried:
        console.say(f"{name}: analysis restarted from now")
    for name in done.accepted:
        console.say(f"{name}: analysis accepted")
    print_analyses(analysis_rows(done.measurements), console.stdout)
    failed = [m for m in done.blocking if m.status != "running"]
    return EXIT_HALTED if failed else EXIT_OK
