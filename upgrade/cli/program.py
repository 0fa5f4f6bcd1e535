"""``astro-fleet``: an invoke ``Program`` over the package's task collection.

The same tasks as ``invoke`` in a fleet repo whose ``tasks.py`` imports
``upgrade.cli.tasks``, from any directory, with the core options a platform tool needs
(``--version``, ``-v/--verbose``, ``--log-file``) instead of invoke's shell-runner ones.
Everything the parser refuses (an unknown command or flag, a flag without its value)
is one line in the tool's own style and exit 2, as every other invalid input.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from invoke import Argument, Collection, Exit, ParseError, Program

from upgrade import __version__
from upgrade.errors import EXIT_INPUT, EXIT_SIGINT

NAME = "astro-fleet"


class FleetProgram(Program):
    """invoke's Program with the tool's core options and error style."""

    def core_args(self) -> list[Argument]:
        """Help, listing, completion and version from invoke; logging of our own."""
        keep = {"help", "list", "list-depth", "list-format", "complete",
                "print-completion-script", "version", "debug", "write-pyc"}
        args = [a for a in super().core_args() if a.name in keep]
        for arg in args:
            if arg.name in ("debug", "write-pyc"):  # read by invoke itself; not ours to offer
                arg.help = None
        args.append(Argument(names=("verbose", "v"), kind=bool, default=False,
                             help="Debug logging to stderr."))
        args.append(Argument(names=("log-file",),
                             help="Append a JSON-lines log of the run to this file."))
        return args

    def print_help(self) -> None:
        """Usage, the core options we offer, and the commands."""
        print(f"Usage: {self.binary} [--core-opts] <command> [--command-opts] ...")
        print("")
        print("Core options:")
        print("")
        tuples = [t for t in self.initial_context.help_tuples()
                  if not t[0].startswith(("-d,", "--debug", "--write-pyc"))]
        self.print_columns(tuples)
        self.list_tasks()
        print(f"Help on one command: {self.binary} --help <command>. Docs: the README.")

    def normalize_argv(self, argv: Any) -> None:
        """invoke's argv, with an optional positional value (``init DIR``) given its flag.

        invoke only knows required positional arguments; ``init`` without a directory
        means the current one, so ``init DIR`` is read as ``init --dir DIR`` here.
        """
        super().normalize_argv(argv)
        from upgrade.cli.flags import COMMANDS

        optional = {name: next(f for f in cmd.flags if f.positional)
                    for name, cmd in COMMANDS.items() if any(f.positional for f in cmd.flags)}
        takes_value = {"--log-file", "-F", "--list-format", "-D", "--list-depth"}
        out = list(self.argv)
        for i, token in enumerate(out[1:], start=1):
            if token.startswith("-") or out[i - 1] in takes_value:
                continue
            # the command: give its optional positional value (if any) its flag
            nxt = out[i + 1] if i + 1 < len(out) else None
            if token in optional and nxt is not None and not nxt.startswith("-"):
                out.insert(i + 1, optional[token].option)
            break
        self.argv = out

    def update_config(self, merge: bool = True) -> None:
        """No shell-runner settings to carry over (invoke's run/sudo/timeouts flags)."""
        if merge:
            self.config.merge()

    def parse_core(self, argv: list[str] | None) -> None:
        """invoke's core parse, then logging as -v/--log-file ask."""
        super().parse_core(argv)
        from upgrade.cli import logs

        logs.configure(verbose=bool(self.args.verbose.value),
                       log_file=self.args["log-file"].value, argv=list(self.argv))

    def run(self, argv: list[str] | None = None, exit: bool = True) -> None:
        """invoke's run, with parse errors in one line and exit 2."""
        try:
            self.create_config()
            self.parse_core(argv)
            self.parse_collection()
            self.parse_tasks()
            self.parse_cleanup()
            self.update_config()
            self.execute()
        except ParseError as exc:
            sys.stderr.write(f"error: {parse_problem(exc, self.collection_names())}\n")
            code = EXIT_INPUT
        except Exit as exc:
            if exc.message:
                sys.stderr.write(f"error: {exc.message}\n")
            code = exc.code if not exc.message else EXIT_INPUT
        except KeyboardInterrupt:
            code = EXIT_SIGINT
        else:
            code = 0
        if exit:
            sys.exit(code)

    def collection_names(self) -> list[str]:
        """Every command name, as typed."""
        collection = getattr(self, "collection", None) or self.namespace
        return list(collection.task_names) if collection is not None else []


def parse_problem(exc: ParseError, commands: list[str]) -> str:
    """invoke's parse error as one sentence that says what to do."""
    from upgrade.config.checker import did_you_mean

    text = str(exc)
    context = getattr(exc, "context", None)
    where = getattr(context, "name", None)
    unknown = re.fullmatch(r"No idea what '(.*)' is!", text)
    if unknown:
        token = unknown.group(1)
        if token.startswith("-"):
            if where:
                flags = [f"--{name.replace('_', '-')}" for name in context.args]  # type: ignore[union-attr]
                return (f"{where} has no flag {token}.{did_you_mean(token, flags)} "
                        f"`{NAME} --help {where}` lists its flags.")
            return f"unknown option {token}. `{NAME} --help` lists the core options."
        return (f"no command '{token}'.{did_you_mean(token, commands)} "
                f"`{NAME} --list` lists the commands.")
    needed = re.fullmatch(r"Flag <Argument: ([\w-]+).*> needed value and was not given one!", text)
    if needed:
        flag = "--" + needed.group(1).replace("_", "-")
        return f"{flag} needs a value{f' (command {where})' if where else ''}."
    taken = re.fullmatch(r"Flag <Argument: ([\w-]+).*> doesn't take any value!", text)
    if taken:
        return f"--{taken.group(1).replace('_', '-')} is a switch: it takes no value."
    return text[:1].lower() + text[1:]


def program(namespace: Collection | None = None) -> FleetProgram:
    """The astro-fleet program over ``namespace`` (default: every command)."""
    if namespace is None:
        from upgrade.cli.tasks import namespace as every
        namespace = every
    return FleetProgram(version=__version__, namespace=namespace, name=NAME, binary=NAME)


def main(argv: Any = None) -> None:
    """The ``astro-fleet`` console script."""
    program().run(argv)
