"""Command-line flags parsed the way spf13/pflag (under cobra) parses them.

So ``astro-sim`` accepts exactly what ``astro`` accepts (``-ojson``, ``-o=json``,
``--wait=false``, bundled shorthands) and refuses with the same messages.
"""

from __future__ import annotations


class FlagError(ValueError):
    """A flag cobra would refuse; the message is cobra's text."""


class Flag:
    """One flag: kind is "bool", "string" or "duration" (a string parsed later).

    A plain class, not a dataclass: importing dataclasses costs the CLI 5 ms.
    """

    __slots__ = ("default", "help", "kind", "name", "short")

    def __init__(
        self,
        name: str,
        short: str = "",
        kind: str = "string",
        default: object = None,
        help: str = "",
    ):
        self.name, self.short, self.kind, self.default, self.help = name, short, kind, default, help


class Parsed:
    """Flag values (by long name), which were given explicitly, and positionals."""

    __slots__ = ("args", "given", "values")

    def __init__(self, values: dict[str, object]):
        self.values = values
        self.given: set[str] = set()
        self.args: list[str] = []


HELP = Flag("help", "h", "bool", False, "help for this command")

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _bool(flag: Flag, text: str, shown: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise FlagError(
        f'invalid argument "{text}" for "{shown}" flag: '
        f'strconv.ParseBool: parsing "{text}": invalid syntax'
    )


def parse(argv: list[str], flags: list[Flag]) -> Parsed:
    """Parse ``argv`` against ``flags`` (plus -h/--help)."""
    flags = [*flags, HELP]
    by_long = {f.name: f for f in flags}
    by_short = {f.short: f for f in flags if f.short}
    parsed = Parsed({f.name: f.default for f in flags})
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            parsed.args.extend(argv[i + 1 :])
            break
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            flag = by_long.get(name)
            if flag is None:
                raise FlagError(f"unknown flag: --{name}")
            shown = f"--{name}"
            if flag.kind == "bool":
                parsed.values[name] = _bool(flag, value, shown) if eq else True
            elif eq:
                parsed.values[name] = value
            elif i + 1 < len(argv):
                i += 1
                parsed.values[name] = argv[i]
            else:
                raise FlagError(f"flag needs an argument: {shown}")
            parsed.given.add(name)
        elif arg.startswith("-") and len(arg) > 1:
            shorts = arg[1:]
            j = 0
            while j < len(shorts):
                c = shorts[j]
                flag = by_short.get(c)
                if flag is None:
                    raise FlagError(f"unknown shorthand flag: '{c}' in {arg}")
                rest = shorts[j + 1 :]
                if flag.kind == "bool":
                    if rest.startswith("="):
                        parsed.values[flag.name] = _bool(flag, rest[1:], f"-{c}")
                        parsed.given.add(flag.name)
                        break
                    parsed.values[flag.name] = True
                    parsed.given.add(flag.name)
                    j += 1
                    continue
                if rest:
                    parsed.values[flag.name] = rest[1:] if rest.startswith("=") else rest
                elif i + 1 < len(argv):
                    i += 1
                    parsed.values[flag.name] = argv[i]
                else:
                    raise FlagError(f"flag needs an argument: '{c}' in {arg}")
                parsed.given.add(flag.name)
                break
        else:
            parsed.args.append(arg)
        i += 1
    return parsed


def usage_lines(flags: list[Flag]) -> str:
    """The ``Flags:`` block of cobra's help."""
    rows = []
    for f in [*flags, HELP]:
        short = f"-{f.short}, " if f.short else "    "
        kind = "" if f.kind == "bool" else f" {f.kind}"
        rows.append((f"  {short}--{f.name}{kind}", f.help))
    width = max(len(r[0]) for r in rows) + 3
    return "\n".join(left.ljust(width) + right for left, right in rows)
