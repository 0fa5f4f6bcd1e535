"""The states a Deployment goes through in a rollout, and the moves between them.

    pending → rendered → committed → tested → deploying → deployed → verified
    any of pending … deployed → failed;   pending … tested → skipped
    failed → pending (retry);   skipped → pending (re-decided);   deploying → deploying

Any forward move is legal, because a playbook may leave steps out.
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


def _legal_moves() -> dict[str, frozenset[str]]:
    moves: dict[str, set[str]] = {state: set() for state in STATES}
    for i, state in enumerate(FORWARD[:-1]):
        moves[state] |= {*FORWARD[i + 1 :], FAILED}
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
