"""The package's floors: imports point one way, and no module imports itself round a cycle.

Every ``import`` in ``upgrade/`` counts, wherever it sits (module level, inside a function,
under ``TYPE_CHECKING``): a type-only import still ties the floors together. The contract:

    errors < model < config < hosts, journal < controlplane < plan < run < report < cli

A floor may import any floor below it, never one above it nor a sibling on its own level
(``hosts`` and ``journal`` know nothing of each other). The simulators (``simulator/``, the
``fleet_sim`` package) are another distribution: the product imports none of them and they
import nothing of the product. No module is over 600 lines (but those listed, each with who
splits it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "upgrade"
SIMULATOR = ROOT / "simulator" / "fleet_sim"

RANK = {
    "errors": 0,
    "model": 1,
    "config": 2,
    "hosts": 3,
    "journal": 3,
    "controlplane": 4,
    "plan": 5,
    "run": 6,
    "report": 7,
    "cli": 8,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path) -> set[str]:
    """The ``upgrade`` modules ``name`` imports (a package counts as its ``__init__``)."""
    tree = ast.parse(path.read_text("utf-8"))
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "upgrade":
                    found.add(_existing(alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != "upgrade":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else _existing(target))
    found.discard(name)
    return found


def _existing(dotted: str) -> str:
    parts = dotted.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    return ".".join(parts)


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def floor(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_is_on_a_floor():
    lost = [m for m in MODULES if m != "upgrade" and floor(m) not in RANK]
    assert not lost, f"modules outside every floor: {lost}; add them to a floor"


def test_imports_point_down():
    wrong = []
    for module, targets in GRAPH.items():
        here = floor(module)
        if here is None:
            continue
        for target in targets:
            there = floor(target)
            if there is None or there == here:
                continue
            if RANK[there] >= RANK[here]:
                wrong.append(f"{module} -> {target} ({here} may not import {there})")
    assert not wrong, "upward or sideways imports:\n" + "\n".join(sorted(wrong))


def top_level_imports(path: Path) -> set[str]:
    """The first name of every module ``path`` imports (absolute imports)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_product_knows_the_simulators_only_as_configuration():
    wrong = [str(p.relative_to(ROOT)) for p in sorted(PACKAGE.rglob("*.py"))
             if "fleet_sim" in top_level_imports(p)]
    assert not wrong, f"product modules importing the simulators: {wrong}"


def test_the_simulators_know_nothing_of_the_product():
    modules = sorted(SIMULATOR.rglob("*.py"))
    assert len(modules) > 20  # the tree is where this test thinks it is
    wrong = [str(p.relative_to(ROOT)) for p in modules if "upgrade" in top_level_imports(p)]
    assert not wrong, f"simulator modules importing the product: {wrong}"


# "Split before 600 lines": a module holds one noun.
MAX_LINES = 600


def test_no_module_is_over_600_lines():
    lengths = {str(p.relative_to(ROOT)): len(p.read_text("utf-8").splitlines())
               for p in sorted(PACKAGE.rglob("*.py"))}
    over = {name: n for name, n in lengths.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


def test_no_import_cycles():
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(graph, expected):
    assert _cycles(graph) == expected


def test_the_import_reader_sees_every_kind_of_import(tmp_path):
    assert "upgrade.model.versions" in GRAPH["upgrade.model.catalog"]
    # Imports inside functions count too (the session reaches the control plane lazily).
    assert "upgrade.controlplane.control_plane" in GRAPH["upgrade.run.session"]
    source = tmp_path / "m.py"
    source.write_text("import fleet_sim.lifecycle\ndef f():\n    from fleet_sim import ci\n")
    assert top_level_imports(source) == {"fleet_sim"}
