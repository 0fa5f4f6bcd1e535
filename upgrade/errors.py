"""Every error the tool reports, and the one exit code each maps to.

The tree (exit code in brackets where a class sets it; a class without one inherits it)::

    UpgradeError [1]                 a bug when it escapes: report it
    ├── IllegalTransition            the journal refused an impossible state change (a bug)
    ├── InputError [2]               something the user gave is wrong; nothing was changed
    │   ├── VersionError             a version, spec or image reference that cannot be parsed
    │   ├── CatalogError             a runtime feed or catalog that cannot be read
    │   ├── DockerfileError          a Dockerfile the engine refuses to rewrite
    │   ├── TemplateError            a Dockerfile template that fails to render
    │   ├── JournalError             a journal that is not ours, damaged or too new
    │   ├── RepoError                not a git repository, unknown remote, bad branch name
    │   │   └── RepoNotClean         uncommitted changes, or a merge/rebase/... in progress
    │   └── ProblemsError            located problems of one file, reported together
    │       ├── InventoryError
    │       └── PlaybookError
    ├── PolicyRefusal [3]            downgrade, unknown or yanked version, gate not passed
    │   ├── UnknownVersion           a target the catalog does not list
    │   ├── NothingToResolve         a spec whose line has no release to resolve to
    │   ├── PlanRefused              the plan refuses at least one Deployment
    │   └── GateRefused              the gate refuses to start a wave
    ├── WaveHalted [4]               a failure budget tripped, verification failed, interrupted
    │   ├── StepFailed               one step failed for one repo or Deployment
    │   └── Interrupted              the run is stopping (Ctrl-C); the work is resumable
    ├── DriftFound [5]               verify-all found Deployments that are not as expected
    ├── LockHeld [6]                 another run holds the journal lock
    └── ServiceError [7]             a system we depend on could not be reached, refused our
        │                            credentials or failed: fix the network or token, rerun
        ├── CommandFailed            a command on a host exited non-zero or timed out
        │   └── PushFailed           git push failed
        ├── CheckoutFailed           a repo given by url could not be cloned or fetched
        ├── RunnerUnreachable        an SSH runner cannot be reached
        │   ├── HostKeyRefused       its host key is unknown (strict) or changed
        │   └── ConnectionLost       the connection dropped under a command not safe to repeat
        ├── JournalUnreachable       the journal's PostgreSQL database cannot be reached, or
        │                            failed mid-run: nothing after the last commit is recorded
        ├── ForgeError               a forge's API (GitHub, GitLab) failed through the retries
        │   └── ForgeAuthError       401/403: the forge refused the token for the repo
        ├── AstroError               an astro CLI command or Astro API call failed
        │   ├── AstroAuthError       the token or login was refused
        │   ├── AstroOutputError     output that is not the documented shape
        │   ├── AstroTimeout         the command ran past its time-out and was killed
        │   ├── DeployFailed         ``astro deploy`` failed
        │   ├── DeployNoop           ``astro deploy`` exited 0 without deploying
        │   ├── PlatformError        Astro's platform API kept failing through the retries
        │   ├── DeploymentNotFound [2]   Astro has no such Deployment: fix the inventory
        │   └── DeployRefused [3]    Astro refused the image (downgrade, unsupported, ...)
        └── AirflowAPIError          a Deployment's Airflow API failed
            ├── AirflowAuthError     401/403: no token, or the token was refused
            ├── AirflowNotFound      404: wrong URL or API version
            ├── AirflowResponseError a 2xx body that is not the documented shape
            └── AirflowUnavailable   5xx, refused or reset connections, through all retries
                └── AirflowTimeout   no answer in time, through all retries

``tests/architecture/test_errors.py`` checks that this drawing and the classes agree.
Messages are full sentences that say what is wrong and what to do; the command line prints
them without a traceback. Only this module defines exceptions that can reach a user; the
signals that parts of one floor pass between them (a read to retry, a dropped channel)
derive from :class:`Signal` and are always caught before the command line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_INPUT = 2
EXIT_POLICY = 3
EXIT_HALTED = 4
EXIT_DRIFT = 5
EXIT_LOCKED = 6
EXIT_SERVICE = 7
EXIT_CHANGES_PENDING = 8  # `plan --detailed-exitcode` only: changes pending, nothing refused
EXIT_SIGINT = 130  # a second Ctrl-C: exit at once, as the shell reports a SIGINT death


class Signal(Exception):
    """Control flow between two parts of one floor (e.g. "retry this read"); never shown."""


class UpgradeError(Exception):
    """Root of the tool's own errors; one that escapes un-subclassed is a bug (exit 1)."""

    exit_code = EXIT_UNEXPECTED


