"""Safe YAML loading that keeps line numbers, and the checks every loader shares.

``load`` composes the document with ``CSafeLoader`` (``SafeLoader`` when libyaml is
missing) and turns the node graph into a small tree of ``LMap``, ``LSeq`` and ``LScalar``,
each with ``.line`` (1-based), and every mapping key with its own line. Only the safe
YAML types are built: anything with a custom tag is a problem, never code.

``Checker`` collects located problems while a loader walks that tree (unknown keys with a
did-you-mean, wrong types, missing keys) so the user sees every problem of a file at once.
The inventory and playbook loaders both use it.
"""

from __future__ import annotations

import difflib
import gc
import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from upgrade.errors import InputError, Problem, ProblemsError

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ, _MERGE, _VALUE = _TAG + "map", _TAG + "seq", _TAG + "merge", _TAG + "value"
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


_WILDCARD = tuple(_BaseLoader.yaml_implicit_resolvers.get(None, ()))
_BY_FIRST = {
    first: tuple(resolvers) + _WILDCARD
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    if first is not None
}


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """The safe loader with a leaner implicit-tag resolver.

    The composer calls ``resolve`` once per node, so on a 10,000-Deployment inventory the
    stock version is a third of the compose time. Same rules, same tags: the implicit
    resolvers of the safe loader, looked up by first character.
    """

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            if implicit[0]:
                for tag, regexp in _BY_FIRST.get(value[:1], _WILDCARD):
                    if regexp.match(value):
                        return tag
            return STR
        return _SEQ if kind is SequenceNode else _MAP

    # Path resolvers (yaml.add_path_resolver) are not supported: skip their bookkeeping.
    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


class Located:
    """A node of a loaded YAML document; ``line`` is 1-based."""

    __slots__ = ("line",)
    kind = "a value"

    def __init__(self, line: int) -> None:
        self.line = line

    def plain(self) -> Any:
        """The node as plain Python data (dicts, lists, scalars)."""
        raise NotImplementedError


class LScalar(Located):
    """A scalar; ``text`` is the value as written (``12.10`` stays ``"12.10"``)."""

    __slots__ = ("tag", "text", "value")

    def __init__(self, line: int, value: Any, text: str, tag: str) -> None:
        self.line, self.value, self.text, self.tag = line, value, text, tag

    @property
    def kind(self) -> str:  # type: ignore[override]
        return _describe_scalar(self.value)

    def plain(self) -> Any:
        return self.value


class LSeq(Located):
    """A sequence of located nodes."""

    __slots__ = ("items",)
    kind = "a list"

    def __init__(self, line: int, items: list[Located]) -> None:
        self.line, self.items = line, items

    def __iter__(self) -> Iterator[Located]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def plain(self) -> list[Any]:
        return [item.plain() for item in self.items]


class LMap(Located):
    """A mapping that remembers the line of each key; iterates keys in file order."""

    __slots__ = ("entries",)
    kind = "a mapping"

    def __init__(self, line: int, entries: dict[Any, tuple[int, Located]]) -> None:
        self.line, self.entries = line, entries

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def __iter__(self) -> Iterator[Any]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: Any) -> Located | None:
        """The value node under ``key``, or None."""
        entry = self.entries.get(key)
        return entry[1] if entry else None

    def key_line(self, key: Any) -> int:
        """The line of ``key`` itself, or of the mapping when the key is absent."""
        entry = self.entries.get(key)
        return entry[0] if entry else self.line

    def items(self) -> Iterator[tuple[Any, Located]]:
        """(key, value node) pairs in file order."""
        for key, (_, node) in self.entries.items():
            yield key, node

    def line_of(self, *path: Any) -> int | None:
        """Line of the deepest key (or list index) of ``path`` that exists."""
        node: Located = self
        line: int | None = self.line
        for step in path:
            if isinstance(node, LMap) and step in node.entries:
                line, node = node.entries[step]
            elif isinstance(node, LSeq) and isinstance(step, int) and 0 <= step < len(node):
                node = node.items[step]
                line = node.line
            else:
                break
        return line

    def plain(self) -> dict[Any, Any]:
        return {key: node.plain() for key, (_, node) in self.entries.items()}


