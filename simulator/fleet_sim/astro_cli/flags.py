"""Command-line flags parsed the way spf13/pflag (under cobra) parses them.

So ``astro-sim`` accepts exactly what ``astro`` accepts (``-ojson``, ``-o=json``,
``--wait=false``, bundled shorthands such as ``-fw``) and refuses with cobra's own
messages, which argparse would word differently.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class FlagError(ValueError):
    """A flag cobra would refuse; the message is cobra's text."""


@dataclass(frozen=True)
class Flag:
    """One flag: ``kind`` is "bool", "string" or "duration" (a string parsed later)."""

    name: str
    short: str = ""
    kind: str = "string"
    default: object = None
    help: str = ""


@dataclass
class Parsed:
    """Flag values (by long name), which were given explicitly, and positionals."""

    values: dict[str, object]
    given: set[str] = field(default_factory=set)
    args: list[str] = field(default_factory=list)


HELP = Flag("help", "h", "bool", False, "help for this command")

# strconv.ParseBool
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _bool(text: str, shown: str) -> bool:
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise FlagError(f'invalid argument "{text}" for "{shown}" flag: '
                    f'strconv.ParseBool: parsing "{text}": invalid syntax')


def parse(argv: list[str], flags: list[Flag]) -> Parsed:
    """Parse ``argv`` against ``flags`` (plus -h/--help)."""
    flags = [*flags, HELP]
    by_long = {f.name: f for f in flags}
    by_short = {f.short: f for f in flags if f.short}
    parsed = Parsed({f.name: f.default for f in flags})
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            parsed.args.extend(rest)
            break
        if arg.startswith("--") and len(arg) > 2:
            _long(arg, rest, by_long, parsed)
        elif arg.startswith("-") and len(arg) > 1:
            _shorts(arg, rest, by_short, parsed)
        else:
            parsed.args.append(arg)
    return parsed


def _long(arg: str, rest: list[str], by_long: dict[str, Flag], parsed: Parsed) -> None:
    """``--name``, ``--name=value`` or ``--name value``."""
    name, eq, value = arg[2:].partition("=")
    flag = by_long.get(name)
    if flag is None:
        raise FlagError(f"unknown flag: --{name}")
    if flag.kind == "bool":
        parsed.values[name] = _bool(value, arg.partition("=")[0]) if eq else True
    elif eq:
        parsed.values[name] = value
    elif rest:
        parsed.values[name] = rest.pop(0)
    else:
        raise FlagError(f"flag needs an argument: --{name}")
    parsed.given.add(name)


def _shorts(arg: str, rest: list[str], by_short: dict[str, Flag], parsed: Parsed) -> None:
    """``-f``, bundled ``-fw``, ``-ojson``, ``-o=json``, ``-o json``, ``-w=false``."""
    letters = arg[1:]
    while letters:
        c, letters = letters[0], letters[1:]
        flag = by_short.get(c)
        if flag is None:
            raise FlagError(f"unknown shorthand flag: '{c}' in {arg}")
        parsed.given.add(flag.name)
        if flag.kind == "bool":
            if letters.startswith("="):
                parsed.values[flag.name] = _bool(letters[1:], f"-{c}")
                return
            parsed.values[flag.name] = True
        elif letters:
            parsed.values[flag.name] = letters.removeprefix("=")
            return
        elif rest:
            parsed.values[flag.name] = rest.pop(0)
            return
        else:
            raise FlagError(f"flag needs an argument: '{c}' in {arg}")


def usage_lines(flags: list[Flag]) -> str:
    """The ``Flags:`` block of cobra's help."""
    rows = []
    for f in [*flags, HELP]:
        short = f"-{f.short}, " if f.short else "    "
        kind = "" if f.kind == "bool" else f" {f.kind}"
        rows.append((f"  {short}--{f.name}{kind}", f.help))
    width = max(len(left) for left, _ in rows) + 3
    return "\n".join(left.ljust(width) + right for left, right in rows)
