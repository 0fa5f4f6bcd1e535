"""Safe YAML loading that keeps line numbers, and the checks every loader shares.

``load`` composes the document with ``CSafeLoader`` (``SafeLoader`` when libyaml is
missing) and turns the node graph into a small tree of ``LMap``, ``LSeq`` and ``LScalar``,
each with ``.line`` (1-based), and every mapping key with its own line. Only the safe
YAML types are built: anything with a custom tag is a problem, never code.

``upgrade.config.checker`` validates such a tree, reporting every problem of a file at once.

Limits keep a hostile file from hanging or exhausting the process, each refused as a
located problem (exit 2) before anything reads the tree: the file's size
(``MAX_FILE_BYTES``), the nodes that aliases add when expanded (``MAX_ALIAS_NODES``: a
"billion laughs" file is a few lines that expand to billions of nodes), nesting depth
(``MAX_DEPTH``), and the length of one string (``MAX_STRING_CHARS``) or number
(``MAX_NUMBER_CHARS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from upgrade.errors import Problem, ProblemsError

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Far above any real inventory or playbook (10,000 Deployments are about 1.5 MB and
# nest 8 levels); far below what would take seconds or hundreds of MB to load.
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_ALIAS_NODES = 100_000
MAX_DEPTH = 64
MAX_STRING_CHARS = 65_536
MAX_NUMBER_CHARS = 100

_TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ, _MERGE, _VALUE = _TAG + "map", _TAG + "seq", _TAG + "merge", _TAG + "value"


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
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise error([Problem(file, None, "", "file not found. Check the path.")]) from None
    except IsADirectoryError:
        raise error([Problem(file, None, "", "is a directory, not a file. Check the path.")]
                    ) from None
    except OSError as exc:
        raise error([Problem(file, None, "", f"cannot read the file: {exc.strerror}.")]) from None
    return loads(data, file=file, error=error)


def loads(
    data: str | bytes, *, file: str, error: type[ProblemsError] = ProblemsError
) -> Located:
    """Like ``load``, from text already read; ``file`` names it in problems."""
    if len(data) > MAX_FILE_BYTES:
        newline = b"\n" if isinstance(data, bytes) else "\n"
        line = data[:MAX_FILE_BYTES].count(newline) + 1  # type: ignore[arg-type]
        raise error([Problem(file, line, "", f"the file is larger than {_size(MAX_FILE_BYTES)} "
                             "(the limit is reached at this line). Split the fleet, or remove "
                             "what does not belong in it.")])
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
    except RecursionError:
        # Only the pure-Python composer (no libyaml) recurses per level; libyaml refuses
        # nesting past 1,000 levels itself, with a line, above.
        raise error([Problem(file, None, "", f"the file nests deeper than {MAX_DEPTH} levels. "
                             "Flatten the structure.")]) from None
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
        # Nodes each aliased collection stands for once expanded (worked out only when an
        # alias is met; every collection stays alive in ``built``, so ids are not reused),
        # and how many nodes aliases have added so far: what a consumer of the tree walks.
        self.sizes: dict[int, int] = {}
        self.aliased = 0
        self.depth = 0

    def problem(self, node: Node, path: _Path, message: str, line: int | None = None) -> None:
        self.problems.append(Problem(self.file, line or node.start_mark.line + 1, _format(path),
                                     message))

    def build(self, node: Node, path: _Path, at: int | None = None) -> Located:
        """The located node of ``node``; ``at`` is the line that uses it (for an alias)."""
        cls = node.__class__
        if cls is ScalarNode:
            tag, text = node.tag, node.value
            if len(text) > MAX_NUMBER_CHARS and not self.short_enough(node, path):
                return LScalar(node.start_mark.line + 1, None, "", NULL)
            value = text if tag == STR else self.scalar(node, path)
            return LScalar(node.start_mark.line + 1, value, text, tag)
        ident = id(node)
        done = self.built.get(ident)
        if done is not None:
            self.expand(done, node, path, at)
            return done
        if ident in self.active:
            self.problem(node, path, "an alias refers to itself. Remove the recursive alias.")
            return LScalar(node.start_mark.line + 1, None, "", NULL)
        if self.depth >= MAX_DEPTH:
            self.problem(node, path, f"nested deeper than {MAX_DEPTH} levels. Flatten the "
                         "structure: nothing this tool reads nests that deep.")
            return LScalar(node.start_mark.line + 1, None, "", NULL)
        self.active.add(ident)
        self.depth += 1
        if cls is SequenceNode:
            result: Located = self.sequence(node, path)
        else:
            result = self.mapping(node, path)
        self.depth -= 1
        self.active.discard(ident)
        self.built[ident] = result
        return result

    def short_enough(self, node: ScalarNode, path: _Path) -> bool:
        """False (and a problem) for a number or string past its length limit."""
        text = node.value
        if node.tag in (INT, FLOAT):
            limit, what = MAX_NUMBER_CHARS, "number"
        elif len(text) > MAX_STRING_CHARS:
            limit, what = MAX_STRING_CHARS, "string"
        else:
            return True
        self.problem(node, path, f"a {what} of {len(text):,} characters ('{text[:20]}...'); "
                     f"the limit is {limit:,}. Shorten it.")
        return False

    def size(self, built: Located) -> int:
        """Nodes ``built`` stands for with every alias inside it expanded (memoised: a
        billion-node expansion is counted, never walked)."""
        if not isinstance(built, LMap | LSeq):
            return 1
        known = self.sizes.get(id(built))
        if known is None:
            children = built.items if isinstance(built, LSeq) else [
                value for _, value in built.entries.values()]
            known = self.sizes[id(built)] = 1 + sum(self.size(child) for child in children)
        return known

    def expand(self, built: Located, node: Node, path: _Path, at: int | None) -> None:
        """Count the nodes an alias to ``built`` adds; refuse past ``MAX_ALIAS_NODES``."""
        before = self.aliased
        self.aliased += self.size(built)
        if before <= MAX_ALIAS_NODES < self.aliased:
            self.problem(node, path, f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes "
                         "(the limit is passed at this alias). Write the values out, or "
                         "use fewer aliases of large anchors.", line=at)

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
        build, line = self.build, node.start_mark.line + 1
        items = [build(item, (path, _Index(i)), line) for i, item in enumerate(node.value)]
        return LSeq(line, items)

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
            if len(key_node.value) > MAX_NUMBER_CHARS and not self.short_enough(key_node, path):
                continue
            key = key_node.value if tag == STR else self.scalar(key_node, path)
            if key in entries:
                self.problem(
                    key_node,
                    (path, key),
                    f"duplicate key (first at line {entries[key][0]}). Remove one of them.",
                )
                continue
            line = key_node.start_mark.line + 1
            entries[key] = (line, build(value_node, (path, key), line))
        if inherited:
            for key, entry in inherited.items():
                entries.setdefault(key, entry)
        return LMap(node.start_mark.line + 1, entries)

    def merge(self, value: Node, path: _Path, into: dict[Any, tuple[int, Located]]) -> None:
        """YAML merge key ``<<``: explicit keys win, then sources in the order given."""
        sources = value.value if isinstance(value, SequenceNode) else [value]
        for source in sources:
            built = self.build(source, path, value.start_mark.line + 1)
            if not isinstance(built, LMap):
                self.problem(source, path, "'<<' needs a mapping or a list of mappings.")
                continue
            for key, entry in built.entries.items():
                into.setdefault(key, entry)


def _size(count: int) -> str:
    return f"{count // (1024 * 1024)} MiB"


def join(path: str, key: Any) -> str:
    """Key path of ``key`` under ``path``: ``repos.billing`` + ``path``."""
    return f"{path}.{key}" if path else str(key)


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