def load(
    path: Path, *, error: type[ProblemsError] = ProblemsError, display: str | None = None
) -> Located:
    """Load ``path`` safely with line numbers; raise ``error`` listing every problem found.

    An empty file (or one holding only comments) loads as a null ``LScalar`` on line 1.
    """
    file = display or str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise error([Problem(file, None, "", "file not found. Check the path.")]) from None
    except OSError as exc:
        raise error([Problem(file, None, "", f"cannot read the file: {exc.strerror}.")]) from None
    return loads(data, file=file, error=error)


def loads(
    data: str | bytes, *, file: str, error: type[ProblemsError] = ProblemsError
) -> Located:
    """Like ``load``, from text already read; ``file`` names it in problems."""
    with paused_gc():
        return _loads(data, file, error)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic GC while building many small acyclic objects.

    Building ~10^5 nodes otherwise triggers thousands of collections and makes a large
    file load about four times slower. Re-entrant; restores the previous state.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _loads(data: str | bytes, file: str, error: type[ProblemsError]) -> Located:
    loader = _Loader(data)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise error([_syntax_problem(file, exc)]) from None
    except yaml.reader.ReaderError as exc:
        newline = b"\n" if isinstance(data, bytes) else "\n"
        line = data[: exc.position].count(newline) + 1  # type: ignore[arg-type]
        raise error([Problem(file, line, "", f"the text is not valid UTF-8 or holds a control "
                             f"character ({exc.reason}). Save the file as UTF-8.")]) from None
    except yaml.YAMLError as exc:
        raise error([Problem(file, None, "", f"invalid YAML: {exc}. Fix the syntax.")]) from None
    finally:
        loader.dispose()
    if node is None:
        return LScalar(1, None, "", NULL)
    builder = _Builder(file)
    root = builder.build(node, None)
    if builder.problems:
        raise error(builder.problems)
    return root


