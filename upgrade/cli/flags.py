"""Every flag of every command, declared once: name, type, default, help.

Commands list the flags they take (``@command("plan", INVENTORY, WAVE, ...)``); the invoke
collection (``upgrade.cli.tasks``) and the ``astro-fleet`` program build their parsers and
``--help`` from these declarations, and :meth:`Command.call` turns what the parser handed
over into typed values, refusing a missing or malformed value with exit 2 in the tool's
own words.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from upgrade.errors import InputError

FlagType = Literal["str", "int", "float", "bool", "list"]


@dataclass(frozen=True)
class Flag:
    """One command-line flag: ``--name`` (underscores become dashes)."""

    name: str
    help: str
    type: FlagType = "str"
    default: Any = None
    required: bool = False
    positional: bool = False  # may also be given without its --name (``init DIR``)

    @property
    def option(self) -> str:
        """The flag as typed: ``--dry-run``."""
        return "--" + self.name.replace("_", "-")

    def saying(self, help: str) -> Flag:
        """This flag with the help one command gives it (``--output`` writes different files)."""
        return replace(self, help=help)

    def needed(self, help: str | None = None) -> Flag:
        """This flag, required (for the commands that cannot run without it)."""
        return replace(self, required=True, help=help or self.help)

    def value(self, raw: Any) -> Any:
        """The typed value of what the parser handed over; InputError when malformed."""
        if raw is None or self.type in ("bool", "str"):
            return raw
        if self.type == "list":
            values = list(raw or ())
            for item in values:
                if not str(item).strip():
                    raise InputError(f"{self.option} '': an empty value selects nothing. Give "
                                     f"a name, group, repo or glob, or leave {self.option} out.")
            return tuple(values)
        try:
            return int(raw) if self.type == "int" else float(raw)
        except (TypeError, ValueError):
            kind = "a whole number" if self.type == "int" else "a number"
            raise InputError(f"{self.option} must be {kind}, got '{raw}'.") from None


class Args:
    """The typed flag values one command was given, as attributes (``args.dry_run``)."""

    def __init__(self, values: Mapping[str, Any]):
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:  # only for names no flag of the command set
        raise AttributeError(f"this command has no flag --{name.replace('_', '-')}")


@dataclass(frozen=True)
class Command:
    """One command: its name (``plan``, ``journal.export``), summary, flags and function."""

    name: str
    summary: str
    flags: tuple[Flag, ...]
    run: Callable[[Args], int]

    def call(self, given: Mapping[str, Any]) -> int:
        """Type-check the parser's values, refuse missing required flags, run the command."""
        values = {}
        for flag in self.flags:
            raw = given.get(flag.name)
            if raw is None:
                raw = flag.default
            if flag.required and (raw is None or (isinstance(raw, str) and not raw.strip())):
                raise InputError(f"{self.name} needs {flag.option}: {flag.help}")
            values[flag.name] = flag.value(raw)
        return self.run(Args(values))


COMMANDS: dict[str, Command] = {}


def command(name: str, *flags: Flag) -> Callable[[Callable[[Args], int]], Callable[[Args], int]]:
    """Register the decorated function as command ``name`` taking ``flags``."""

    def register(func: Callable[[Args], int]) -> Callable[[Args], int]:
        summary = (func.__doc__ or "").strip().splitlines()[0] if func.__doc__ else ""
        COMMANDS[name] = Command(name, summary, flags, func)
        return func

    return register


# --------------------------------------------------------------------- the flags

INVENTORY = Flag("inventory", "The inventory file (default: $ASTRO_FLEET_INVENTORY, else "
                              "inventory.yaml in the current directory).")
TARGET = Flag("target", "One target spec for every Deployment instead of the inventory's: "
                        "12.4, 12, 3.1, latest or an exact version. With an active rollout it "
                        "must match a pin.")
WAVE = Flag("wave", "Only this wave's Deployments.", "int")
LIMIT = Flag("limit", "Names, ids, groups, repos or globs; '!x' excludes, '&x' intersects "
                      "(repeatable).", "list")
