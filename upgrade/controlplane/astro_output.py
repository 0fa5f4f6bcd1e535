"""Read what the ``astro`` CLI printed: the document in it, and what a run really did.

The CLI is hostile to scripts in three ways this module absorbs: it exits 0 on paths that
deploy nothing (uncommitted changes without ``-f``, a workspace id that does not match, a
"No DAGs found" prompt answered no), it prints preamble lines (a token notice, an update
nag) before JSON, and it prints some refusals (a downgraded or unsupported Runtime) on
stdout with no ``Error:`` prefix. So every run is classified by its text, never by its exit
code alone, into a result or one of the typed errors of ``upgrade.errors``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from upgrade.controlplane.deployment import (
    DeploymentInfo,
    DeploymentSummary,
    DeployOutcome,
    parse_timestamp,
)
from upgrade.errors import (
    AstroAuthError,
    AstroError,
    AstroOutputError,
    DeployFailed,
    DeploymentNotFound,
    DeployNoop,
    DeployRefused,
)
from upgrade.hosts.host import CommandResult

TAIL_LINES = 10


# --------------------------------------------------------------------- text parsing

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_ERROR_LINE = re.compile(r"^Error: (.*)$", re.MULTILINE)
# The update nag (astro-cli version/version.go, on stderr): "A newer version of Astro CLI
# is available: X", "Please see https://www.astronomer.io/docs/astro/cli/upgrade-cli for
# information on how to update the Astro CLI", "To learn more about what's new in this
# version, please see .../cli/release-notes", "If you don't want to see this message again
# run 'astro config set -g upgrade_message false' or pass '2>/dev/null' ..."; older
# releases suggested `brew upgrade`.
_NAG = re.compile(
    r"newer version of Astro CLI|astronomer\.io/docs/astro/cli/(?:upgrade-cli|release-notes)"
    r"|don't want to see this message again|astro config set -g upgrade_message|brew upgrade")

_DOWNGRADE = re.compile(
    r"Cannot deploy a downgraded Astro Runtime version\. Modify your Astro Runtime version "
    r"to (?P<current>\S+) or higher in your Dockerfile"
)
# astro-cli < v1.35.0 (two lines).
_DOWNGRADE_LEGACY = re.compile(
    r"You pushed a version of Astro Runtime that is incompatible with your Deployment\s*\n"
    r"\s*Modify your Astro Runtime version to (?P<current>\S+) or higher in your Dockerfile"
    r"(?: and try again)?"
)
_UNSUPPORTED = re.compile(
    r"Cannot deploy an unsupported Astro Runtime version\. Modify your Astro Runtime version "
    r"to a supported version in your Dockerfile"
)
_SUPPORTED_LIST = re.compile(r"^Supported versions: (?P<list>.*)$", re.MULTILINE)
_AF3_MINIMUM = re.compile(
    r"Can only upgrade deployment from Airflow 2 to Airflow 3 with deployment at Astro "
    r"Runtime (?P<minimum>\S+) or higher"
)
_AF3_FLAG = re.compile(
    r"Can only upgrade deployment from Airflow 2 to Airflow 3 with the --force-upgrade-to-af3 flag"
)
_NOT_RUNTIME = re.compile(
    r"WARNING! The image in your Dockerfile '(?P<image>[^']*)' is not based on Astro Runtime "
    r"and is not supported\.[^\n]*"
)
_NOT_RUNTIME_IMAGE = re.compile(
    r"WARNING! The image '(?P<image>[^']*)' does not appear to be based on Astro Runtime[^\n]*"
)
_UNCOMMITTED = re.compile(r"Project directory has uncommitted changes, use [^\n]*")
_BAD_WORKSPACE = re.compile(
    r"Invalid workspace id (?P<ws>\S*) was provided through the --workspace-id flag"
)
# Not anchored: after a prompt read from a closed stdin it may share the prompt's line.
_CANCELING = re.compile(r"Canceling deploy\.\.\.")

_IMAGE_TAG = re.compile(r"^Deployed Image Tag:\s+(?P<v>\S+)", re.MULTILINE)
_DAG_BUNDLE = re.compile(r"^Deployed DAG bundle:\s+(?P<v>\S+)", re.MULTILINE)
_DEPLOYMENT_VIEW = re.compile(r"^\s*Deployment View:\s+(?P<v>\S+)", re.MULTILINE)
_AIRFLOW_UI = re.compile(r"^\s*Airflow UI:\s+(?P<v>\S+)", re.MULTILINE)
_PUSHED = "Successfully pushed image to Astronomer registry"
_WARNING = re.compile(r"^WARNING! .*$", re.MULTILINE)

# The CLI's root hook maps token errors to 'API Token is invalid or malformed' and 'API Token
# is expired', and refuses a JWT without permissions; the rest are
# guesses at how a 401/403 from the platform API or a missing login reads.
_AUTH = re.compile(
    r"API Token is invalid or malformed|API Token is expired|token is invalid or malformed"
    r"|does not appear to be an Astro API Token|The given API Token \S* has expired"
    r"|Please use API Tokens instead|status 401|status 403|\bUnauthorized\b|\bForbidden\b"
    r"|not authenticated|please log ?in|run astro login",
    re.IGNORECASE,
)
# astro-cli's GetDeployment wraps *every* error of the list it reads first (a 5xx, the
# network, a refused token) in the not-found sentence: errors.Wrap(err, msg) makes it
# "<sentence>: <the list's error>" (cloud/deployment/deployment.go). Only the sentence alone
# says the list was read and the Deployment was not in it.
_WRAPPED_LIST_ERROR = re.compile(
    r"the Deployment specified was not found in this workspace\. Your account or API Key may "
    r"not have access to the deployment specified: (?P<cause>.+)")
_NOT_FOUND = re.compile(
    r"the Deployment specified was not found in this workspace"
    r"|\bdeployment\b[^\n]*\b(?:not found|does not exist|doesn't exist)"
    r"|\b(?:not found|does not exist)\b[^\n]*\bdeployment\b|status 404",
    re.IGNORECASE,
)
_NO_DEPLOYMENTS = re.compile(r"^no Deployments found in workspace (?P<ws>\S*)", re.MULTILINE)
_OLD_CLI = re.compile(r"unknown flag: --json|unknown shorthand flag: 'o'")


def clean_output(text: str) -> str:
    """Drop ANSI colour codes and carriage returns (colour is forced by CLICOLOR_FORCE)."""
    return _ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "\n")


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` non-blank lines of ``text``, minus the CLI-update nag."""
    kept = [ln for ln in text.splitlines() if ln.strip() and not _NAG.search(ln)]
    return "\n".join(kept[-lines:])


