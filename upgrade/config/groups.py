"""Groups: named sets of Deployments, nested through ``children``, with vars and a wave."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from upgrade.config.checker import Checker
from upgrade.config.git import read_git_layer
from upgrade.config.located import LMap, LScalar, join
from upgrade.config.targets import Target, read_target

GROUP_KEYS = ("children", "vars", "wave", "target", "git")


@dataclass(frozen=True)
class Group:
    """A named set of Deployments; ``children`` nest, ``depth`` is 0 for top-level groups."""

    name: str
    children: tuple[str, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=dict, hash=False)
    wave: int | None = None
    depth: int = 0
    line: int | None = None
    target: Target | None = None
    #: The keys its ``git:`` sets and that mapping's line (None: it sets none).
    git: tuple[dict[str, Any], int] | None = field(default=None, hash=False)


@dataclass
class GroupTree:
    """The groups, and each group's parents (for membership closures)."""

    groups: dict[str, Group]
    parents: dict[str, list[str]]

    def closure(self) -> Callable[[tuple[str, ...]], frozenset[str]]:
        """A memoised function: direct groups -> those groups plus all their ancestors."""
        ancestors: dict[str, frozenset[str]] = {}
        memo: dict[tuple[str, ...], frozenset[str]] = {}
        groups, parents = self.groups, self.parents

        def up(g: str) -> frozenset[str]:
            if g not in ancestors:
                seen, todo = {g}, [g]
                while todo:
                    for p in parents.get(todo.pop(), ()):
                        if p not in seen:
                            seen.add(p)
                            todo.append(p)
                ancestors[g] = frozenset(seen)
            return ancestors[g]

        def closure(direct: tuple[str, ...]) -> frozenset[str]:
            if direct not in memo:
                memo[direct] = frozenset().union(*(up(g) for g in direct if g in groups))
            return memo[direct]

        return closure


def group_layers(
    groups: Mapping[str, Group], member_of: Iterable[str]
) -> list[tuple[str, Mapping[str, Any]]]:
    """Group variable layers in precedence order: shallower first, then by name."""
    ordered = sorted(member_of, key=lambda g: (groups[g].depth, g))
    return [(f"group {g}", groups[g].vars) for g in ordered]


def read_groups(
    c: Checker,
    top: LMap,
    name_ok: Callable[[object, str, int], bool],
    check_group: Callable[[str, int, str, Mapping[str, Any]], bool],
) -> GroupTree:
    """The ``groups:`` section: every group with its depth; cycles are problems."""
    m = c.mapping(top, "groups", "")
    groups: dict[str, Group] = {}
    children: dict[str, list[tuple[str, int]]] = {}
    for name, node in (m.items() if m else ()):
        path, line = join("groups", name), m.key_line(name)  # type: ignore[union-attr]
        if not name_ok(name, path, line):
            continue
        if isinstance(node, LScalar) and node.value is None:
            groups[name] = Group(name, line=line)  # declared, no settings
            children[name] = []
            continue
        if not c.expect(node, LMap, path, line):
            continue
        assert isinstance(node, LMap)
        c.keys(node, GROUP_KEYS, path)
        kids = c.strings(node, "children", path)
        children[name] = kids
        groups[name] = Group(
            name=name,
            children=tuple(child for child, _ in kids),
            vars=c.vars(node, "vars", path),
            wave=c.integer(node, "wave", path, minimum=1),
            line=line,
            target=read_target(c, node, path),
            git=read_git_layer(c, node, path),
        )
    for name, kids in children.items():
        for child, line in kids:
            check_group(child, line, f"groups.{name}.children", groups)
    return _with_depths(c, groups, m)


def _with_depths(c: Checker, groups: dict[str, Group], m: LMap | None) -> GroupTree:
    """Report group cycles; the groups with their depth (longest parent chain)."""
    kids = {g: [ch for ch in groups[g].children if ch in groups] for g in groups}
    parents: dict[str, list[str]] = {g: [] for g in groups}
    for g, chs in kids.items():
        for ch in chs:
            parents[ch].append(g)
    cycles: set[tuple[str, ...]] = set()
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(g: str) -> None:
        state[g] = 1
        stack.append(g)
        for ch in kids[g]:
            if state.get(ch) == 1:
                cycle = stack[stack.index(ch):]
                start = cycle.index(min(cycle))
                cycles.add(tuple(cycle[start:] + cycle[:start]))
            elif ch not in state:
                visit(ch)
        stack.pop()
        state[g] = 2

    for g in sorted(groups):
        if g not in state:
            visit(g)
    for cycle in sorted(cycles):
        first = cycle[0]
        line = m.get(first).key_line("children") if m else None  # type: ignore[union-attr]
        c.add(line, f"groups.{first}.children",
              f"groups form a cycle: {' -> '.join((*cycle, first))}. "
              "Remove one of these children.")
    depth: dict[str, int] = {}

    def depth_of(g: str, active: frozenset[str]) -> int:
        if g not in depth:
            depth[g] = max((depth_of(p, active | {g}) + 1 for p in parents[g]
                            if p not in active and p != g), default=0)
        return depth[g]

    with_depth = {g: replace(group, depth=depth_of(g, frozenset()))
                  for g, group in groups.items()}
    return GroupTree(with_depth, parents)
