"""``astro-sim``: an ``astro``-compatible command that talks to the simulator.

Supports ``astro deploy``, ``astro deployment inspect`` and ``astro deployment
list`` with the real flags, output shapes, streams and exit codes
(docs/simulator.md lists what differs).
"""

from __future__ import annotations

import sys

from fleet_sim.astro_cli import deploy
from fleet_sim.astro_cli.context import (
    LIST_JSON,
    CliError,
    CliExit,
    Context,
    at_least,
    cli_version,
)
from fleet_sim.astro_cli.deployment import inspect_command, list_command
from fleet_sim.astro_cli.flags import Flag, FlagError, Parsed, parse, usage_lines

DEPLOY_FLAGS = [
    Flag(
        "force",
        "f",
        "bool",
        False,
        "Force deploy even if project contains errors or uncommitted changes",
    ),
    Flag("prompt", "p", "bool", False, "Force prompt to choose target deployment"),
    Flag("save", "s", "bool", False, "Save deployment in config for future deploys"),
    Flag("workspace-id", "", "string", "", "Workspace for your Deployment"),
    Flag(
        "pytest", "", "bool", False, "Deploy code to Astro only if the specified Pytests are passed"
    ),
    Flag(
        "env",
        "e",
        "string",
        ".env",
        "Location of file containing environment variables for Pytests",
    ),
    Flag("test", "t", "string", "", "Location of Pytests or specific Pytest file"),
    Flag("image-name", "i", "string", "", "Name of a custom image to deploy"),
    Flag("dags", "d", "bool", False, "Push only DAGs to your Astro Deployment"),
    Flag("image", "", "bool", False, "Push only an image to your Astro Deployment"),
    Flag(
        "dags-path",
        "",
        "string",
        "",
        "If set deploy dags from this path instead of the dags from working directory",
    ),
    Flag("deployment-name", "n", "string", "", "Name of the deployment to deploy to"),
    Flag(
        "parse",
        "",
        "bool",
        False,
        "Succeed only if all DAGs in your Astro project parse without errors",
    ),
    Flag(
        "wait",
        "w",
        "bool",
        False,
        "Wait for the Deployment to become healthy before ending the command",
    ),
    Flag(
        "wait-time",
        "",
        "duration",
        "5m0s",
        "Wait time for the Deployment to become healthy (only with --wait)",
    ),
    Flag("description", "", "string", "", "Add a description for more context on this deploy"),
    Flag("build-secret", "", "string", "", "Mimics docker build --secret flag"),
    Flag("force-upgrade-to-af3", "", "bool", False, "Deprecated: no longer needed"),
]
INSPECT_FLAGS = [
    Flag("deployment-name", "n", "string", "", "Name of the deployment to inspect."),
    Flag("output", "o", "string", "yaml", "Output format can be one of: yaml or json."),
    Flag("template", "t", "bool", False, "Create a template from the deployment being inspected."),
    Flag("key", "k", "string", "", "A specific key for the deployment."),
    Flag(
        "clean-output",
        "c",
        "bool",
        False,
        "clean output to only include inspect yaml or json file in any situation.",
    ),
    Flag("show-workload-identity", "", "bool", False, "Show the workload identity"),
    Flag("workspace-id", "", "string", "", "workspace assigned to deployment"),
]
LIST_FLAGS = [
    Flag("all", "a", "bool", False, "Show deployments across all workspaces"),
    Flag("workspace-id", "", "string", "", "workspace assigned to deployment"),
    Flag("json", "", "bool", False, "Output in JSON format"),
    Flag("output", "o", "string", "", "Output format: table, json, or template"),
    Flag("template", "", "string", "", "Go template (with -o template)"),
]
ROOT_HELP = """astro-sim is an astro-compatible command for the local Astro control-plane simulator.

Usage:
  astro-sim [command]

Available Commands:
  deploy      Deploy your project to a Deployment on Astro
  deployment  Manage your Deployments running on Astronomer
  help        Help about any command
  version     List running version of the Astro CLI

Flags:
  -h, --help   help for astro-sim

Environment:
  ASTRO_SIM_URL     the simulator, e.g. http://127.0.0.1:PORT (required)
  ASTRO_API_TOKEN   an Astro API token (JWT with permissions claims)
  ASTRO_SIM_VERSION the astro-cli release to behave as (default 1.45.0): before 1.43.0
                    deploys carry git metadata only for github.com remotes, before
                    1.42.0 `deployment list` has no --json, before 1.40.0 none at all

Use "astro-sim [command] --help" for more information about a command.
"""
DEPLOYMENT_HELP = """Manage your Deployments running on Astronomer

Usage:
  astro-sim deployment [command]

Aliases:
  deployment, de, deployments

Available Commands:
  inspect     Inspect a deployment configuration
  list        List your Deployments running on Astro

Flags:
  -h, --help   help for deployment
"""


