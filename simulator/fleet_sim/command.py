"""fleet-sim: run and drive the simulators from a shell.

    fleet-sim start [--port 18764] [--time-scale 0.02] [--faults F] [--clock manual]
    fleet-sim seed --file deployments.yaml      # any Deployments, at any versions
    export ASTRO_API_TOKEN="$(fleet-sim token)" # the fake token astro-sim and the APIs accept
    fleet-sim status | reset | stop
    fleet-sim clock [--manual | --wall] [--advance SECONDS]
    fleet-sim forge --token T acme/repo=/path/to/repo.git   # GitHub/GitLab, in the foreground

The Astro simulator's state lives in ``--state-dir`` (default ``.sim``); the commands that
talk to a running one find it there, or take its ``--url``. Exit codes: 0 done, 2 bad
input, 7 no simulator running there, 1 anything else.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from fleet_sim import forge, lifecycle
from fleet_sim.apitoken import make_token
from fleet_sim.astro.seeds import load_seed_file
from fleet_sim.errors import InputError, NotRunning, SimError

DEFAULT_PORT = 18764
FORGE_PORT = 18765


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code."""
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except SimError as exc:
        print(f"fleet-sim: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleet-sim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, run, help: str, where: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(run=run)
        if where:
            sub.add_argument("--state-dir", type=Path, default=Path(".sim"),
                             help="the simulator's state directory (default: .sim)")
        return sub

    start = command("start", _start, "start the Astro simulator in the background")
    start.add_argument("--port", type=int, default=DEFAULT_PORT,
                       help=f"loopback port (default {DEFAULT_PORT}; 0: any free port)")
    start.add_argument("--time-scale", type=float, default=1.0,
                       help="multiply every simulated delay: 0.02 makes a 60 s deploy take "
                            "1.2 s (default 1: real Astro's pace)")
    start.add_argument("--faults", type=Path, help="a faults YAML file (docs/simulator.md)")
    start.add_argument("--clock", choices=("wall", "manual"),
                       help="manual: simulated time moves only with `fleet-sim clock --advance`")
    command("stop", _stop, "stop the Astro simulator")
    command("status", _status, "is the Astro simulator running, and where (exit 7 if not)")
    for name, run, help in (
        ("seed", _seed, "create Deployments from a seed file (or replace those with its ids)"),
        ("reset", _reset, "forget every Deployment and fault"),
        ("clock", _clock, "show the simulated clock, switch its mode or move it forward"),
    ):
        sub = command(name, run, help)
        sub.add_argument("--url", help="the simulator's URL (instead of --state-dir)")
        if name == "seed":
            sub.add_argument("--file", type=Path, required=True,
                             help="YAML: deployments: [{id, name, workspace_id, "
                                  "runtime_version, ...}]")
        if name == "clock":
            mode = sub.add_mutually_exclusive_group()
            mode.add_argument("--manual", dest="mode", action="store_const", const="manual",
                              help="stop the clock: it moves only with --advance")
            mode.add_argument("--wall", dest="mode", action="store_const", const="wall",
                              help="let the clock run with real time again")
            sub.add_argument("--advance", type=float,
                             help="move the clock forward this many simulated seconds")
    token = command("token", _token, "print a fake Astro API token the simulator accepts",
                    where=False)
    token.add_argument("--organization-id", default=lifecycle.DEFAULT_ORGANIZATION)
    token.add_argument("--workspace-id", help="a Workspace token instead of an Organization one")
    fg = command("forge", _forge, "serve the forge simulator (GitHub v3 and GitLab v4 pull "
                 "requests over local bare repositories) until stopped", where=False)
    fg.add_argument("--port", type=int, default=FORGE_PORT,
                    help=f"loopback port (default {FORGE_PORT}; 0: any free port)")
    fg.add_argument("--token", default=os.environ.get("FORGE_SIM_TOKEN", ""),
                    help="the token clients must send (default: $FORGE_SIM_TOKEN)")
    fg.add_argument("--url-file", type=Path, help="write the forge's URL here once it listens")
    fg.add_argument("projects", nargs="*", metavar="OWNER/NAME=BARE_REPO",
                    help="a project and the bare repository that holds it")
    return parser


def _url(args: argparse.Namespace) -> str:
    return args.url or lifecycle.url_of(args.state_dir)


def _start(args: argparse.Namespace) -> int:
    running = lifecycle.status(args.state_dir)
    if running is not None:
        print(f"simulator already running at {running.url} (pid {running.pid})")
        return 0
    info = lifecycle.start(args.state_dir, port=args.port, time_scale=args.time_scale,
                           faults=args.faults, clock=args.clock)
    print(f"simulator running at {info.url} (pid {info.pid}, state in {args.state_dir}, "
          f"time scale {args.time_scale:g})")
    return 0


def _stop(args: argparse.Namespace) -> int:
    print("simulator stopped" if lifecycle.stop(args.state_dir) else "no simulator was running")
    return 0


def _status(args: argparse.Namespace) -> int:
    info = lifecycle.status(args.state_dir)
    if info is None:
        raise NotRunning(f"not running for {args.state_dir} (start it with: fleet-sim start)")
    print(f"simulator running at {info.url} (pid {info.pid})")
    return 0


def _seed(args: argparse.Namespace) -> int:
    deployments = load_seed_file(args.file)
    url = _url(args)
    lifecycle.seed(url, deployments)
    print(f"seeded {len(deployments)} Deployments into the simulator at {url}")
    return 0


def _reset(args: argparse.Namespace) -> int:
    lifecycle.reset(_url(args))
    print("simulator reset")
    return 0


def _clock(args: argparse.Namespace) -> int:
    if args.advance is not None and args.advance < 0:
        raise InputError("--advance: the clock only moves forward")
    shown = lifecycle.clock(_url(args), args.mode, args.advance)
    print(f"clock: {shown['mode']}, now {shown['now']} (time scale {shown['time_scale']:g})")
    return 0


def _token(args: argparse.Namespace) -> int:
    print(make_token(args.organization_id, args.workspace_id))
    return 0


def _forge(args: argparse.Namespace) -> int:
    projects = {}
    for item in args.projects:
        name, eq, bare = item.partition("=")
        if not eq or name.count("/") != 1 or not Path(bare).is_dir():
            raise InputError(f"{item}: expected OWNER/NAME=PATH of a bare repository")
        projects[name] = bare
    forge.serve(args.token, args.port, projects, args.url_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
