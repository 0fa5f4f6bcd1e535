"""Is the journal complete? What kill and outage tests assert beyond "nothing done twice".

For each Deployment of a rollout, :func:`incomplete_facts` lists what its journal lacks:

* its moves form one chain from ``pending`` to the state its row holds, each starting
  where the last ended, and a move that passes over states names them (``skipped``);
* ``verified`` is entered from ``deployed`` (or straight from ``pending`` by a Deployment
  with nothing to do: its only move, its repo unchanged in the rollout);
* ``deployed`` names the system that said so (``source``); in ``direct`` and
  ``pull-request`` modes an upgraded Deployment's row holds the commit deployed, and its
  repo's change the commit pushed (direct) or the PR's merge commit, which is the one
  deployed (pull-request); every repo change names its source (git, forge).
"""

from __future__ import annotations

from collections.abc import Mapping

from upgrade.journal.states import FORWARD
from upgrade.journal.store import Journal


def _passed_over(state: str, to_state: str) -> list[str]:
    """The forward states between two (written here, not imported: the check must not
    share the code it checks)."""
    if state not in FORWARD or to_state not in FORWARD:
        return []
    return list(FORWARD[FORWARD.index(state) + 1 : FORWARD.index(to_state)])


def incomplete_facts(journal: Journal, modes: Mapping[str, str],
                     rollout_id: int | None = None) -> dict[str, list[str]]:
    """Deployment name → what its journal lacks (empty: complete), for the rollout
    ``rollout_id`` (default: the active, else the newest one). ``modes``: each repo's
    ``git.mode`` (a repo not named is ``local``)."""
    if rollout_id is None:
        rollout = journal.active_rollout() or journal.rollouts()[-1]
        rollout_id = rollout.id
    changes = {c.repo: c for c in journal.repo_changes(rollout_id)}
    events = journal.events(rollout_id)
    missing: dict[str, list[str]] = {}
    for e in events:
        if e.kind == "repo_change" and not (e.data or {}).get("source"):
            missing.setdefault(str((e.data or {}).get("repo")), []).append(
                f"repo change without its source: {e.message}")
    for row in journal.deployments(rollout_id):
        problems: list[str] = []
        moves = [e for e in events
                 if e.kind == "transition" and e.deployment_id == row.deployment_id]
        state = "pending"
        for e in moves:
            if e.from_state != state:
                problems.append(f"{e.from_state} → {e.to_state} recorded after {state}")
            skipped = _passed_over(e.from_state or "", e.to_state or "")
            if skipped and (e.data or {}).get("skipped") != skipped:
                problems.append(f"{e.from_state} → {e.to_state} passes over {skipped} silently")
            state = e.to_state or state
        if state != row.state:
            problems.append(f"the moves end at {state}, the row says {row.state}")
        mode = modes.get(row.repo, "local")
        change = changes.get(row.repo)
        if row.state == "verified" and moves:
            last = moves[-1]
            nothing_to_do = (last.from_state == "pending" and len(moves) == 1
                             and change is None)
            if last.from_state != "deployed" and not nothing_to_do:
                problems.append(f"verified from {last.from_state}, not after deployed")
        deployed = [e for e in moves if e.to_state == "deployed"]
        for e in deployed:
            if not (e.data or {}).get("source"):
                problems.append("deployed without the system that said so")
        upgraded = row.from_version != row.to_version
        if (deployed or row.state == "verified") and upgraded and mode != "local":
            if not row.deployed_commit:
                problems.append("deployed without the commit deployed")
            if change is None or not change.pushed_commit:
                problems.append("no commit pushed for its repo")
            elif mode == "pull-request" and change.pr_number is not None:
                if not change.merge_commit:
                    problems.append(f"PR #{change.pr_number} without its merge commit")
                elif row.deployed_commit and row.deployed_commit != change.merge_commit:
                    problems.append(f"deployed {row.deployed_commit[:12]}, not the merge commit "
                                    f"{change.merge_commit[:12]}")
        if problems:
            missing.setdefault(row.name, []).extend(problems)
    return missing