def _syntax_problem(file: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    what = exc.problem or "syntax error"
    if exc.context:
        what = f"{what} ({exc.context}"
        if exc.context_mark and mark is not exc.context_mark:
            what += f" at line {exc.context_mark.line + 1}"
        what += ")"
    line = mark.line + 1 if mark else None
    return Problem(file, line, "", f"invalid YAML: {what}. Fix the syntax at this line.")


# A key path while building: nested (parent, key) pairs, formatted only for a problem.
_Path = tuple[Any, Any] | None


def _format(path: _Path) -> str:
    keys: list[Any] = []
    while path is not None:
        path, key = path
        keys.append(key)
    text = ""
    for key in reversed(keys):
        text = f"{text}[{key.index}]" if isinstance(key, _Index) else join(text, key)
    return text


class _Index:
    """A list position inside a key path (kept apart from integer mapping keys)."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class _Builder:
    """Turns composed YAML nodes into located nodes, collecting problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.constructor = SafeConstructor()
        # Aliases share one node object: build a collection once, and catch self-reference.
        self.built: dict[int, Located] = {}
        self.active: set[int] = set()

    def problem(self, node: Node, path: _Path, message: str) -> None:
        self.problems.append(Problem(self.file, node.start_mark.line + 1, _format(path), message))

    def build(self, node: Node, path: _Path) -> Located:
        cls = node.__class__
        if cls is ScalarNode:
            tag = node.tag
            value = node.value if tag == STR else self.scalar(node, path)
            return LScalar(node.start_mark.line + 1, value, node.value, tag)
        ident = id(node)
        done = self.built.get(ident)
        if done is not None:
            return done
        if ident in self.active:
            self.problem(node, path, "an alias refers to itself. Remove the recursive alias.")
            return LScalar(node.start_mark.line + 1, None, "", NULL)
        self.active.add(ident)
        if cls is SequenceNode:
            result: Located = self.sequence(node, path)
        else:
            result = self.mapping(node, path)
        self.active.discard(ident)
        self.built[ident] = result
        return result

    def scalar(self, node: ScalarNode, path: _Path) -> Any:
        if node.tag == STR or node.tag == _VALUE:
            # A bare "=" resolves to the YAML 1.1 value tag, which safe_load cannot build.
            return node.value
        construct = self.constructor.yaml_constructors.get(node.tag)
        if construct is None or node.tag == _MERGE:
            self.unsupported(node, path)
            return node.value
        try:
            return construct(self.constructor, node)
        except (ConstructorError, ValueError) as exc:
            self.problem(node, path, f"cannot read '{node.value}': {exc}. Fix the value.")
            return node.value

    def unsupported(self, node: Node, path: _Path) -> None:
        self.problem(
            node,
            path,
            f"unsupported YAML tag '{node.tag}'. Use plain strings, numbers, booleans, "
            "lists and mappings.",
        )

    def sequence(self, node: SequenceNode, path: _Path) -> LSeq:
        if node.tag != _SEQ:
            self.unsupported(node, path)
        build = self.build
        items = [build(item, (path, _Index(i))) for i, item in enumerate(node.value)]
        return LSeq(node.start_mark.line + 1, items)

    def mapping(self, node: MappingNode, path: _Path) -> LMap:
        if node.tag != _MAP:
            self.unsupported(node, path)
        entries: dict[Any, tuple[int, Located]] = {}
        inherited: dict[Any, tuple[int, Located]] | None = None
        build = self.build
        for key_node, value_node in node.value:
            tag = key_node.tag
            if tag == _MERGE:
                inherited = inherited or {}
                self.merge(value_node, path, inherited)
                continue
            if key_node.__class__ is not ScalarNode:
                self.problem(key_node, path, "a key must be a plain scalar. Use a string key.")
                continue
            key = key_node.value if tag == STR else self.scalar(key_node, path)
            if key in entries:
                self.problem(
                    key_node,
                    (path, key),
                    f"duplicate key (first at line {entries[key][0]}). Remove one of them.",
                )
                continue
            entries[key] = (key_node.start_mark.line + 1, build(value_node, (path, key)))
        if inherited:
            for key, entry in inherited.items():
                entries.setdefault(key, entry)
        return LMap(node.start_mark.line + 1, entries)

    def merge(self, value: Node, path: _Path, into: dict[Any, tuple[int, Located]]) -> None:
        """YAML merge key ``<<``: explicit keys win, then sources in the order given."""
        sources = value.value if isinstance(value, SequenceNode) else [value]
        for source in sources:
            built = self.build(source, path)
            if not isinstance(built, LMap):
                self.problem(source, path, "'<<' needs a mapping or a list of mappings.")
                continue
            for key, entry in built.entries.items():
                into.setdefault(key, entry)


def join(path: str, key: Any) -> str:
    """Key path of ``key`` under ``path``: ``repos.billing`` + ``path``."""
    return f"{path}.{key}" if path else str(key)


def did_you_mean(word: str, choices: Collection[str]) -> str:
    """`` Did you mean 'x'?`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``30s``, ``10m``, ``1h30m``, ``2d``; InputError otherwise."""
    value = text.strip()
    m = _DURATION.fullmatch(value)
    if not value or not m:
        raise InputError(f"'{text}' is not a duration. Write a number with units d, h, m, s, "
                         "largest first, e.g. 30s, 10m, 1h30m.")
    d, h, mins, s = (int(g or 0) for g in m.groups())
    return ((d * 24 + h) * 60 + mins) * 60 + s


def _describe_scalar(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string '{value}'"
    return f"'{value}'"


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
