"""``astro deploy <ID>``: the image deploy path of astro-cli.

Order, messages and streams follow ``cmd/cloud/deploy.go`` and
``cloud/deploy/deploy.go``: workspace, the uncommitted-changes trap, the
Deployment lookup, the workspace-mismatch trap, the deploy record, the
No-DAGs prompt, the build (the Runtime label comes from the Dockerfile's
base image), the four Runtime checks, the push, finalize, ``--wait``.
Refusals that astro-cli ends with ``os.Exit(1)`` print to stdout only.
"""

from __future__ import annotations

import os
import re
import sys
import time
from datetime import UTC, datetime

from fleet_sim.astro_cli import gitmeta
from fleet_sim.astro_cli.context import (
    CliError,
    CliExit,
    Context,
    api_error_message,
    deployment_named,
    out,
    select_deployment,
)
from fleet_sim.astro_cli.goformat import parse_go_duration
from fleet_sim.runtime_versions import airflow_major, compare_runtime_versions

UNCOMMITTED = (
    "Project directory has uncommitted changes, "
    "use `astro deploy [deployment-id] -f` to force deploy."
)
NOT_PROJECT = (
    "this is not an Astro project directory.\nChange to another directory or run astro dev init "
    "to turn your working directory into an Astro project\n"
)
NO_DAGS_PROMPT = (
    "Warning: No DAGs found. This will delete any existing DAGs. Are you sure you want to deploy?"
)
NOT_RUNTIME = (
    "WARNING! The image in your Dockerfile '{image}' is not based on Astro Runtime and is not "
    "supported. Change your Dockerfile with an image that pulls from "
    "'quay.io/astronomer/astro-runtime' to proceed."
)
DOWNGRADE = (
    "Cannot deploy a downgraded Astro Runtime version. Modify your Astro Runtime version to "
    "{current} or higher in your Dockerfile"
)
UNSUPPORTED = (
    "Cannot deploy an unsupported Astro Runtime version. Modify your Astro Runtime version to a "
    "supported version in your Dockerfile"
)
AF3_MINIMUM = (
    "Can only upgrade deployment from Airflow 2 to Airflow 3 with deployment at Astro Runtime "
    "12.0.0 or higher"
)
SUCCESS = (
    "Successfully pushed image to Astronomer registry. Navigate to the Astronomer UI for "
    "confirmation that your deploy was successful. To deploy dags only run astro deploy --dags."
)
# Flags astro accepts that select paths the simulator does not model.
UNSIMULATED = ("dags", "image", "image-name", "pytest", "test", "save", "dags-path", "build-secret")


def valid_runtime_version(current: str, tag: str, options: list[str]) -> bool:
    """astro-cli ValidRuntimeVersion (v1.36+): prints its refusal and returns False."""
    if current == "":
        return True
    if compare_runtime_versions(tag, current) < 0:
        out(DOWNGRADE.format(current=current))
        return False
    if not any(compare_runtime_versions(tag, v) == 0 for v in options):
        out(UNSUPPORTED)
        out("Supported versions: " + ", ".join(options))
        return False
    crossing = airflow_major(current) == "2" and airflow_major(tag) == "3"
    if crossing and compare_runtime_versions(current, "12.0.0") < 0:
        out(AF3_MINIMUM)
        return False
    return True


def latest_stable(feed: dict) -> str:
    """astro-cli GetDefaultImageTag: newest stable, non-yanked version of both maps."""
    best = ""
    for key in ("runtimeVersions", "runtimeVersionsV3"):
        for version, entry in (feed.get(key) or {}).items():
            meta = entry.get("metadata") or {}
            if meta.get("channel") != "stable" or meta.get("yanked"):
                continue
            if not best or compare_runtime_versions(version, best) > 0:
                best = version
    return best