JSON = Flag("json", "Print JSON instead of text (schema in docs/schemas/).", "bool", False)
OFFLINE = Flag("offline", "Do not ask Astro what is deployed (facts from Dockerfiles only).",
               "bool", False)
ADOPT = Flag("adopt", "Overwrite template-managed Dockerfiles that were edited by hand.",
             "bool", False)
FEED = Flag("feed", "Astronomer's runtime feed to apply to the bundled catalog: a JSON file "
                    "or an http(s) URL.")
MODE = Flag("mode", "How the feed applies to the bundled catalog: extend (default) or "
                    "replace.")
RESOLVE = Flag("resolve", "Resolve one spec (12.4, 12, 3.1, latest or an exact version) to "
                          "one release.")
NAME = Flag("name", "A Deployment name or id: its merged variables and where each came from.")
COMMIT = Flag("commit", "Commit on a branch, one commit per repo naming from → to.", "bool",
              False)
PUSH = Flag("push", "Also push the branch to the repo's 'origin' (implies --commit).", "bool",
            False)
BRANCH = Flag("branch", "Branch name; '{version}' is replaced (default "
                        "runtime-upgrade/{version}).")
PLAYBOOK = Flag("playbook", "Playbook file (default: the inventory's 'playbook:', else "
                            "playbooks/upgrade.yaml beside it, else the packaged one).")
DETAILED_EXITCODE = Flag("detailed_exitcode", "Exit 0 when nothing is to do, 8 when changes "
                                              "are pending and nothing is refused (3 refused, "
                                              "2 invalid input).", "bool", False)
DRY_RUN = Flag("dry_run", "Show the plan for the wave and the steps that would run; change "
                          "nothing.", "bool", False)
SKIP_GATE = Flag("skip_gate", "Emergencies only: start the wave although the gate refuses "
                              "(needs --reason).", "bool", False)
ACCEPT_FINDINGS = Flag("accept_migration_findings", "Migrate to Airflow 3 although ruff's AIR3 "
                      "lint found problems in the DAGs (recorded in the journal and reports).",
                      "bool", False)
RETRY = Flag("retry", "Start the wave's failed or inconclusive analyses again from now, "
                      "after a fix (needs --reason).", "bool", False)
ACCEPT = Flag("accept", "Let the next wave's gate pass the wave's failed or inconclusive "
                        "analyses as they are (needs --reason; recorded).", "bool", False)
WATCH = Flag("watch", "Measure again every interval until no analysis is running (the soak, "
                      "watched).", "bool", False)
REASON = Flag("reason", "Why, in a few words (recorded in the journal with your name).")
REPORT = Flag("report", "Also write a Markdown report to this path.")
FILE = Flag("file", "A journal export: JSON lines (docs/journal.md).")
DIR = Flag("dir", "The fleet directory to create files in (default: the current one).",
           default=".", positional=True)
SIMULATOR = Flag("simulator", "Use the local simulator of Astro instead of Astro itself: the "
                              "URL `fleet-sim start` printed (docs/simulator.md).")
CI = Flag("ci", "Also write a CI pipeline: github (.github/workflows/runtime-upgrade.yml) or "
                "gitlab (.gitlab-ci.yml); its journal is the team's PostgreSQL database.")
WORKSPACE = Flag("workspace", "Only the Deployments of these workspace ids (repeatable; "
                              "default: every workspace the token sees).", "list")
MERGE = Flag("merge", "Add Deployments the inventory lacks to it, keeping everything written "
                      "there (comments too).", "bool", False)
OUTPUT = Flag("output", "Write the new inventory here instead ('-' prints it).")
ROLLOUT = Flag("rollout", "The rollout to report on, by number (default: the newest).", "int")
REPOS = Flag("repos", "Where the repos' checkouts are, to find each one's path (default: "
                      "the inventory's directory).")
