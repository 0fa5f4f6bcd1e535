"""The states a Deployment goes through in a rollout, and the moves between them.

    pending → rendered → committed → tested → deploying → deployed → verified
    any of pending … deployed → failed;   pending … tested → skipped
    failed → pending (retry);   skipped → pending (re-decided);   deploying → deploying

A forward move may pass over states, because a playbook may leave steps out (no ``run``
step: no ``tested``) and a step may find its work done (Astro already runs the target: no
``deploying``); the journal names the states passed over in the move's event (``skipped``),
never silently. ``verified`` is the one exception: it is reached only from ``deployed``,
whose facts (the high-water mark, the commit deployed) come first, or straight from
``pending`` by a Deployment with nothing to do (the journal checks it was never worked on).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

RolloutStatus = Literal["active", "completed", "abandoned"]
WaveStatus = Literal["pending", "running", "passed", "halted"]

PENDING, RENDERED, COMMITTED, TESTED = "pending", "rendered", "committed", "tested"
DEPLOYING, DEPLOYED, VERIFIED = "deploying", "deployed", "verified"
FAILED, SKIPPED = "failed", "skipped"
FORWARD = (PENDING, RENDERED, COMMITTED, TESTED, DEPLOYING, DEPLOYED, VERIFIED)
STATES = (*FORWARD, FAILED, SKIPPED)
# Once a deploy has started the Deployment may already run the new Runtime, so it can
# fail but never be "skipped".
SKIPPABLE = (PENDING, RENDERED, COMMITTED, TESTED)
# Each forward state's place in the order (a later state is further along).
RANK: Mapping[str, int] = {state: i for i, state in enumerate(FORWARD)}
# Before ``deployed`` a Deployment may not run the new Runtime yet (``deploying``: maybe);
# from it on, it runs the rollout's commit.
NOT_YET_DEPLOYED = FORWARD[: RANK[DEPLOYED]]
RUNNING_NEW = FORWARD[RANK[DEPLOYED] :]
# The states a Deployment's work in a wave ends in: anything else is work left.
FINISHED = (VERIFIED, FAILED, SKIPPED)
# The state each step kind leaves a Deployment in (a step of another kind moves none).
STEP_STATE: Mapping[str, str] = {
    "render": RENDERED,
    "commit": COMMITTED,
    "run": TESTED,
    "deploy": DEPLOYED,
    "verify": VERIFIED,
}


def _legal_moves() -> dict[str, frozenset[str]]:
    moves: dict[str, set[str]] = {state: set() for state in STATES}
    for i, state in enumerate(FORWARD[:-1]):
        moves[state] |= {*FORWARD[i + 1 : -1], FAILED}
    # Verified only after deployed (or from pending, with nothing to do): see above.
    moves[DEPLOYED].add(VERIFIED)
    moves[PENDING].add(VERIFIED)
    for state in SKIPPABLE:
        moves[state].add(SKIPPED)
    moves[FAILED].add(PENDING)
    # A policy refusal is re-decided on every run: once the reason is gone (the Dockerfile
    # was fixed, the target raised) the Deployment is planned and worked on again.
    moves[SKIPPED].add(PENDING)
    moves[DEPLOYING].add(DEPLOYING)
    return {state: frozenset(nxt) for state, nxt in moves.items()}


TRANSITIONS: Mapping[str, frozenset[str]] = _legal_moves()

# The event a run records when it leaves its wave running without finishing it (work left
# outside --limit, or the run stopped: a system unreachable, Ctrl-C, a bug). A running wave
# whose last run left no such word and holds no lock ended without one: killed or crashed.
WAVE_LEFT = "wave_left"


def passed_over(state: str, to_state: str) -> tuple[str, ...]:
    """The forward states a move from ``state`` to ``to_state`` leaves out (none for a move
    that is not forward)."""
    if state not in FORWARD or to_state not in FORWARD:
        return ()
    return FORWARD[FORWARD.index(state) + 1 : FORWARD.index(to_state)]
