"""Every error the tool reports on purpose, and the exit code each maps to.

Hierarchy (the exit code is a class attribute, chosen once here)::

    UpgradeError (1)
    ├── InputError (2)              bad inventory, playbook, template, Dockerfile, catalog, flag
    │   ├── VersionError            an unparseable version, spec or image reference
    │   ├── CatalogError            a feed that cannot be read or is malformed
    │   ├── InventoryError          one or more inventory problems (all reported at once)
    │   ├── DockerfileError         a Dockerfile the engine refuses to rewrite
    │   └── JournalError            a journal file that is not ours, damaged or too new
    ├── PolicyRefusal (3)           downgrade, unknown or yanked version, gate not passed
    ├── WaveHalted (4)              failure budget exceeded or verification failed
    ├── DriftFound (5)              verify-all found drift
    └── LockHeld (6)                another run holds the journal lock

Messages are full sentences that say what is wrong and what to do; callers never
print tracebacks for these.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_INPUT = 2
EXIT_POLICY = 3
EXIT_HALTED = 4
EXIT_DRIFT = 5
EXIT_LOCKED = 6
EXIT_SIGINT = 130  # a second Ctrl-C: exit at once, as the shell reports a SIGINT death


class UpgradeError(Exception):
    """Root of the tool's own errors; unexpected ones exit 1."""

    exit_code = EXIT_UNEXPECTED


class InputError(UpgradeError, ValueError):
    """Something the user gave us is invalid; nothing was changed."""

    exit_code = EXIT_INPUT


class VersionError(InputError):
    """A version, spec or image reference that cannot be parsed."""


class CatalogError(InputError):
    """A runtime feed or catalog file that cannot be read or is malformed."""


class DockerfileError(InputError):
    """A Dockerfile whose Astro base image cannot be found or safely rewritten."""


class JournalError(InputError):
    """A journal file the tool refuses to open: not SQLite, another application's, or newer."""


@dataclass(frozen=True)
class Problem:
    """One located problem in an input file: ``file:line: key: message``."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ProblemsError(InputError):
    """Several located problems in one input, reported together."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0, p.key))
        super().__init__("\n".join(str(p) for p in self.problems))


class InventoryError(ProblemsError):
    """The inventory has one or more problems."""


class PlaybookError(ProblemsError):
    """A playbook has one or more problems."""


class TemplateError(InputError):
    """A Dockerfile template failed to render (names the template file and line)."""


class PolicyRefusal(UpgradeError):
    """The policy refuses the change (downgrade, unknown or yanked target, gate)."""

    exit_code = EXIT_POLICY


class WaveHalted(UpgradeError):
    """A wave stopped: failure budget exceeded or verification failed."""

    exit_code = EXIT_HALTED


class DriftFound(UpgradeError):
    """verify-all found at least one Deployment that drifted."""

    exit_code = EXIT_DRIFT


class LockHeld(UpgradeError):
    """Another run holds the journal lock."""

    exit_code = EXIT_LOCKED