def error_lines(text: str) -> list[str]:
    """Cobra's ``Error: <message>`` lines, message only."""
    return [m.group(1).strip() for m in _ERROR_LINE.finditer(text)]


def extract_document(text: str) -> Any:
    """The JSON or YAML document in ``text``, skipping preamble lines printed before it.

    Raises ValueError when there is none.
    """
    lines = text.splitlines(keepends=True)
    offset = 0
    for line in lines:
        if line.lstrip().startswith(("{", "[")):
            try:
                doc, _ = json.JSONDecoder().raw_decode(text[offset:].lstrip())
            except json.JSONDecodeError:
                pass
            else:
                return doc
        offset += len(line)
    offset = 0
    for line in lines:
        if re.match(r"^[A-Za-z_][\w-]*:(\s|$)", line) and not line.startswith(
            ("Using an Astro", "Only one Deployment", "Error:", "WARNING")
        ):
            try:
                doc = yaml.load(text[offset:], Loader=_YAML_LOADER)
            except yaml.YAMLError:
                pass
            else:
                if isinstance(doc, dict):
                    return doc
        offset += len(line)
    raise ValueError("no JSON or YAML document in the output")


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def deployment_info(doc: Any) -> DeploymentInfo:
    """Build a ``DeploymentInfo`` from ``deployment inspect -o json`` (``deployment.metadata``,
    ``.configuration`` and ``.status`` as the CLI prints them)."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("deployment"), Mapping):
        raise ValueError("the document has no 'deployment' mapping")
    dep = doc["deployment"]
    meta = dep.get("metadata")
    conf = dep.get("configuration") or {}
    if not isinstance(meta, Mapping) or not meta.get("deployment_id"):
        raise ValueError("'deployment.metadata.deployment_id' is missing")
    if not isinstance(conf, Mapping):
        raise ValueError("'deployment.configuration' is not a mapping")
    return DeploymentInfo(
        id=_text(meta.get("deployment_id")),
        name=_text(conf.get("name")),
        workspace_id=_text(meta.get("workspace_id")),
        runtime_version=_text(conf.get("runtime_version")),
        airflow_version=_text(meta.get("airflow_version")),
        status=_text(meta.get("status")).upper(),
        image_tag=_text(meta.get("current_tag")),
        airflow_api_url=_text(meta.get("airflow_api_url")),
        webserver_url=_text(meta.get("webserver_url")),
        deployment_url=_text(meta.get("deployment_url")),
        created_at=parse_timestamp(meta.get("created_at")),
        updated_at=parse_timestamp(meta.get("updated_at")),
        description=_text(conf.get("description")),
        workspace_name=_text(conf.get("workspace_name")),
        deployment_type=_text(conf.get("deployment_type")),
        executor=_text(conf.get("executor")),
        cluster_id=_text(meta.get("cluster_id")),
        dag_deploy_enabled=bool(conf.get("dag_deploy_enabled", False)),
        ci_cd_enforcement=bool(conf.get("ci_cd_enforcement", False)),
        raw=doc,
    )


def deployment_summaries(doc: Any, workspace_id: str | None) -> list[DeploymentSummary]:
    """Build the rows of ``deployment list --json`` (a ``deployments`` list, one object each)."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("deployments"), list):
        raise ValueError("the document has no 'deployments' list")
    rows = []
    for item in doc["deployments"]:
        if not isinstance(item, Mapping) or not item.get("deploymentId"):
            raise ValueError(f"a row has no 'deploymentId': {item!r}")
        rows.append(
            DeploymentSummary(
                id=_text(item["deploymentId"]),
                name=_text(item.get("name")),
                runtime_version=_text(item.get("runtimeVersion")),
                airflow_version=_text(item.get("airflowVersion")),
                workspace_id=workspace_id,
                workspace_name=_text(item.get("workspaceName")),
                namespace=_text(item.get("namespace")),
                cluster_name=_text(item.get("clusterName")),
                cloud_provider=_text(item.get("cloudProvider")),
                region=_text(item.get("region")),
                type=_text(item.get("type")),
                dag_deploy_enabled=bool(item.get("isDagDeployEnabled", False)),
                cicd_enforced=bool(item.get("isCicdEnforced", False)),
                remote_execution_enabled=bool(item.get("isRemoteExecutionEnabled", False)),
            )
        )
    return rows


