"""The simulator's refusals: one line (or one per problem) and an exit code.

The codes follow the product's contract so a script reads both alike: 2 for bad input
(a flag, a faults or seed file, an admin request), 7 for a simulator that cannot be reached.
"""

from __future__ import annotations


class SimError(Exception):
    """Something the simulator's commands report without a traceback."""

    exit_code = 1


class InputError(SimError):
    """Bad input: nothing was changed."""

    exit_code = 2


class NotRunning(SimError):
    """The simulator is not running where it was looked for, or does not answer."""

    exit_code = 7


def located(file: object, line: int | None, key: str, problem: str) -> str:
    """``file:line: key: problem`` (parts left out when unknown)."""
    where = f"{file}:{line}" if line is not None else str(file)
    return f"{where}: {key}: {problem}" if key else f"{where}: {problem}"
