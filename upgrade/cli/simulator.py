"""The local simulator's commands (``sim.start``, ``sim.stop``, ``sim.status``,
``sim.seed``, ``sim.reset``): they read only the inventory's control_plane and never need
the repos to exist (a demo stops the simulator before it creates them)."""

from __future__ import annotations

from pathlib import Path

from upgrade.cli.commands import PROGRAM, consoles, load, open_fleet
from upgrade.cli.flags import FAULTS, INVENTORY, PORT, TIME_SCALE, Args, command
from upgrade.errors import EXIT_OK, ServiceError


@command("sim.start", INVENTORY, PORT, TIME_SCALE, FAULTS)
def sim_start(a: Args) -> int:
    """Start the local Astro control-plane simulator (state dir from the inventory)."""
    from upgrade.run import simulator
    from upgrade.sim import lifecycle

    console = consoles()
    state_dir = simulator.state_dir(load(a, check_repos=False))
    running = lifecycle.status(state_dir)
    if running is not None:
        console.say(f"simulator already running at {running.url} (pid {running.pid})")
        return EXIT_OK
    info = lifecycle.start(state_dir, port=a.port, time_scale=a.time_scale,
                           faults=Path(a.faults) if a.faults else None)
    console.say(f"simulator running at {info.url} (pid {info.pid}, state in {state_dir})")
    return EXIT_OK


@command("sim.stop", INVENTORY)
def sim_stop(a: Args) -> int:
    """Stop the simulator."""
    from upgrade.run import simulator
    from upgrade.sim import lifecycle

    stopped = lifecycle.stop(simulator.state_dir(load(a, check_repos=False)))
    consoles().say("simulator stopped" if stopped else "no simulator was running")
    return EXIT_OK


@command("sim.status", INVENTORY)
def sim_status(a: Args) -> int:
    """Is the simulator running, and where (exit 0 when it is, 7 when not)."""
    from upgrade.run import simulator
    from upgrade.sim import lifecycle

    info = lifecycle.status(simulator.state_dir(load(a, check_repos=False)))
    if info is None:
        raise ServiceError(f"simulator: not running (start it with: {PROGRAM} sim.start)")
    consoles().say(f"simulator: running at {info.url} (pid {info.pid})")
    return EXIT_OK


@command("sim.seed", INVENTORY)
def sim_seed(a: Args) -> int:
    """Create the inventory's Deployments in the simulator at their Dockerfiles' versions."""
    from upgrade.run import simulator

    console = consoles()
    with open_fleet(a) as fleet:
        url, count, skipped = simulator.seed(fleet)
    console.say(f"seeded {count} Deployments into the simulator at {url}")
    for line in skipped:
        console.note(f"skipped {line}")
    return EXIT_OK


@command("sim.reset", INVENTORY)
def sim_reset(a: Args) -> int:
    """Forget every simulated Deployment and fault."""
    from upgrade.run import simulator
    from upgrade.sim import lifecycle

    lifecycle.reset(simulator.url(load(a, check_repos=False)))
    consoles().say("simulator reset")
    return EXIT_OK