def _context(result: CommandResult, deployment_id: str | None, astro_message: str) -> dict:
    return {
        "deployment_id": deployment_id,
        "command": result.argv,
        "command_exit": result.exit_code,
        "astro_message": astro_message,
        "output": tail(result.stdout + "\n" + result.stderr),
    }


def _common_failure(
    result: CommandResult, deployment_id: str | None, what: str, default: type[AstroError]
) -> AstroError:
    """Classify a failed command: auth, unknown Deployment, old CLI, or ``default``."""
    text = result.stdout + "\n" + result.stderr
    errors = error_lines(text)
    message = errors[-1] if errors else tail(text, 3)
    ctx = _context(result, deployment_id, message)
    # Only Astro's own lines are searched: a failed docker build may well say "Forbidden".
    own = "\n".join(errors)
    own += "".join(f"\n{ln}" for ln in text.splitlines() if "API Token" in ln)
    auth = _AUTH.search(own)
    if auth:
        return AstroAuthError(
            f"{what} was not authorised by Astro: {message or auth.group(0)}. Check that the "
            "API token in the environment is valid, unexpired and has access to the workspace.",
            **ctx,
        )
    if wrapped := _WRAPPED_LIST_ERROR.search(own):
        cause = wrapped.group("cause").strip()
        return AstroError(
            f"{what}: Astro could not list the workspace's Deployments ({cause}); the astro "
            "CLI words that as 'the Deployment specified was not found', which it did not "
            "establish. Astro may be unavailable: try again.",
            **{**ctx, "astro_message": cause},
        )
    if _NOT_FOUND.search(own):
        return DeploymentNotFound(
            f"{what}: Astro does not know Deployment {deployment_id} in that workspace: "
            f"{message}. Check the Deployment id and its workspace id in the inventory.",
            **ctx,
        )
    if _OLD_CLI.search(text):
        return AstroError(
            f"{what}: this astro CLI is too old ({message}); JSON output needs astro-cli "
            "v1.42.0 or newer.",
            **ctx,
        )
    where = f"exit code {result.exit_code}"
    detail = f": {message}" if message else " with no message"
    return default(f"{what} failed ({where}){detail}", **ctx)