class IllegalTransition(UpgradeError, RuntimeError):
    """A caller asked the journal for a change its rules forbid: a bug in the caller."""


# ------------------------------------------------------------------------- input (2)


class InputError(UpgradeError, ValueError):
    """Something the user gave us is invalid; nothing was changed."""

    exit_code = EXIT_INPUT


class VersionError(InputError):
    """A version, spec or image reference that cannot be parsed."""


class CatalogError(InputError):
    """A runtime feed or catalog file that cannot be read or is malformed."""


class DockerfileError(InputError):
    """A Dockerfile whose Astro base image cannot be found or safely rewritten."""


class TemplateError(InputError):
    """A Dockerfile template failed to render (names the template file and line)."""


class JournalError(InputError):
    """A journal file the tool refuses to open: not SQLite, another application's, or newer."""


class RepoError(InputError):
    """A repo that cannot be used as configured: not a repository, unknown remote, bad branch."""


class RepoNotClean(RepoError):
    """A repo with uncommitted changes or an unfinished merge, rebase, cherry-pick, ..."""


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


# ------------------------------------------------------------------------ policy (3)


class PolicyRefusal(UpgradeError):
    """The policy refuses the change (downgrade, unknown or yanked target, gate)."""

    exit_code = EXIT_POLICY


class UnknownVersion(PolicyRefusal):
    """A target that the catalog does not list."""


class NothingToResolve(PolicyRefusal):
    """A spec whose line has no release a target may be resolved to."""


class PlanRefused(PolicyRefusal):
    """The plan refuses at least one selected Deployment (each reason is in the plan)."""


class GateRefused(PolicyRefusal):
    """The gate refused to start a wave; the message says why and what to run."""


# -------------------------------------------------------------- halted, drift, lock


class WaveHalted(UpgradeError):
    """A wave stopped: failure budget exceeded, verification failed, or interrupted."""

    exit_code = EXIT_HALTED


class StepFailed(WaveHalted):
    """A step failed for one repo or Deployment; the message says which and why."""


class Interrupted(WaveHalted):
    """The run is stopping (Ctrl-C); the step left its Deployment resumable."""


class DriftFound(UpgradeError):
    """verify-all found at least one Deployment that drifted."""

    exit_code = EXIT_DRIFT


class LockHeld(UpgradeError):
    """Another run holds the journal lock."""

    exit_code = EXIT_LOCKED


# ----------------------------------------------------------------------- service (7)


class ServiceError(UpgradeError):
    """A system we depend on could not be reached, refused our credentials, or failed."""

    exit_code = EXIT_SERVICE


class CommandFailed(ServiceError):
    """A command exited non-zero or timed out; names host, command, exit code and output.

    Built by :func:`upgrade.hosts.host.command_failed`, which redacts everything it carries.
    """

    def __init__(
        self,
        message: str,
        *,
        host: str,
        argv: Sequence[str],
        cwd: str,
        exit_code: int,
        timed_out: bool,
        duration: float,
        stdout_tail: str = "",
        stderr_tail: str = "",
        action: str | None = None,
    ) -> None:
        self.host = host
        self.argv = tuple(argv)
        self.cwd = cwd
        # The command's own exit status (instance attribute): the class's exit_code stays
        # this error's exit code for the command line.
        self.command_exit = exit_code
        self.timed_out = timed_out
        self.duration = duration
        self.stdout_tail = stdout_tail
        self.stderr_tail = stderr_tail
        self.action = action
        super().__init__(message)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} host={self.host!r} argv={self.argv!r} "
                f"exit={self.command_exit}>")


class PushFailed(CommandFailed):
    """``git push`` failed or timed out; names the repo, the remote and git's own words."""


class CheckoutFailed(ServiceError):
    """A repo given by URL could not be cloned or fetched (unreachable, or its credentials
    were refused); names the repo and its URL, never a credential."""

    def __init__(self, repo: str, message: str):
        self.repo = repo
        super().__init__(message)


class RunnerUnreachable(ServiceError):
    """The runner cannot be reached over SSH; its Deployments fail, other runners go on."""

    def __init__(self, runner: str, message: str):
        self.runner = runner
        super().__init__(message)

    def remembered(self, note: str) -> RunnerUnreachable:
        """The same error (same type and details) with ``note`` appended to its message."""
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.args = (f"{self} {note}",)
        return clone


