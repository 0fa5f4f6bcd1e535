"""The checks every loader shares, over a located YAML tree: the one place problems are made.

``Checker`` collects located problems while a loader walks a tree from
``upgrade.config.located`` (unknown keys with a did-you-mean, wrong types, missing keys,
durations, references), so the user sees every problem of a file at once, each as
``file:line: key.path: problem. What to do.`` The inventory, its settings sections and the
playbook loader all use it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urlsplit

from upgrade.config.located import LMap, Located, LScalar, LSeq, join
from upgrade.errors import InputError, Problem, ProblemsError

# At most 9 digits a unit (31 years in seconds): int() never sees a number it refuses.
_DURATION = re.compile(r"(?:(\d{1,9})d)?(?:(\d{1,9})h)?(?:(\d{1,9})m)?(?:(\d{1,9})s)?")


def did_you_mean(word: str, choices: Collection[str]) -> str:
    """`` Did you mean 'x'?`` for the closest choice, or an empty string; never the word
    itself (a caller whose word is a choice has another problem to name)."""
    others = [c for c in choices if c != str(word)]
    close = difflib.get_close_matches(str(word), others, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def http_url_problem(text: str) -> str | None:
    """Why ``text`` is not an http(s) URL with a host, or None when it is one. It is
    parsed here as the HTTP clients will parse it (the port too), so a URL they would
    choke on halfway through a run is a located problem at load instead."""
    if any(c.isspace() or not c.isprintable() for c in text):
        return "it holds a space or a control character"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - reading it is the check: a bad port raises ValueError
    except ValueError as exc:
        return f"it does not parse as a URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return "it is not an http:// or https:// URL"
    if not parts.hostname:
        return "it has no host"
    return None


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``30s``, ``10m``, ``1h30m``, ``2d``; InputError otherwise."""
    value = text.strip()
    m = _DURATION.fullmatch(value)
    if not value or not m:
        raise InputError(f"'{text[:40]}' is not a duration. Write a number with units d, h, m, s, "
                         "largest first, e.g. 30s, 10m, 1h30m.")
    d, h, mins, s = (int(g or 0) for g in m.groups())
    return ((d * 24 + h) * 60 + mins) * 60 + s


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Checker:
    """Collects located problems for one file while its loader validates a tree.

    Getters take a mapping, a key and the mapping's key path. An absent key gives the
    default; a wrong value records a problem on the key's line and gives the default too,
    so validation carries on and reports everything at once.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, line: int | None, key: str, message: str) -> None:
        """Record one problem: ``file:line: key: message``."""
        self.problems.append(Problem(self.file, line, key, message))

    def locator(self, node: Located, path: str) -> Callable[[tuple[Any, ...], str], None]:
        """A function reporting problems at key paths below ``node`` (found at ``path``).

        For validators that walk plain data (``node.plain()``): ``locate(("checks", 0,
        "url"), message)`` records the problem on the line of the deepest key that exists,
        named ``path.checks[0].url``.
        """

        def locate(keys: tuple[Any, ...], message: str) -> None:
            line = node.line_of(*keys) if isinstance(node, LMap) else node.line
            where = path
            for key in keys:
                where = f"{where}[{key}]" if isinstance(key, int) else join(where, key)
            self.add(line, where, message)

        return locate

    def raise_if_any(self, error: type[ProblemsError]) -> None:
        """Raise ``error`` with every recorded problem, sorted by line; do nothing if none."""
        if self.problems:
            raise error(self.problems)

    def keys(
        self, node: LMap, allowed: Collection[str], path: str, *, required: Collection[str] = ()
    ) -> None:
        """Report keys outside ``allowed`` (with a did-you-mean) and missing required keys."""
        for key in node.entries:
            if key not in allowed:
                hint = did_you_mean(str(key), allowed) or f" Allowed keys: {', '.join(allowed)}."
                self.add(node.key_line(key), join(path, key), f"unknown key.{hint}")
        for key in required:
            if key not in node.entries:
                self.add(node.line, join(path, key), "required key is missing. Add it.")

    def expect(self, node: Located, cls: type, path: str, line: int | None = None) -> bool:
        """True if ``node`` is an instance of ``cls`` (LMap, LSeq); report it otherwise."""
        if isinstance(node, cls):
            return True
        self.add(line or node.line, path, f"must be {cls.kind}, got {node.kind}.")
        return False

    def _scalar(self, node: Located, path: str, line: int, want: str) -> Any:
        if isinstance(node, LScalar):
            return node.value
        self.add(line, path, f"must be {want}, got {node.kind}.")
        return None

    def mapping(self, m: LMap, key: str, path: str, *, required: bool = False) -> LMap | None:
        """The mapping under ``key`` (None when absent, null or wrong)."""
        node = self._get(m, key, path, required)
        if node.__class__ is LMap:
            return node  # type: ignore[return-value]
        if node is None or (isinstance(node, LScalar) and node.value is None):
            return None
        return node if self.expect(node, LMap, join(path, key), m.key_line(key)) else None

    def sequence(self, m: LMap, key: str, path: str) -> LSeq | None:
        """The list under ``key`` (None when absent, null or wrong)."""
        node = m.get(key)
        if node.__class__ is LSeq:
            return node  # type: ignore[return-value]
        if node is None or (isinstance(node, LScalar) and node.value is None):
            return None
        return node if self.expect(node, LSeq, join(path, key), m.key_line(key)) else None

    def string(
        self, m: LMap, key: str, path: str, *, required: bool = False, default: str | None = None
    ) -> str | None:
        """A non-empty string under ``key``."""
        entry = m.entries.get(key)
        if entry is None:
            self._get(m, key, path, required)
            return default
        node = entry[1]
        if node.__class__ is LScalar and node.value.__class__ is str and node.value.strip():
            return node.value  # the common case, without building a key path
        return self.as_string(node, join(path, key), entry[0], default=default)

    def as_string(
        self, node: Located, path: str, line: int, *, default: str | None = None
    ) -> str | None:
        """``node`` as a non-empty string; numbers and booleans must be quoted."""
        value = self._scalar(node, path, line, "a string")
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(node, LScalar):
            quote = " Quote it." if value is not None else ""
            self.add(line, path, f"must be a non-empty string, got {node.kind}.{quote}")
        return default

    def integer(
        self,
        m: LMap,
        key: str,
        path: str,
        *,
        default: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        """An integer under ``key``, within [minimum, maximum] when given."""
        node = m.get(key)
        if node is None:
            return default
        value = node.value if node.__class__ is LScalar else None  # type: ignore[attr-defined]
        if value.__class__ is int and (minimum is None or value >= minimum) and (
            maximum is None or value <= maximum
        ):
            return value  # the common case
        return self.as_integer(
            node, join(path, key), m.key_line(key), minimum=minimum, maximum=maximum,
            default=default,
        )

    def as_integer(
        self,
        node: Located,
        path: str,
        line: int,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        default: int | None = None,
    ) -> int | None:
        """``node`` as an integer within [minimum, maximum] when given."""
        value = self._scalar(node, path, line, "an integer")
        if not isinstance(node, LScalar):
            return default
        bounds = _bounds(minimum, maximum)
        if not _is_int(value) or (minimum is not None and value < minimum) or (
            maximum is not None and value > maximum
        ):
            self.add(line, path, f"must be an integer{bounds}, got {node.kind}.")
            return default
        return value

    def number(
        self, m: LMap, key: str, path: str, *, minimum: float, maximum: float
    ) -> float | None:
        """A number (integer or decimal) under ``key`` within [minimum, maximum]."""
        node = m.get(key)
        if node is None:
            return None
        line, full = m.key_line(key), join(path, key)
        value = self._scalar(node, full, line, "a number")
        if not isinstance(node, LScalar):
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
            minimum <= value <= maximum
        ):
            self.add(line, full, f"must be a number{_bounds(minimum, maximum)}, got {node.kind}.")
            return None
        return value

    def boolean(self, m: LMap, key: str, path: str, *, default: bool) -> bool:
        """``true`` or ``false`` under ``key``."""
        node = m.get(key)
        if node is None:
            return default
        line, full = m.key_line(key), join(path, key)
        value = self._scalar(node, full, line, "true or false")
        if isinstance(value, bool):
            return value
        if isinstance(node, LScalar):
            self.add(line, full, f"must be true or false, got {node.kind}.")
        return default

    def duration(self, m: LMap, key: str, path: str, *, default: int = 0) -> int:
        """Seconds under ``key``: a duration such as ``10m`` or ``1h30m``, or plain seconds."""
        node = m.get(key)
        if node is None:
            return default
        value = node.value if isinstance(node, LScalar) else None
        if _is_int(value) and value >= 0:
            return value
        try:
            if isinstance(value, str):
                return parse_duration(value)
            raise InputError(f"must be a duration such as 30s, 10m or 1h30m, got {node.kind}.")
        except InputError as exc:
            self.add(m.key_line(key), join(path, key), str(exc))
            return default

    def reference(
        self, name: str, line: int, path: str, known: Collection[str], kind: str, fix: str
    ) -> bool:
        """True if ``name`` is one of ``known``; else report it with a did-you-mean and ``fix``."""
        if name in known:
            return True
        self.add(line, path, f"unknown {kind} '{name}'.{did_you_mean(name, known)} {fix}")
        return False

    def strings(self, m: LMap, key: str, path: str) -> list[tuple[str, int]]:
        """A list of non-empty strings under ``key``, each with its line."""
        seq = self.sequence(m, key, path)
        if seq is None:
            return []
        out = []
        for i, item in enumerate(seq.items):
            if item.__class__ is LScalar and item.value.__class__ is str and item.value.strip():
                out.append((item.value, item.line))
                continue
            value = self.as_string(item, f"{join(path, key)}[{i}]", item.line)
            if value is not None:
                out.append((value, item.line))
        return out

    def vars(self, m: LMap, key: str, path: str) -> dict[str, Any]:
        """A mapping of string keys to any plain values (``vars:`` blocks)."""
        if key not in m.entries:
            return {}
        node = self.mapping(m, key, path)
        if node is None:
            return {}
        for name in node.entries:
            if name.__class__ is not str:
                self.add(node.key_line(name), join(join(path, key), name),
                         "variable names must be strings. Quote the name.")
        return node.plain()

    def _get(self, m: LMap, key: str, path: str, required: bool) -> Located | None:
        node = m.get(key)
        if node is None and required:
            self.add(m.line, join(path, key), "required key is missing. Add it.")
        return node


def _bounds(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {minimum} to {maximum}"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""
