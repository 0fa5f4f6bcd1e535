"""Invoke tasks: parse flags, call one function of `upgrade`, exit with its code.

Exit codes (README): 0 done or nothing to do, 1 unexpected error, 2 invalid input,
3 refused by policy, 4 a wave halted, 5 drift found, 6 another run holds the lock.
"""

from __future__ import annotations

from invoke import Collection, Exit, task

from upgrade.cli import commands as cli


def _exit(code: int) -> None:
    if code:
        raise Exit(code=code)


@task(
    help={
        "resolve": "Resolve a spec (12.4, 12, 3.1, latest or an exact version) to one release.",
        "feed": "Astronomer runtime feed JSON (file path or http(s) URL) to apply.",
        "mode": "How the feed applies to the bundled snapshot: extend (default) or replace.",
        "json": "Print JSON instead of a table (for runbooks).",
        "inventory": "Use this inventory's catalog settings when present (default inventory.yaml).",
    }
)
def catalog(c, resolve=None, feed=None, mode=None, json=False, inventory="inventory.yaml"):
    """Show the Astro Runtime release catalog, newest first, or resolve one spec."""
    _exit(cli.catalog(feed=feed, mode=mode, resolve=resolve, as_json=json, inventory=inventory))


INVENTORY = "inventory.yaml"
SELECTION_HELP = {
    "inventory": f"The inventory file (default {INVENTORY}).",
    "target": "Override the inventory's target: 12.4, 12, 3.1, latest or an exact version.",
    "wave": "Only this wave's Deployments.",
    "limit": "Names, groups, repos or globs; '!x' excludes, '&x' intersects (repeatable).",
    "offline": "Do not ask Astro what is deployed (facts from Dockerfiles only).",
    "adopt": "Overwrite template-managed Dockerfiles that were edited by hand.",
}


@task(
    iterable=["limit"],
    help={**SELECTION_HELP, "json": "Print the documented JSON schema (see README)."},
)
def plan(
    c,
    inventory=INVENTORY,
    target=None,
    wave=None,
    limit=None,
    json=False,
    offline=False,
    adopt=False,
    feed=None,
):
    """Show what an upgrade would change, per Deployment, with diffs. Changes nothing."""
    _exit(
        cli.plan(
            inventory=inventory,
            target=target,
            wave=_int(wave),
            limits=limit or (),
            as_json=json,
            offline=offline,
            adopt=adopt,
            feed=feed,
        )
    )


@task(
    iterable=["limit"],
    help={
        **SELECTION_HELP,
        "commit": "Commit on a branch (one commit per repo naming from → to).",
        "push": "Also push the branch to the repo's 'origin' (implies --commit).",
        "branch": "Branch name; '{version}' is replaced (default runtime-upgrade/{version}).",
    },
)
def render(
    c,
    inventory=INVENTORY,
    target=None,
    wave=None,
    limit=None,
    commit=False,
    push=False,
    branch=None,
    offline=False,
    adopt=False,
):
    """Write the planned Dockerfile changes into the repos (for CI that deploys on merge)."""
    _exit(
        cli.render(
            inventory=inventory,
            target=target,
            wave=_int(wave),
            limits=limit or (),
            commit=commit,
            push=push,
            branch=branch,
            offline=offline,
            adopt=adopt,
        )
    )


@task(
    name="inventory",
    help={
        "name": "A Deployment name or id: print its merged variables and where each came from.",
        "inventory": f"The inventory file (default {INVENTORY}).",
        "json": "Print JSON.",
    },
)
def inventory_(c, name=None, inventory=INVENTORY, json=False):
    """Show the fleet by wave, or the merged view of one Deployment."""
    _exit(cli.show_inventory(inventory=inventory, name=name, as_json=json))