def classify_deploy(
    result: CommandResult, deployment_id: str, workspace_id: str
) -> DeployOutcome:
    """Turn a finished ``astro deploy`` into an outcome, or raise the typed failure."""
    text = result.stdout + "\n" + result.stderr
    what = f"astro deploy {deployment_id}"
    refused = _refusal(text, result, deployment_id)
    if refused:
        raise refused
    if result.exit_code == 0:
        tag = _IMAGE_TAG.search(result.stdout)
        if tag or _PUSHED in result.stdout:
            return DeployOutcome(
                deployment_id=deployment_id,
                workspace_id=workspace_id,
                image_tag=tag.group("v") if tag else None,
                dag_bundle_version=_group(_DAG_BUNDLE, result.stdout),
                deployment_url=_group(_DEPLOYMENT_VIEW, result.stdout),
                airflow_ui_url=_group(_AIRFLOW_UI, result.stdout),
                warnings=tuple(m.group(0) for m in _WARNING.finditer(result.stdout)),
                duration=result.duration,
                output=result.stdout,
            )
        raise _noop(text, result, deployment_id, workspace_id)
    raise _common_failure(result, deployment_id, what, DeployFailed)


def _group(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return match.group("v") if match else None


def _refusal(text: str, result: CommandResult, deployment_id: str) -> DeployRefused | None:
    """Astro's runtime-version and base-image refusals (downgrade, unsupported version,
    the Airflow 3 minimum, not a Runtime image), which the CLI prints on stdout."""
    what = f"Astro refused to deploy {deployment_id}"
    if m := _DOWNGRADE.search(text) or _DOWNGRADE_LEGACY.search(text):
        cur = m.group("current")
        msg = " ".join(m.group(0).split())
        return DeployRefused(
            f"{what}: {msg}. A Runtime can never be downgraded; the Deployment already runs "
            f"{cur}, so pin {cur} or higher.",
            reason="downgrade", current_version=cur, **_context(result, deployment_id, msg),
        )
    if m := _UNSUPPORTED.search(text):
        listed = _SUPPORTED_LIST.search(text)
        supported = tuple(
            v.strip() for v in (listed.group("list") if listed else "").split(",") if v.strip()
        )
        msg = m.group(0) + (f"\n{listed.group(0)}" if listed else "")
        return DeployRefused(
            f"{what}: {msg}. Pick a version this organisation may deploy.",
            reason="unsupported", supported_versions=supported,
            **_context(result, deployment_id, msg),
        )
    if m := _AF3_MINIMUM.search(text):
        return DeployRefused(
            f"{what}: {m.group(0)}. Upgrade to Runtime {m.group('minimum')} or higher on "
            "Airflow 2 first.",
            reason="af3-minimum", minimum_version=m.group("minimum"),
            **_context(result, deployment_id, m.group(0)),
        )
    if m := _AF3_FLAG.search(text):
        return DeployRefused(
            f"{what}: {m.group(0)}. This astro CLI (v1.35-v1.37) needs an upgrade to v1.38.0+.",
            reason="af3-flag", **_context(result, deployment_id, m.group(0)),
        )
    if m := _NOT_RUNTIME.search(text) or _NOT_RUNTIME_IMAGE.search(text):
        return DeployRefused(
            f"{what}: {m.group(0)}",
            reason="not-runtime", image=m.group("image"),
            **_context(result, deployment_id, m.group(0)),
        )
    return None


def _noop(
    text: str, result: CommandResult, deployment_id: str, workspace_id: str
) -> DeployNoop:
    """The exit-0 paths that deploy nothing (uncommitted changes, a workspace mismatch, a
    declined prompt), or an unexplained exit 0."""
    what = f"astro deploy {deployment_id} exited 0 but deployed nothing"
    if m := _UNCOMMITTED.search(text):
        return DeployNoop(
            f"{what}: {m.group(0)} Commit the change (the tool always passes -f, so an older "
            "CLI that ignores it may be in use).",
            reason="uncommitted-changes", **_context(result, deployment_id, m.group(0)),
        )
    if m := _BAD_WORKSPACE.search(text):
        return DeployNoop(
            f"{what}: {m.group(0)}. Deployment {deployment_id} is not in workspace "
            f"{workspace_id}; fix its workspace_id in the inventory.",
            reason="workspace-mismatch", **_context(result, deployment_id, m.group(0)),
        )
    if _CANCELING.search(text):
        return DeployNoop(
            f"{what}: the deploy was cancelled at a prompt (the 'No DAGs found' warning is "
            "answered 'no' when stdin is closed). Add DAGs or deploy with -f.",
            reason="declined-prompt", **_context(result, deployment_id, "Canceling deploy..."),
        )
    errors = error_lines(text)
    message = errors[-1] if errors else ""
    return DeployNoop(
        f"{what}: no 'Deployed Image Tag:' or success line in its output"
        + (f" (it said: {message})" if message else "")
        + ". Treat the Deployment as not deployed.",
        reason="no-success-text", **_context(result, deployment_id, message),
    )


def classify_inspect(result: CommandResult, deployment_id: str) -> DeploymentInfo:
    """Parse ``astro deployment inspect`` output, or raise the typed failure."""
    what = f"astro deployment inspect {deployment_id}"
    text = result.stdout + "\n" + result.stderr
    if result.exit_code != 0:
        raise _common_failure(result, deployment_id, what, AstroError)
    if m := _NO_DEPLOYMENTS.search(result.stdout):
        raise DeploymentNotFound(
            f"{what}: workspace {m.group('ws')} has no Deployments. Check the workspace id.",
            **_context(result, deployment_id, m.group(0)),
        )
    try:
        info = deployment_info(extract_document(result.stdout))
    except ValueError as exc:
        if error_lines(text):
            raise _common_failure(result, deployment_id, what, AstroError) from None
        raise AstroOutputError(
            f"{what} printed output this tool cannot read ({exc}).",
            **_context(result, deployment_id, ""),
        ) from None
    if info.id != deployment_id:
        raise AstroOutputError(
            f"{what} described Deployment {info.id} instead; refusing to use it.",
            **_context(result, deployment_id, ""),
        )
    return info


def classify_list(result: CommandResult, workspace_id: str | None) -> list[DeploymentSummary]:
    """Parse ``astro deployment list --json`` output, or raise the typed failure."""
    what = "astro deployment list" + (f" in workspace {workspace_id}" if workspace_id else "")
    if result.exit_code != 0:
        raise _common_failure(result, None, what, AstroError)
    if _NO_DEPLOYMENTS.search(result.stdout):
        return []
    try:
        return deployment_summaries(extract_document(result.stdout), workspace_id)
    except ValueError as exc:
        if error_lines(result.stdout + result.stderr) or "DEPLOYMENT ID" in result.stdout:
            raise _common_failure(result, None, what, AstroError) from None
        raise AstroOutputError(
            f"{what} printed output this tool cannot read ({exc}).",
            **_context(result, None, ""),
        ) from None


# ------------------------------------------------------------------------ version

_VERSION = re.compile(r"^Astro CLI Version: v?(?P<v>\d+\.\d+\.\d+)(?P<rest>\S*)", re.MULTILINE)


@dataclass(frozen=True, order=True)
class CliVersion:
    """An astro-cli release, as ``astro version`` prints it (``1.45.0``; a pre-release
    such as ``1.46.0-nightly.…`` sorts as its release)."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> CliVersion:
        """``1.43.0`` (a leading ``v`` and a ``-…`` suffix allowed); ValueError otherwise."""
        m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:[-+]\S*)?", text.strip())
        if not m:
            raise ValueError(f"not an astro-cli version: {text!r}")
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def classify_version(result: CommandResult) -> CliVersion:
    """Read ``astro version`` (``Astro CLI Version: 1.45.0``), or raise AstroOutputError."""
    m = _VERSION.search(result.stdout)
    if result.exit_code != 0 or not m:
        raise AstroOutputError(
            f"{result.command} did not print 'Astro CLI Version: X.Y.Z' (exit "
            f"{result.exit_code}: {tail(result.stdout + chr(10) + result.stderr, 3)!r}). Is "
            "control_plane.astro_bin the astro CLI?",
            **_context(result, None, ""),
        )
    return CliVersion.parse(m.group("v"))
