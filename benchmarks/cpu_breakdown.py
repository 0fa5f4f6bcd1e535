"""Where the orchestrator's own CPU goes, by part of a Deployment's work (``rollout.py
--cpu-breakdown``).

Each part below is wrapped, inside the orchestrator, by a timer of the calling thread's CPU
(``time.thread_time``): a thread blocked on a lock, a socket or a child costs its part
nothing, unlike a sampling profiler here (py-spy counts threads blocked in C as busy). The
parts nest: ``WaveRunner._run_item`` (a worker's whole share of one Deployment) holds the
transitions, the deploy command, the render step's git checks, the progress lines; the
status reads run on the verification's look threads. At exit the table (seconds, calls,
ms per call) is written to the file named by $BENCH_BREAKDOWN, with the process's own
user and system CPU for scale.
"""

from __future__ import annotations

import atexit
import importlib
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

PARTS = [
    ("upgrade.run.rollout.wave", "WaveRunner._run_item", "a worker's whole share of one Deployment"),
    ("upgrade.journal.store", "Journal.transition", "journal: one state transition"),
    ("upgrade.controlplane.astro", "AstroCLI.run", "astro deploy: start, wait, read output"),
    ("upgrade.controlplane.platform", "PlatformReader.deployment",
     "Astro status read (httpx), on a look thread"),
    ("upgrade.hosts.git", "status", "git status of a repo (preflight and render)"),
    ("upgrade.report.progress", "LogReporter._line", "one progress line"),
    ("upgrade.run.rollout.wave", "WaveRunner._context", "a step's template context"),
    ("upgrade.run.rollout.wave", "WaveRunner.verify_config", "a Deployment's merged checks"),
    ("upgrade.run.rollout.wave", "WaveRunner._capture_baseline", "import-error baseline"),
    ("upgrade.run.verify.checks", "Run.call", "a look handed to a look thread (waiting side)"),
    ("upgrade.run.rollout.preflight", "decide_wave", "deciding the wave (plan, preflight, gate)"),
    ("upgrade.report.html", "write_report", "the HTML report after the wave"),
]


def _timed(func: Callable[..., Any], key: str, totals: dict[str, list[float]],
           lock: threading.Lock) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return func(*args, **kwargs)
        finally:
            spent = time.thread_time() - started
            with lock:
                entry = totals.setdefault(key, [0, 0.0])
                entry[0] += 1
                entry[1] += spent
    return timed


def install(out: str) -> None:
    """Wrap every part and write the table to ``out`` when the process exits."""
    totals: dict[str, list[float]] = {}
    lock = threading.Lock()
    labels = {}
    for module_name, qualname, label in PARTS:
        owner: Any = importlib.import_module(module_name)
        *path, name = qualname.split(".")
        for attr in path:
            owner = getattr(owner, attr)
        setattr(owner, name, _timed(getattr(owner, name), qualname, totals, lock))
        labels[qualname] = label

    def write() -> None:
        me = resource.getrusage(resource.RUSAGE_SELF)
        lines = [f"  process: {me.ru_utime + me.ru_stime:.2f} s (user {me.ru_utime:.2f}, "
                 f"system {me.ru_stime:.2f})"]
        for key, (calls, spent) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
            lines.append(f"  {spent:7.2f} s {int(calls):6d} calls {1000 * spent / calls:8.3f} "
                         f"ms/call  {key}: {labels[key]}")
        with open(out, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")

    atexit.register(write)
