"""One error map: every exception a user can see is in errors.py's drawn tree, with its code."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from upgrade import errors

PACKAGE = Path(__file__).resolve().parents[2] / "upgrade"
DOCUMENTED_CODES = {0, 1, 2, 3, 4, 5, 6, 7, 130}


def test_signals_are_never_errors():
    assert not issubclass(errors.Signal, errors.UpgradeError)


def error_classes() -> dict[str, type]:
    return {name: obj for name, obj in vars(errors).items()
            if inspect.isclass(obj) and issubclass(obj, errors.UpgradeError)}


def drawn_tree() -> dict[str, tuple[str | None, int | None]]:
    """Class name -> (parent drawn above it, exit code drawn in brackets) from the docstring."""
    doc = errors.__doc__ or ""
    stack: list[tuple[int, str]] = []
    found: dict[str, tuple[str | None, int | None]] = {}
    for line in doc.splitlines():
        m = re.match(r"^(\s*)(?:[│ ]*)(?:[├└]── )?([A-Z]\w+)(?: \[(\d+)\])?", line)
        if not m or not line.startswith("    ") or ("──" not in line and not line.strip().startswith(
                "UpgradeError")):
            continue
        depth = line.find(m.group(2))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1] if stack else None
        found[m.group(2)] = (parent, int(m.group(3)) if m.group(3) else None)
        stack.append((depth, m.group(2)))
    return found


def test_the_drawing_lists_exactly_the_classes():
    assert set(drawn_tree()) == set(error_classes())


def test_the_drawing_agrees_with_the_classes():
    for name, (parent, code) in drawn_tree().items():
        cls = error_classes()[name]
        if parent is not None:
            assert error_classes()[parent] in cls.__mro__[1:], f"{name} is drawn under {parent}"
        if code is not None:
            assert cls.exit_code == code, f"{name} is drawn with [{code}]"


def test_every_class_maps_to_a_documented_exit_code():
    for name, cls in error_classes().items():
        assert cls.exit_code in DOCUMENTED_CODES, name
    assert errors.ServiceError.exit_code == 7 and errors.UpgradeError.exit_code == 1


def test_no_module_outside_errors_defines_an_error_a_user_can_see():
    """A module may keep control-flow signals (errors.Signal, or private to it); an exception
    that can reach the command line lives in errors.py."""
    stray = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "errors.py":
            continue
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                continue
            bases = {ast.unparse(b) for b in node.bases}
            if bases & {"Signal", "errors.Signal"}:
                continue
            if any(b.endswith(("Error", "Exception", "Refusal", "Failed")) for b in bases):
                stray.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}")
    assert not stray, "exceptions outside errors.py:\n" + "\n".join(stray)
