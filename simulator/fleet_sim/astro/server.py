"""The simulator process: ``python -m upgrade.sim.server --state-dir DIR [--port N]``.

Binds loopback only, re-reads its state from ``DIR/sim.db``, writes
``DIR/server.json`` (url, port, pid) once it is listening, and removes it on a
clean stop (SIGTERM/SIGINT).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from upgrade.errors import InputError, UpgradeError
from upgrade.sim.app import SimApp
from upgrade.sim.catalog import Catalog
from upgrade.sim.faults import load_faults_file
from upgrade.sim.httpserver import serve
from upgrade.sim.state import SimState
from upgrade.sim.store import Store

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


async def run(
    state_dir: Path, host: str, port: int, time_scale: float | None, faults: Path | None
) -> None:
    """Serve until SIGTERM/SIGINT."""
    state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(state_dir / DB_NAME)
    state = SimState(store, Catalog.load())
    if time_scale is not None:
        state.configure({"time_scale": time_scale})
    if faults is not None:
        state.replace_all_faults(load_faults_file(faults))
    server = await serve(SimApp(state), host, port)
    bound = server.sockets[0].getsockname()
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    state.host = f"{shown}:{bound[1]}"
    url = f"http://{state.host}"
    write_info(
        state_dir, {"url": url, "port": bound[1], "pid": os.getpid(), "state_dir": str(state_dir)}
    )
    print(f"astro simulator listening on {url} (state: {state_dir})", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        server.close()
        store.close()
        (state_dir / INFO_NAME).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m upgrade.sim.server", description=__doc__)
    parser.add_argument(
        "--state-dir", type=Path, required=True, help="where sim.db and server.json live"
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument(
        "--time-scale", type=float, default=None, help="multiply every simulated duration"
    )
    parser.add_argument(
        "--faults", type=Path, default=None, help="faults YAML file to install at start"
    )
    args = parser.parse_args(argv)
    try:
        host = check_host(args.host)
        if args.time_scale is not None and args.time_scale <= 0:
            raise InputError("--time-scale: expected a number > 0")
        asyncio.run(run(args.state_dir.resolve(), host, args.port, args.time_scale, args.faults))
    except UpgradeError as exc:
        print(f"astro simulator: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"astro simulator: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
