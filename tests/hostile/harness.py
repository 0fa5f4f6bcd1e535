"""Run one hostile input through what the commands run, in-process, and judge the outcome.

``plan_offline`` is ``astro-fleet plan --offline`` without the process: the inventory
loader, the planner (Dockerfiles read from disk, targets resolved in the catalog), the
plan's text rendering and the plan's error, with errors mapped to exit codes as
``upgrade.cli.commands.run`` maps them. The only difference is that the catalog is loaded
once per test session (it is the same bundled snapshot every time), so a thousand cases
fit in seconds. A small sample is also run as the real command (``astro-fleet``) to show
that both agree.

Every case is bounded: ``bounded`` measures its wall time and how far it raised the
process's peak resident set (``MemoryBaseline``), and ``check`` asserts both stay under the
limits. (The few hand-written cases also trace their Python allocations: tracemalloc.)
"""

from __future__ import annotations

import io
import os
import re
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from upgrade.errors import EXIT_UNEXPECTED, UpgradeError
from upgrade.model.catalog import Catalog

CASE_BYTES = 200 * 1024 * 1024  # what a case may add to the peak resident set
LOCATED = re.compile(r"[^\s:]+:\d+: ")  # file:line: at the start of a message or a line


@dataclass
class Outcome:
    """What one case ended with: the exit code and everything it printed."""

    code: int
    text: str
    seconds: float = 0.0
    peak: int = 0
    error: BaseException | None = None
    located: list[str] = field(default_factory=list)  # the messages that must carry file:line
    refusals: list[str] = field(default_factory=list)  # every refused Deployment's reason


def plan_offline(inventory: Path, catalog: Catalog) -> Outcome:
    """``astro-fleet plan --offline --inventory <inventory>``, in-process."""
    from upgrade.config.inventory_loader import load_inventory
    from upgrade.errors import ProblemsError
    from upgrade.report.plan import print_plan
    from upgrade.run.rollout import preflight
    from upgrade.run.session import Session

    out = io.StringIO()
    console = Console(file=out, highlight=False, markup=False, emoji=False, width=160)
    located: list[str] = []
    try:
        fleet = Session(load_inventory(inventory))
        fleet.__dict__["catalog"] = catalog  # the cached property, filled as the command would
        with fleet:
            plan, _ = preflight.plan_fleet(fleet, None, [], offline=True)
        print_plan(plan, console)
        # A refusal about a Dockerfile (input) names the file and line where it is.
        located += [p.reason for p in plan.deployments
                    if p.action in ("refuse", "blocked") and p.refusal == "input"]
        refusals = [p.reason for p in plan.deployments if p.action in ("refuse", "blocked")]
        error = plan.error()
        if error is not None:
            return Outcome(error.exit_code, out.getvalue() + str(error), error=error,
                           located=located, refusals=refusals)
        return Outcome(0, out.getvalue(), located=located)
    except UpgradeError as exc:
        if isinstance(exc, ProblemsError):
            located += [str(p) for p in exc.problems if p.line is not None or
                        "file not found" not in p.message]
        return Outcome(exc.exit_code, out.getvalue() + str(exc), error=exc, located=located)
    except Exception as exc:  # what the command would report as exit 1
        return Outcome(EXIT_UNEXPECTED, f"{type(exc).__name__}: {exc}", error=exc)


def _max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _status_kb(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(text.split(f"{field}:", 1)[1].split()[0]) * 1024


def _reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS; False where Linux cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class MemoryBaseline:
    """What a case may add to the process's resident set is bounded.

    Where Linux can reset the peak (``/proc/self/clear_refs``), each case is measured on its
    own: its peak RSS over the RSS it started with. What hypothesis allocates to generate
    the next input (once over 2 GB, for a case it then discarded) is not the product's,
    and peak RSS only rises, so without the reset it was counted against the next case
    planned. Elsewhere: the growth of the process's peak since the baseline was taken.
    """

    def __init__(self) -> None:
        self.start = _max_rss()
        self.per_case = _reset_peak()

    def begin(self) -> None:
        """Called right before a case runs."""
        if self.per_case:
            _reset_peak()
            self.start = _status_kb("VmRSS")

    def grown(self) -> int:
        if self.per_case:
            return _status_kb("VmHWM") - self.start
        return _max_rss() - self.start


def bounded(case: Callable[[], Outcome], baseline: MemoryBaseline) -> Outcome:
    """Run ``case`` measuring its time and the peak RSS it added (see MemoryBaseline)."""
    baseline.begin()
    start = time.perf_counter()
    outcome = case()
    outcome.seconds = time.perf_counter() - start
    outcome.peak = baseline.grown()
    return outcome


class Tally:
    """Outcomes counted per exit code, printed at the end of a generated test."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.codes: Counter[int] = Counter()
        self.slowest = 0.0
        self.peak = 0

    def add(self, outcome: Outcome) -> None:
        self.codes[outcome.code] += 1
        self.slowest = max(self.slowest, outcome.seconds)
        self.peak = max(self.peak, outcome.peak)

    @property
    def total(self) -> int:
        return sum(self.codes.values())

    def report(self) -> str:
        codes = ", ".join(f"exit {c}: {n}" for c, n in sorted(self.codes.items()))
        return (f"{self.name}: {self.total} cases ({codes}); slowest {self.slowest:.3f} s, "
                f"peak {self.peak / 1e6:.1f} MB")


def check(outcome: Outcome, what: str) -> None:
    """The rules every hostile input obeys: exit 0, 2 or 3; bounded memory; located. (Time
    is reported, not asserted: the suite shares the machine; a hang meets pytest's time-out.)"""
    assert outcome.code in (0, 2, 3), f"{what}: exit {outcome.code}: {outcome.text[-2000:]}"
    assert outcome.peak < CASE_BYTES, f"{what}: peak {outcome.peak / 1e6:.0f} MB"
    for message in outcome.located:
        assert LOCATED.match(message), f"{what}: no file:line in: {message[:500]}"
    assert "Traceback" not in outcome.text, what


@dataclass
class Run:
    """One real command: its exit code, output, wall time and peak resident memory."""

    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss: int  # bytes: the command's own VmHWM, read as it exits


# The astro-fleet console script, plus its own peak resident set (VmHWM, per process image,
# so the fork it was started from does not count) written to $HOSTILE_PEAK at exit.
_COMMAND = """
import atexit, os, sys
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(os.environ["HOSTILE_PEAK"], "w").write(line.split()[1])
atexit.register(peak)
from upgrade.cli.program import main
sys.argv[0] = "astro-fleet"
sys.exit(main())
"""


def run_command(args: list[str], cwd: Path, *, timeout: float = 60,
                address_space: int = 2 * 1024**3) -> Run:
    """``astro-fleet *args`` in ``cwd``, its address space capped (a runaway allocation
    fails instead of taking the machine); its exit code, output, time and peak RSS."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    peak_file = cwd / ".hostile-peak"
    peak_file.unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _COMMAND, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=cap,
                          env={**os.environ, "COLUMNS": "200", "HOSTILE_PEAK": str(peak_file)})
    seconds = time.perf_counter() - start
    peak = int(peak_file.read_text()) * 1024 if peak_file.exists() else 0
    return Run(done.returncode, done.stdout, done.stderr, seconds, peak)
