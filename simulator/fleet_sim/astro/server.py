"""The Astro simulator's server process: ``python -m fleet_sim.astro.server --state-dir DIR``.

Binds loopback only, re-reads its state from ``DIR/sim.db``, writes ``DIR/server.json``
(url, port, pid) once it is listening, and removes it on a clean stop (SIGTERM/SIGINT).
``fleet-sim start`` runs it in the background; this is the foreground form.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from fleet_sim.astro.app import SimApp
from fleet_sim.astro.catalog import Catalog
from fleet_sim.astro.faults import load_faults_file
from fleet_sim.astro.httpserver import SimHTTPServer
from fleet_sim.astro.state import SimState
from fleet_sim.astro.store import Store
from fleet_sim.errors import InputError, SimError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
DB_NAME = "sim.db"
INFO_NAME = "server.json"


def check_host(host: str) -> str:
    """Refuse anything but a loopback address: the simulator is never exposed."""
    if host not in LOOPBACK_HOSTS:
        raise InputError(
            f"--host {host}: the Astro simulator binds loopback only; "
            f"use one of {', '.join(LOOPBACK_HOSTS)}"
        )
    return host


def write_info(state_dir: Path, info: dict) -> None:
    """Atomically write server.json (readers never see half a file)."""
    tmp = state_dir / (INFO_NAME + ".tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, state_dir / INFO_NAME)


def serve(state_dir: Path, host: str, port: int, time_scale: float | None,
          faults: Path | None, clock: str | None = None) -> None:
    """Serve until SIGTERM/SIGINT."""
    state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(state_dir / DB_NAME)
    state = SimState(store, Catalog.load())
    if time_scale is not None:
        state.configure({"time_scale": time_scale})
    if faults is not None:
        state.replace_all_faults(load_faults_file(faults))
    if clock is not None:
        state.set_clock(clock)
    server = SimHTTPServer(SimApp(state), host, port)
    bound_host, bound_port = server.server_address[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    state.host = f"{shown}:{bound_port}"
    url = f"http://{state.host}"
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # Polled every 50 ms for shutdown(), so a stop is prompt (the default polls every 0.5 s).
    worker = threading.Thread(target=server.serve_forever, args=(0.05,), name="astro-sim-http",
                              daemon=True)
    worker.start()
    write_info(state_dir, {"url": url, "port": bound_port, "pid": os.getpid(),
                           "state_dir": str(state_dir)})
    print(f"astro simulator listening on {url} (state: {state_dir})", file=sys.stderr,
          flush=True)
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        with server.lock:  # no request is half-way through the state
            store.close()
        (state_dir / INFO_NAME).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m fleet_sim.astro.server",
                                     description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True,
                        help="where sim.db and server.json live")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--time-scale", type=float, default=None,
                        help="multiply every simulated duration")
    parser.add_argument("--faults", type=Path, default=None,
                        help="faults YAML file to install at start")
    parser.add_argument("--clock", choices=("wall", "manual"), default=None,
                        help="manual: time moves only when told to (POST /_sim/clock)")
    args = parser.parse_args(argv)
    try:
        host = check_host(args.host)
        if args.time_scale is not None and args.time_scale <= 0:
            raise InputError("--time-scale: expected a number > 0")
        serve(args.state_dir.resolve(), host, args.port, args.time_scale, args.faults,
              args.clock)
    except SimError as exc:
        print(f"astro simulator: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"astro simulator: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