class HostKeyRefused(RunnerUnreachable):
    """The runner's host key is unknown (under ``strict``) or differs from known_hosts."""

    def __init__(self, runner: str, message: str, *, fingerprint: str):
        self.fingerprint = fingerprint
        super().__init__(runner, message)


class ConnectionLost(RunnerUnreachable):
    """The connection dropped while a command that is not safe to repeat was running."""


class JournalUnreachable(ServiceError):
    """The journal's database could not be reached, refused our login, or failed mid-run.

    Whatever happened after its last committed change is not recorded; the same command,
    run again once the database is back, resumes from what was committed.
    """


class ForgeError(ServiceError):
    """A forge's API (GitHub, GitLab) could not be reached or kept failing; names the repo.

    A wave stops starting steps when it sees one (every repo in it uses the same forge)
    and the command exits 7; the journal holds only what the forge confirmed.
    """


class ForgeAuthError(ForgeError):
    """The forge answered 401 or 403: the token is missing, expired or lacks access."""


class AstroError(ServiceError):
    """An ``astro`` command (or Astro API call) failed; carries the command and output tail.

    ``astro_message`` keeps Astro's own words verbatim (already redacted).
    """

    def __init__(
        self,
        message: str,
        *,
        deployment_id: str | None = None,
        command: Sequence[str] = (),
        command_exit: int | None = None,
        astro_message: str = "",
        output: str = "",
    ):
        self.deployment_id = deployment_id
        self.command = tuple(command)
        # The command's own exit status (as CommandFailed's): ``exit_code`` is the program's.
        self.command_exit = command_exit
        self.astro_message = astro_message
        self.output = output
        super().__init__(message)


class AstroAuthError(AstroError):
    """Astro rejected the API token (invalid, expired, wrong scope) or wants a login."""


class AstroOutputError(AstroError):
    """The CLI printed something that is not the documented output shape."""


class AstroTimeout(AstroError):
    """The command did not finish within its time-out; its process group was killed."""


class DeployFailed(AstroError):
    """``astro deploy`` failed: an ``Error:`` line or a non-zero exit."""


class DeployNoop(AstroError):
    """``astro deploy`` exited 0 but did not deploy (one of the CLI's exit-0 traps)."""

    def __init__(self, message: str, *, reason: str, **kw: Any):
        self.reason = reason
        super().__init__(message, **kw)


class PlatformError(AstroError):
    """The platform API kept failing through the retries, or answered an unreadable body."""

    def __init__(self, message: str, *, status_code: int | None = None, attempts: int = 1,
                 **kw: Any):
        self.status_code = status_code
        self.attempts = attempts
        super().__init__(message, **kw)


class DeploymentNotFound(AstroError, LookupError):
    """The Deployment id is unknown, or not in the workspace given: the inventory is wrong."""

    exit_code = EXIT_INPUT


class DeployRefused(AstroError, PolicyRefusal):
    """Astro refused the image: downgrade, unsupported version, AF2→AF3 minimum, not Runtime."""

    exit_code = EXIT_POLICY

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        current_version: str | None = None,
        minimum_version: str | None = None,
        supported_versions: tuple[str, ...] = (),
        image: str | None = None,
        **kw: Any,
    ):
        self.reason = reason
        self.current_version = current_version
        self.minimum_version = minimum_version
        self.supported_versions = supported_versions
        self.image = image
        super().__init__(message, **kw)


class AirflowAPIError(ServiceError):
    """A call to a Deployment's Airflow API failed."""

    def __init__(
        self,
        message: str,
        *,
        deployment_id: str,
        url: str = "",
        status_code: int | None = None,
        attempts: int = 1,
    ):
        self.deployment_id = deployment_id
        self.url = url
        self.status_code = status_code
        self.attempts = attempts
        super().__init__(message)


class AirflowAuthError(AirflowAPIError):
    """The Airflow API refused the request (401 or 403): no token, or the token was refused."""


class AirflowNotFound(AirflowAPIError):
    """The Airflow API answered 404."""


class AirflowResponseError(AirflowAPIError):
    """The Airflow API answered 2xx with a body that is not the documented shape."""


class AirflowUnavailable(AirflowAPIError):
    """The Airflow API kept failing (5xx, refused or reset connections) through all retries."""


class AirflowTimeout(AirflowUnavailable):
    """The Airflow API kept timing out through all retries."""
