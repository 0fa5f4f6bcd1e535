"""YAML files read with their line numbers, so every refusal names ``file:line: key``.

The faults file and the seed file are read as node trees (``yaml.compose``, safe), each
value converted once it is checked.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from fleet_sim.errors import InputError, located


def compose(path: Path, what: str) -> yaml.Node | None:
    """The file's node tree (None for an empty file); InputError naming the line if it is
    not readable YAML."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        problem = f"cannot read the {what}: {exc.strerror}"
        raise InputError(located(path, None, "", problem)) from exc
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(located(path, line, "", f"not valid YAML: {problem}")) from exc


def line(node: yaml.Node) -> int:
    """The 1-based line a node starts on."""
    return node.start_mark.line + 1


class _JsonLoader(yaml.SafeLoader):
    """Safe types that JSON can carry too: a timestamp stays the text it was written as."""


_JsonLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def value(node: yaml.Node) -> object:
    """The plain Python value of a node (safe types only; timestamps as text)."""
    return yaml.load(yaml.serialize(node), Loader=_JsonLoader)


def mapping_items(node: yaml.Node) -> list[tuple[str, yaml.Node, int]]:
    """(key, value node, key line) of a mapping node's entries."""
    return [(str(k.value), v, line(k)) for k, v in node.value]