def config_deployment_id(project: str) -> str:
    """``project.deployment`` from ``.astro/config.yaml`` (saved by ``astro deploy --save``)."""
    try:
        with open(os.path.join(project, ".astro", "config.yaml"), encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return ""
    m = re.search(r"^\s+deployment:\s*['\"]?([A-Za-z0-9._-]+)", text, re.MULTILINE)
    return m.group(1) if m else ""


def has_dags(dags: str) -> bool:
    """True when a ``.py`` file is anywhere under the DAGs folder."""
    return any(name.endswith(".py") for _, _, files in os.walk(dags) for name in files)


def _answer_yes() -> bool:
    """input.Confirm's answer: a line from stdin; a terminal is never waited on."""
    try:
        if sys.stdin is None or sys.stdin.isatty():
            return False
        line = sys.stdin.readline()
    except (OSError, ValueError):
        return False
    return line.strip("\r\n") == "y"


def _sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


def run(ctx_factory, values: dict, given: set[str], args: list[str]) -> None:
    """The whole ``astro deploy`` command (after flag parsing)."""
    ctx: Context = ctx_factory()
    if "wait-time" in given and not values["wait"]:
        raise CliError("cannot use --wait-time with --wait=false")
    try:
        wait_time = parse_go_duration(str(values["wait-time"]))
    except ValueError as exc:
        raise CliError(
            f'invalid argument "{values["wait-time"]}" for "--wait-time" flag: {exc}'
        ) from exc
    for name in UNSIMULATED:
        if name in given:
            raise CliError(
                f"astro-sim does not simulate `astro deploy --{name}`; see docs/simulator.md"
            )
    project = os.getcwd()
    if not os.path.isfile(os.path.join(project, ".astro", "config.yaml")):
        raise CliError(NOT_PROJECT)

    deployment_id = args[0] if args else ""
    workspace = str(values["workspace-id"] or "")
    if not deployment_id or values["prompt"] or not workspace:
        try:
            workspace = ctx.coalesce_workspace(workspace)
        except CliError as exc:
            raise CliError(f"failed to find a valid workspace: {exc}") from exc
    forced = None
    if deployment_id:
        _, _, answer = ctx.call("POST", f"/_sim/deploy-attempt/{deployment_id}")
        forced = answer.get("noop") if isinstance(answer, dict) else None
    if forced == "uncommitted" or (
        not values["force"] and gitmeta.has_uncommitted_changes(project)
    ):
        out(UNCOMMITTED)
        raise CliExit(0)

    out("Authenticated to Astro \n")
    if not deployment_id:
        deployment_id = config_deployment_id(project)
        if deployment_id:
            out(
                "Deployment ID found in the config file. "
                "This Deployment ID will be used for the deploy"
            )
    name = str(values["deployment-name"] or "")
    if deployment_id and name:
        out(
            "Both a Deployment ID and Deployment name have been supplied. "
            f"The Deployment ID {deployment_id} will be used for the Deploy"
        )
    if not deployment_id or values["prompt"]:
        deployment = _pick(ctx, workspace, deployment_id, name)
    else:
        deployment = ctx.get_deployment(deployment_id)
    deployment_id = deployment["id"]
    if workspace != deployment["workspaceId"] or forced == "workspace_mismatch":
        out(f"Invalid workspace id {workspace} was provided through the --workspace-id flag")
        raise CliExit(0)

    git, subject = gitmeta.collect(project, out) if gitmeta.enabled(project) else (None, "")
    description = str(values["description"] or "") or subject
    body: dict[str, object] = {"type": "IMAGE_AND_DAG", "description": description}
    if git:
        body["git"] = git
    org = ctx.organization
    status, headers, created = ctx.call(
        "POST", f"/v1/organizations/{org}/deployments/{deployment_id}/deploys", body
    )
    if status != 200 or not isinstance(created, dict):
        raise CliError(api_error_message(status, created))
    timing = {
        k: float(headers.get(f"x-astro-sim-{k}", "0") or 0)
        for k in (
            "build-seconds",
            "push-seconds",
            "wait-sleep-seconds",
            "wait-poll-seconds",
            "time-scale",
        )
    }

    env_file = str(values["env"])
    if not os.path.exists(env_file) and env_file != ".env":
        raise CliError(f"Env file path is incorrect:  {env_file}")
    dags = has_dags(os.path.join(project, "dags"))
    # -f skips the prompt (the Go source read at one commit did
    # not check -f; the reference, which the project follows, says it does).
    no_dags = deployment.get("isDagDeployEnabled") and not dags and not values["force"]
    if forced == "no_dags_declined" or no_dags:
        out(f"{NO_DAGS_PROMPT} (y/n) ", end="")
        if forced == "no_dags_declined" or not _answer_yes():
            out("Canceling deploy...")
            raise CliExit(0)

    out("Building image...")
    _docker_build_lines(deployment)
    _sleep(timing["build-seconds"])
    feed = ctx.api("GET", "/astronomer-runtime")
    image = _build(ctx, os.path.join(project, "Dockerfile"))
    label = image.get("label")
    if not isinstance(label, str):
        out(NOT_RUNTIME.format(image=image.get("firstFrom", "")))
        out("Canceling deploy...")
        raise CliExit(1)
    options = ctx.api("GET", f"/v1/organizations/{org}/deployment-options")
    versions = [r["version"] for r in options.get("runtimeReleases") or []]
    if not valid_runtime_version(deployment.get("runtimeVersion", ""), label, versions):
        out("Canceling deploy...")
        raise CliExit(1)
    latest = latest_stable(feed)
    if latest and compare_runtime_versions(label, latest) < 0:
        out(
            f"WARNING! You are currently running Astro Runtime Version {label}\n"
            f"Consider upgrading to the latest version, Astro Runtime {latest}"
        )

    if dags:
        if compare_runtime_versions(label, "4.1.0") < 0:
            out("\nruntime image is earlier than 4.1.0, this deploy will skip DAG parse...")
        elif not values["force"] or values["parse"]:
            out("Testing image...")
            if os.environ.get("ASTRONOMER_SKIP_PARSE", "").lower() in ("true", "1"):
                out(
                    "Skipping parsing dags due to skip parse being set to true in either the "
                    "config.yaml or local environment variables"
                )
    else:
        out("No DAGs found. Skipping testing...")

    out("Pushing image to Astronomer registry")
    tag = created["imageTag"]
    repository = created["imageRepository"]
    status, _, pushed = ctx.call(
        "PUT",
        f"/_sim/registry/{deployment_id}/{tag}",
        {"runtimeVersion": label, "image": image.get("image")},
    )
    if status // 100 != 2 or not isinstance(pushed, dict):
        raise CliError(api_error_message(status, pushed))
    # The registry computes the digest, as a real registry does.
    out(f"The push refers to repository [{repository}]")
    _sleep(timing["push-seconds"])
    out(f"{tag}: digest: {pushed.get('digest', '')} size: 2841")

    finalize: dict[str, object] = {}
    if deployment.get("isDagDeployEnabled") and dags:
        finalize["dagTarballVersion"] = _tarball_version()
    done = ctx.api(
        "POST",
        f"/v1/organizations/{org}/deployments/{deployment_id}/deploys/{created['id']}/finalize",
        finalize,
    )
    if done.get("dagTarballVersion"):
        out(f"Deployed DAG bundle:  {done['dagTarballVersion']}")
    if done.get("imageTag"):
        out(f"Deployed Image Tag:  {done['imageTag']}")
    if values["wait"]:
        _health_poll(ctx, deployment_id, timing, wait_time)
    web = deployment.get("webServerUrl", "")
    out(
        SUCCESS + "\n\n Access your Deployment:\n\n"
        f" Deployment View: https://cloud.astronomer.io/{deployment['workspaceId']}/deployments/{deployment_id}\n"
        f" Airflow UI: https://{web}\n"
    )


def _pick(ctx: Context, workspace: str, deployment_id: str, name: str) -> dict:
    """GetDeployment without an ID: by name, auto-select, picker or create wizard."""
    deployments = ctx.listed_for(workspace)
    if name and not deployment_id:
        return ctx.get_deployment(deployment_named(deployments, name)["id"])
    if not deployments:
        # astro-cli walks the user through creating a Deployment; with no answer on
        # stdin the name prompt comes back empty.
        out(f"Current Workspace: {workspace}\n")
        out("Please specify a name for your Deployment")
        out("\nDeployment name: ", end="")
        raise CliError("you must give your Deployment a name")
    chosen = select_deployment(deployments, "Select a Deployment")
    assert chosen is not None
    return ctx.get_deployment(chosen["id"])


def _build(ctx: Context, dockerfile: str) -> dict:
    """The image's Runtime label, as ``docker build`` would stamp it (astro.image_label).

    The simulator's server does the build, as Docker's daemon would: see image_label.
    """
    try:
        with open(dockerfile, "rb") as handle:
            text = handle.read().decode("utf-8", errors="replace")
    except OSError as exc:
        raise CliError(
            f"failed to parse dockerfile: {dockerfile}: open {dockerfile}: "
            "no such file or directory"
        ) from exc
    return ctx.api("POST", "/_sim/build", {"dockerfile": text})


def _docker_build_lines(deployment: dict) -> None:
    # Docker's own output, abridged; astro-cli passes it through unchanged.
    out("#1 [internal] load build definition from Dockerfile")
    out("#2 [internal] load metadata for the base image")
    out(
        f"#3 naming to docker.io/library/{deployment.get('namespace', 'airflow')}/airflow:latest"
        " done"
    )


def _tarball_version() -> str:
    # Go's time.Now().UTC().Format(time.RFC3339Nano) at 100 ns precision, as astro-cli's.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _health_poll(ctx: Context, deployment_id: str, timing: dict, wait_time: float) -> None:
    """astro-cli HealthPoll, with every duration multiplied by the time scale."""
    out("\nWaiting for the deployment to become healthy…\n\nThis may take a few minutes")
    _sleep(timing["wait-sleep-seconds"])
    poll = max(timing["wait-poll-seconds"], 0.001)
    start = time.monotonic()
    deadline = start + wait_time * timing["time-scale"]
    tick = 1
    while True:
        next_tick = start + tick * poll
        if next_tick >= deadline:
            _sleep(deadline - time.monotonic())
            raise CliError("timed out waiting for the Deployment to enter a Healthy state")
        _sleep(next_tick - time.monotonic())
        current = ctx.get_deployment(deployment_id)
        if current.get("status") in ("HEALTHY", "HIBERNATING"):
            out(f"Deployment {current['name']} is now healthy")
            return
        tick += 1