def _int(value):
    """Invoke hands flags over as strings; a bad number is an input error (exit 2)."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise Exit(f"error: --wave must be a whole number, got '{value}'.", code=2) from None


@task(
    help={
        "inventory": f"The inventory file (default {INVENTORY}).",
        "port": "TCP port on 127.0.0.1 (default: any free port).",
        "time_scale": "Multiply every simulated delay (0.02 makes a 60 s deploy 1.2 s).",
        "faults": "A faults YAML file (docs/simulator.md).",
    }
)
def sim_start(c, inventory=INVENTORY, port=0, time_scale=1.0, faults=None):
    """Start the local Astro control-plane simulator (state dir from the inventory)."""
    _exit(
        cli.sim_start(
            inventory=inventory, port=int(port), time_scale=float(time_scale), faults=faults
        )
    )


@task(help={"inventory": f"The inventory file (default {INVENTORY})."})
def sim_stop(c, inventory=INVENTORY):
    """Stop the simulator."""
    _exit(cli.sim_stop(inventory=inventory))


@task(help={"inventory": f"The inventory file (default {INVENTORY})."})
def sim_status(c, inventory=INVENTORY):
    """Is the simulator running, and where."""
    _exit(cli.sim_status(inventory=inventory))


@task(help={"inventory": f"The inventory file (default {INVENTORY})."})
def sim_seed(c, inventory=INVENTORY):
    """Create the inventory's Deployments in the simulator at their Dockerfiles' versions."""
    _exit(cli.sim_seed(inventory=inventory))


@task(help={"inventory": f"The inventory file (default {INVENTORY})."})
def sim_reset(c, inventory=INVENTORY):
    """Forget every simulated Deployment and fault."""
    _exit(cli.sim_reset(inventory=inventory))


sim = Collection("sim")
for _name, _task in (
    ("start", sim_start),
    ("stop", sim_stop),
    ("status", sim_status),
    ("seed", sim_seed),
    ("reset", sim_reset),
):
    sim.add_task(_task, name=_name)


@task(
    iterable=["limit"],
    help={
        "wave": "The wave to run (required).",
        "inventory": f"The inventory file (default {INVENTORY}).",
        "limit": SELECTION_HELP["limit"],
        "target": "Target spec for a new rollout (a running rollout keeps its pinned version).",
        "playbook": "Playbook file (default playbooks/upgrade.yaml beside the inventory).",
        "json": "Print the result as JSON (documented schema); progress goes to stderr.",
        "dry_run": "Show the plan for the wave and the steps that would run; change nothing.",
        "skip_gate": "Emergencies only: start the wave although the gate refuses (needs --reason).",
        "reason": "Why the gate is skipped (recorded in the journal, shown in every report).",
    },
)
def upgrade(
    c,
    wave,
    inventory=INVENTORY,
    limit=None,
    target=None,
    playbook=None,
    json=False,
    dry_run=False,
    skip_gate=False,
    reason=None,
):
    """Upgrade one wave: render, commit, test, deploy, verify; resumable, recorded."""
    command = "invoke upgrade --wave " + str(wave) + "".join(f" --limit {x}" for x in limit or ())
    _exit(
        cli.upgrade(
            inventory=inventory,
            wave=_int(wave),
            limits=limit or (),
            target=target,
            playbook=playbook,
            as_json=json,
            dry_run=dry_run,
            skip_gate=skip_gate,
            reason=reason,
            command=command,
        )
    )


@task(help={"inventory": f"The inventory file (default {INVENTORY}).", "json": "Print JSON."})
def status(c, inventory=INVENTORY, json=False):
    """Show every rollout in the journal: waves, their state, soak time left."""
    _exit(cli.status(inventory=inventory, as_json=json))


@task(help={"inventory": f"The inventory file (default {INVENTORY})."})
def unlock(c, inventory=INVENTORY):
    """Clear the journal lock left by a run that died (refused while a live run holds it)."""
    _exit(cli.unlock(inventory=inventory))


@task(
    help={
        "wave": "The wave to approve.",
        "reason": "Why (recorded with your name).",
        "inventory": f"The inventory file (default {INVENTORY}).",
    }
)
def approve(c, wave, reason, inventory=INVENTORY):
    """Approve a wave that requires approval; records who and why in the journal."""
    _exit(cli.approve(inventory=inventory, wave=_int(wave), reason=reason))


@task(
    help={
        "reason": "Why (recorded with your name).",
        "inventory": f"The inventory file (default {INVENTORY}).",
    }
)
def abandon(c, reason, inventory=INVENTORY):
    """Abandon the active rollout (so a different target can start a new one)."""
    _exit(cli.abandon(inventory=inventory, reason=reason))


@task(
    name="verify-all",
    iterable=["limit"],
    help={
        "inventory": f"The inventory file (default {INVENTORY}).",
        "limit": SELECTION_HELP["limit"],
        "json": "Print the documented JSON document.",
        "report": "Also write a Markdown report to this path.",
    },
)
def verify_all(c, inventory=INVENTORY, limit=None, json=False, report=None):
    """Check the whole fleet: deployed vs Dockerfile vs journal, health, import errors."""
    _exit(cli.verify_all(inventory=inventory, limits=limit or (), as_json=json, report=report))


@task(help={"inventory": f"The inventory file (default {INVENTORY})."})
def runners(c, inventory=INVENTORY):
    """Check every runner: reachable, git and astro present, repo paths exist (all at once)."""
    _exit(cli.runners(inventory=inventory))


namespace = Collection(
    catalog,
    plan,
    render,
    inventory_,
    upgrade,
    approve,
    abandon,
    status,
    unlock,
    verify_all,
    runners,
    sim,
)
