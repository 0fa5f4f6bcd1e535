"""Drive the ``astro`` CLI: deploy one Deployment, inspect it, list a workspace.

Each run is an argument list with no stdin (never a form that can reach an interactive
picker), bounded in time (a time-out kills its process group), on this machine or on the
repo's runner. What it printed is read by ``upgrade.controlplane.astro_output``.

Errors (from ``upgrade.errors``; Astro's own message is kept verbatim in ``astro_message``)::

    ServiceError
    └── AstroError                   a command failed in a way not listed below
        ├── AstroAuthError           the token or login was rejected
        ├── AstroOutputError         output that is not the documented shape
        ├── AstroTimeout             the command ran past its time-out and was killed
        ├── DeploymentNotFound       no such Deployment in that workspace
        ├── DeployFailed             ``astro deploy`` failed (``Error: ...``, exit != 0)
        ├── DeployNoop               ``astro deploy`` exited 0 without deploying
        └── DeployRefused            Astro refused the image (also PolicyRefusal, exit 3)

Tokens never leave this module: captured output is passed through the one redaction rule
(``upgrade.model.redact``) before it is parsed, logged or put in an exception.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from upgrade.config.inventory import ASTRO_ID, ASTRO_ID_RULE
from upgrade.controlplane.astro_output import (
    CliVersion,
    classify_deploy,
    classify_inspect,
    classify_list,
    classify_version,
    clean_output,
    tail,
)
from upgrade.controlplane.deployment import DeploymentInfo, DeploymentSummary, DeployOutcome
from upgrade.errors import (
    AstroError,
    AstroTimeout,
    InputError,
)
from upgrade.hosts.host import CommandResult, Host, LocalHost
from upgrade.model.redact import Redactor

log = logging.getLogger(__name__)

# What a command on a runner (AstroCLI.run with a host) gets from this process's environment,
# when set here: the variables the CLI reads (its token, domain, legacy API keys and the
# skip-parse switch). Everything else comes from the runner's own environment; ASTRO_HOME
# is a path here, so it is not sent.
FORWARDED_ENV = ("ASTRO_API_TOKEN", "ASTRO_DOMAIN", "ASTRONOMER_KEY_ID",
                 "ASTRONOMER_KEY_SECRET", "ASTRONOMER_SKIP_PARSE")

# --------------------------------------------------------------------------- runner


def _timed_out(
    argv: Sequence[str], timeout: float, elapsed: float, output: str,
    deployment_id: str | None, *, runner: str | None = None,
) -> AstroTimeout:
    """The error for a command killed on time-out; ``output`` must be redacted already."""
    partial = tail(output)
    where = f" on runner {runner}" if runner else ""
    log.warning("%s timed out%s after %.1fs; killed", shlex.join(argv), where, elapsed)
    return AstroTimeout(
        f"{shlex.join(argv)} did not finish within {timeout:g}s{where} and was killed"
        + (f"; last output:\n{partial}" if partial else ""),
        deployment_id=deployment_id, command=argv, output=partial,
    )


def _check_id(kind: str, value: str) -> str:
    # A value starting with "-" would be read as a flag; an empty one opens a picker.
    if not isinstance(value, str) or not ASTRO_ID.fullmatch(value):
        raise InputError(
            f"{kind} {value!r} is not a valid Astro id ({ASTRO_ID_RULE}). Fix it in the "
            "inventory."
        )
    return value


class AstroCLI:
    """Runs ``astro`` through a Host: argument lists, no stdin, bounded time."""

    def __init__(
        self,
        astro_bin: str = "astro",
        *,
        extra_env: Mapping[str, str] | None = None,
        deploy_timeout: float = 1800.0,
        inspect_timeout: float = 60.0,
        kill_grace: float = 5.0,
        secret_names: Iterable[str] = ("ASTRO_API_TOKEN",),
    ):
        self.astro_bin = astro_bin
        self.extra_env = dict(extra_env or {})
        self.deploy_timeout = deploy_timeout
        self.inspect_timeout = inspect_timeout
        self.secret_names = tuple(secret_names)
        # This machine, for commands not given a runner.
        self.local = LocalHost("local", kill_grace=kill_grace)

    def env(self) -> dict[str, str]:
        """What ``astro`` gets on top of its host's environment: the CLI's variables set
        here (FORWARDED_ENV, ``secret_names``), ``extra_env``, and colour off.

        On this machine that adds nothing to what it inherits but ``extra_env`` and the
        colour switches; a runner gets only these from here (its own environment is the
        rest). ``CLICOLOR_FORCE=0`` wins over a ``CLICOLOR_FORCE`` the host has set
        (astro-cli ``pkg/ansi/ansi.go``, ``shouldUseColors``).
        """
        names = (*FORWARDED_ENV, *self.secret_names)
        env = {name: os.environ[name] for name in names if name in os.environ}
        env.update(self.extra_env)
        env["CLICOLOR"] = "0"
        env["CLICOLOR_FORCE"] = "0"
        return env

    def redactor(self, env: Mapping[str, str] | None = None) -> Redactor:
        """A redactor for every secret the child can see."""
        return Redactor.from_env({**os.environ, **(env if env is not None else self.env())},
                                 names=self.secret_names)

    def run(
        self,
        args: Sequence[str],
        *,
        timeout: float,
        cwd: str | Path | None = None,
        deployment_id: str | None = None,
        host: Host | None = None,
    ) -> CommandResult:
        """Run ``astro <args>`` on ``host`` (a repo's runner; this machine without one).

        The host runs it in its own process group with no stdin and kills the group if it
        outlives ``timeout``; what it printed comes back redacted and without colour codes.
        """
        argv = (self.astro_bin, *args)
        host = host or self.local
        # Messages name a runner only when it is another machine.
        runner = None if isinstance(host, LocalHost) else host.name
        env = self.env()
        # The host passes env without putting values on a command line (an SSH host sends
        # them over the channel); every value is still redacted from what comes back.
        redact = self.redactor(env)
        where = str(cwd) if cwd is not None else "."
        log.debug("running %s on %s (cwd=%s, timeout=%ss)",
                  shlex.join(argv), host.name, where, timeout)
        done = host.run(argv, cwd=where, timeout=timeout, env=env)
        if done.timed_out:
            raise _timed_out(argv, timeout, done.duration,
                             redact(clean_output(done.stdout + "\n" + done.stderr)),
                             deployment_id, runner=runner)
        if done.exit_code in (126, 127) and not done.stdout and self.astro_bin in done.stderr:
            on = f" on runner {runner}" if runner else ""
            there = "there" if runner else "it"
            raise AstroError(
                f"cannot run the astro CLI {self.astro_bin!r}{on}: "
                f"{redact(done.stderr.strip())}. Install {there} or set "
                "control_plane.astro_bin to its path.",
                deployment_id=deployment_id, command=argv,
            )
        result = replace(done, stdout=redact(clean_output(done.stdout)),
                         stderr=redact(clean_output(done.stderr)))
        log.debug(
            "%s exited %s after %.1fs on %s\nstdout:\n%s\nstderr:\n%s",
            result.command, result.exit_code, result.duration, host.name, result.stdout,
            result.stderr,
        )
        return result

    def deploy(
        self,
        deployment_id: str,
        workspace_id: str,
        repo_dir: str | Path,
        description: str,
        *,
        host: Host | None = None,
        timeout: float | None = None,
    ) -> DeployOutcome:
        """``astro deploy <id> -f --workspace-id <ws> --description <text>`` in ``repo_dir``.

        With ``host`` (the repo's runner), the deploy (and its image build) runs there.
        ``timeout`` (a playbook's) applies when stricter than the configured one.
        """
        _check_id("deployment id", deployment_id)
        _check_id("workspace id", workspace_id)
        repo = Path(repo_dir)
        if host is None and not repo.is_dir():
            raise InputError(f"cannot deploy {deployment_id}: {repo} is not a directory.")
        if host is not None and not host.exists(str(repo)):
            raise InputError(
                f"cannot deploy {deployment_id}: {repo} does not exist on runner {host.name}.")
        args = [
            "deploy", deployment_id, "-f",
            "--workspace-id", workspace_id,
            "--description", description,
        ]
        limit = self.deploy_timeout if timeout is None else min(timeout, self.deploy_timeout)
        result = self.run(args, timeout=limit, cwd=repo, deployment_id=deployment_id, host=host)
        outcome = classify_deploy(result, deployment_id, workspace_id)
        log.info("deployed %s: image tag %s", deployment_id, outcome.image_tag)
        return outcome

    def inspect(self, deployment_id: str, workspace_id: str) -> DeploymentInfo:
        """``astro deployment inspect <id> -o json --workspace-id <ws>``."""
        _check_id("deployment id", deployment_id)
        _check_id("workspace id", workspace_id)
        args = ["deployment", "inspect", deployment_id, "-o", "json",
                "--workspace-id", workspace_id]
        result = self.run(args, timeout=self.inspect_timeout, deployment_id=deployment_id)
        return classify_inspect(result, deployment_id)

    def list(self, workspace_id: str) -> list[DeploymentSummary]:
        """``astro deployment list --json --workspace-id <ws>``."""
        _check_id("workspace id", workspace_id)
        args = ["deployment", "list", "--json", "--workspace-id", workspace_id]
        return classify_list(self.run(args, timeout=self.inspect_timeout), workspace_id)

    def list_all(self, workspace_id: str) -> list[DeploymentSummary]:
        """``astro deployment list --json --all --workspace-id <ws>``: every workspace of the
        organisation. ``--all`` still needs a workspace: the CLI resolves the current one
        before it reads ``--all`` ("current workspace context not set" without a flag or a
        context workspace, as with an Organization token); the flag wins (astro-cli 1.44+)."""
        _check_id("workspace id", workspace_id)
        args = ["deployment", "list", "--json", "--all", "--workspace-id", workspace_id]
        return classify_list(self.run(args, timeout=self.inspect_timeout), None)

    def version(self, *, host: Host | None = None) -> CliVersion:
        """``astro version``: the CLI's release (on ``host``, a repo's runner, when given)."""
        result = self.run(["version"], timeout=self.inspect_timeout, host=host)
        return classify_version(result)