def _help(use: str, short: str, flags: list[Flag]) -> str:
    return f"{short}\n\nUsage:\n  astro-sim {use} [flags]\n\nFlags:\n{usage_lines(flags)}\n"


def _fail(message: str, usage: str = "") -> int:
    sys.stderr.write(f"Error: {message}\n")
    if usage:
        sys.stderr.write(usage)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns (and, as a console script, exits with) its code."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        code = _dispatch(argv)
    except CliExit as exc:
        code = exc.code
    except CliError as exc:
        code = _fail(str(exc))
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    return code


def _dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(ROOT_HELP)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "version":
        # astro-cli's PrintVersion: exactly this line.
        sys.stdout.write(f"Astro CLI Version: {cli_version()}\n")
        return 0
    if command == "deploy":
        return _run_deploy(rest)
    if command in ("deployment", "deployments", "de"):
        if not rest or rest[0] in ("-h", "--help", "help"):
            sys.stdout.write(DEPLOYMENT_HELP)
            return 0
        sub, rest = rest[0], rest[1:]
        if sub in ("inspect", "in"):
            return _run_inspect(rest)
        if sub in ("list", "ls"):
            return _run_list(rest)
        return _fail(
            f'unknown command "{sub}" for "astro deployment"\n'
            "Run 'astro deployment --help' for usage."
        )
    return _fail(f'unknown command "{command}" for "astro"\nRun \'astro --help\' for usage.')


def _parse(argv: list[str], use: str, short: str, flags: list[Flag]
           ) -> tuple[Parsed, str] | int:
    """The flags as cobra parses them, and the command's usage text; or the exit code when
    a flag was refused or ``--help`` printed the usage."""
    usage = _help(use, short, flags)
    try:
        parsed = parse(argv, flags)
    except FlagError as exc:
        return _fail(str(exc), usage)
    if parsed.values["help"]:
        sys.stdout.write(usage)
        return 0
    return parsed, usage


def _run_deploy(argv: list[str]) -> int:
    got = _parse(argv, "deploy DEPLOYMENT-ID", "Deploy your project to a Deployment on Astro",
                 DEPLOY_FLAGS)
    if isinstance(got, int):
        return got
    parsed, usage = got
    if len(parsed.args) > 1:
        return _fail(f"accepts at most 1 arg(s), received {len(parsed.args)}", usage)
    deploy.run(lambda: Context.setup(announce=True), parsed.values, parsed.given, parsed.args)
    return 0


def _run_inspect(argv: list[str]) -> int:
    got = _parse(argv, "deployment inspect [DEPLOYMENT-ID]",
                 "Inspect a deployment configuration", INSPECT_FLAGS)
    if isinstance(got, int):
        return got
    parsed, _ = got
    inspect_command(Context.setup(announce=False), parsed.values, parsed.args)
    return 0


def _run_list(argv: list[str]) -> int:
    got = _parse(argv, "deployment list", "List your Deployments running on Astro", LIST_FLAGS)
    if isinstance(got, int):
        return got
    parsed, usage = got
    if parsed.args:
        return _fail(f'unknown command "{parsed.args[0]}" for "astro deployment list"', usage)
    if not at_least(LIST_JSON) and parsed.given & {"json", "output"}:
        flag = "--json" if "json" in parsed.given else "-o"
        return _fail(f"unknown flag: {flag}" if flag == "--json"
                     else "unknown shorthand flag: 'o' in -o", usage)
    list_command(Context.setup(announce=True), parsed.values, parsed.given)
    return 0


if __name__ == "__main__":
    sys.exit(main())
