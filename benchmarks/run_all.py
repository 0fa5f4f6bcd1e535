"""`make bench`: every benchmark in benchmarks/, one after the other, at its default sizes.

Each runs as its own process (the venv's Python, from the repo root) with its output
printed as it comes under a header; a summary follows. The exit status is 1 if any
benchmark failed to run (it could not be started, exited non-zero, or printed a Python
traceback: a crashed worker thread leaves the exit status 0 but the figures wrong), else
0. A benchmark that ran but missed one of its goals still counts as run: it prints the ratio.

Everything printed is also written to benchmarks/results.md (``--results``): the machine
(CPU model and count, memory, load average before and after, Python, the commit), then each
benchmark's output and the summary. Bytecode is compiled first, so that no process of any
benchmark pays for compiling (``PYTHONDONTWRITEBYTECODE`` may be set).

Usage: .venv/bin/python benchmarks/run_all.py [NAME ...]   (e.g. plan rollout-ssh; default all)
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# (name, script, arguments). rollout.py runs twice: its local mode as the scaling curve
# (its peers at 100 and 1,000 Deployments), then --ssh (the same rollout with the repos on
# SSH runners). The sizes keep the whole under ~15 minutes on 2 quiet cores.
BENCHMARKS: list[tuple[str, str, list[str]]] = [
    ("startup", "startup.py", []),
    ("plan", "plan.py", []),
    ("dockerfile", "dockerfile.py", []),
    ("rollout", "rollout.py", ["--sizes", "100,1000,5000"]),
    ("peer_ansible", "peer_ansible.py", []),
    ("rollout-ssh", "rollout.py", ["--ssh"]),
    ("verify_all", "verify_all.py", []),
    ("ssh_overhead", "ssh_overhead.py", []),
    ("journal", "journal.py", []),
    ("url_fleet", "url_fleet.py", []),
]
RESULTS = HERE / "results.md"


def machine() -> list[str]:
    """What the figures were measured on, as Markdown list items."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    except OSError:
        memory = "unknown"
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    return [f"- CPU: {os.cpu_count()} x {model}; memory {memory}",
            f"- Python {platform.python_version()} on {platform.platform()}",
            f"- commit {commit or 'unknown'}; started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
            f"- load average before: {_load()}"]


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3]) + " (1, 5, 15 min)"
    except OSError:
        return "unknown"


def run_one(script: str, args: list[str], out: list[str]) -> tuple[int | None, float, str]:
    """Run one benchmark, its output (stdout and stderr) copied to ours as it comes and to
    ``out``; (exit code, seconds, what went wrong or "")."""
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
            out.append(line.rstrip("\n"))
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
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="where to write the Markdown results (default benchmarks/results.md)")
    options = parser.parse_args()
    chosen = options.names
    known = {name for name, _, _ in BENCHMARKS}
    if unknown := [n for n in chosen if n not in known]:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    selected = [b for b in BENCHMARKS if not chosen or b[0] in chosen]

    compileall.compile_dir(ROOT / "upgrade", quiet=1)
    report = ["# Benchmark results (`make bench`)", "", *machine(), "",
              "Every ratio compares figures of the same run; a shared machine slows all of "
              "them, so compare across runs only on a quiet one.", ""]
    results = []
    for name, script, args in selected:
        shown = " ".join([f"benchmarks/{script}", *args])
        print(f"\n{'=' * 20} {name}: {shown} {'=' * 20}", flush=True)
        out: list[str] = []
        code, seconds, error = run_one(script, args, out)
        results.append((name, code, seconds, error))
        report += [f"## {name}: `{shown}`", "", "```", *out, "```", ""]

    summary = [f"  {name:<14} {'FAILED (' + error + ')' if error else 'ok':<40} {seconds:6.1f} s"
               for name, _, seconds, error in results]
    print(f"\n{'=' * 20} summary {'=' * 20}")
    print("\n".join(summary))
    failed = [name for name, _, _, error in results if error]
    if failed:
        print(f"failed to run: {', '.join(failed)}")
    report += ["## Summary", "", "```", *summary, "```", "",
               f"- load average after: {_load()}", ""]
    options.results.write_text("\n".join(report), "utf-8")
    print(f"written: {options.results}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
