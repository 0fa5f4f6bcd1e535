"""`make bench`: every benchmark in benchmarks/, one after the other, at its default sizes.

Each runs as its own process (the venv's Python, from the repo root) with its output
printed as it comes under a header; a summary follows. The exit status is 1 if any
benchmark failed to run (it could not be started, exited non-zero, or printed a Python
traceback: a crashed worker thread leaves the exit status 0 but the figures wrong), else
0. A benchmark that ran but missed one of its goals still counts as run: it prints the ratio.

Usage: .venv/bin/python benchmarks/run_all.py [NAME ...]   (e.g. plan rollout-ssh; default all)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# (name, script, arguments). rollout.py runs twice: its local mode, then --ssh (the same
# rollout with the repos on SSH runners); both need only their defaults.
BENCHMARKS: list[tuple[str, str, list[str]]] = [
    ("startup", "startup.py", []),
    ("plan", "plan.py", []),
    ("rollout", "rollout.py", []),
    ("rollout-ssh", "rollout.py", ["--ssh"]),
    ("sim_load", "sim_load.py", []),
    ("verify_all", "verify_all.py", []),
    ("ssh_overhead", "ssh_overhead.py", []),
    ("journal", "journal.py", []),
]


def run_one(script: str, args: list[str]) -> tuple[int | None, float, str]:
    """Run one benchmark, its output (stdout and stderr) copied to ours as it comes;
    (exit code, seconds, what went wrong or "")."""
    started = time.perf_counter()
    tracebacks = 0
    try:
        proc = subprocess.Popen([sys.executable, "-u", str(HERE / script), *args], cwd=ROOT,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
    except OSError as exc:
        return None, time.perf_counter() - started, f"could not start: {exc}"
    assert proc.stdout is not None
    with proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            # A worker thread's crash does not change a script's exit status, but its
            # figures are then wrong.
            tracebacks += line.startswith("Traceback (most recent call last)")
    code = proc.returncode
    if code < 0:
        error = f"killed by signal {-code}"
    elif code:
        error = f"exit {code}"
    elif tracebacks:
        error = f"exit 0, but {tracebacks} traceback(s)"
    else:
        error = ""
    return code, time.perf_counter() - started, error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"only these ({', '.join(n for n, _, _ in BENCHMARKS)})")
    chosen = parser.parse_args().names
    known = {name for name, _, _ in BENCHMARKS}
    if unknown := [n for n in chosen if n not in known]:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    selected = [b for b in BENCHMARKS if not chosen or b[0] in chosen]

    results = []
    for name, script, args in selected:
        shown = " ".join([f"benchmarks/{script}", *args])
        print(f"\n{'=' * 20} {name}: {shown} {'=' * 20}", flush=True)
        code, seconds, error = run_one(script, args)
        results.append((name, code, seconds, error))

    print(f"\n{'=' * 20} summary {'=' * 20}")
    for name, _, seconds, error in results:
        print(f"  {name:<14} {'FAILED (' + error + ')' if error else 'ok':<40} {seconds:6.1f} s")
    failed = [name for name, _, _, error in results if error]
    if failed:
        print(f"failed to run: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
