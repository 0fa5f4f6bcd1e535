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
from collections.abc import Mapping
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
        """invoke's argv, with the global options where invoke looks for them and an
        optional positional value (``init DIR``) given its flag.

        invoke reads core options before the command and a command's flags after it; the
        options a person thinks of as global are taken on either side: ``-v`` and
        ``--log-file`` move before the command, ``--inventory`` (a flag of each command
        that reads one) after it. invoke only knows required positional arguments;
        ``init`` without a directory means the current one, so ``init DIR`` is read as
        ``init --dir DIR``.
        """
        super().normalize_argv(argv)
        from upgrade.cli.flags import COMMANDS

        self.argv = global_options_in_place(list(self.argv), COMMANDS)

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


# Core options that take a value (the token after them is not the command).
_CORE_VALUED = frozenset({"--log-file", "--list-format", "-F", "--list-depth", "-D"})
_CORE_SWITCHES = frozenset({"-v", "--verbose"})  # global switches a person may type after it
_COMMAND_GLOBALS = frozenset({"--inventory"})  # a command's flag a person may type before it


def global_options_in_place(argv: list[str], commands: Mapping[str, Any]) -> list[str]:
    """``argv`` (program name first) with ``-v``/``--log-file`` before the command,
    ``--inventory`` after it, and a command's optional positional value given its flag."""
    head, i = argv[:1], 1
    moved: list[str] = []  # --inventory given before the command
    while i < len(argv) and argv[i].startswith("-"):
        token = argv[i]
        name = token.split("=", 1)[0]
        takes = "=" not in token and i + 1 < len(argv)
        if name in _COMMAND_GLOBALS:
            moved.extend(argv[i:i + 2] if takes else [token])
            i += 2 if takes else 1
            continue
        head.append(token)
        if name in _CORE_VALUED and takes:
            head.append(argv[i + 1])
            i += 1
        i += 1
    if i >= len(argv):  # no command: nothing to move after it
        return head + moved
    name = argv[i]
    command = commands.get(name)
    valued = {f.option for f in command.flags if f.type != "bool"} if command else set()
    tail: list[str] = []
    rest = argv[i + 1:]
    j = 0
    while j < len(rest):
        token = rest[j]
        option = token.split("=", 1)[0]
        takes = "=" not in token and j + 1 < len(rest)
        if option in _CORE_SWITCHES:
            head.append(token)
        elif option == "--log-file":
            head.extend(rest[j:j + 2] if takes else [token])
            j += 1 if takes else 0
        elif option in valued and takes:
            tail.extend(rest[j:j + 2])
            j += 1
        else:
            tail.append(token)
        j += 1
    positional = next((f for f in command.flags if f.positional), None) if command else None
    if positional is not None and tail and not tail[0].startswith("-"):
        tail.insert(0, positional.option)
    return [*head, name, *moved, *tail]


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
