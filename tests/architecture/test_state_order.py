"""The order of a Deployment's states is spelled out once, in ``upgrade/journal/states.py``.

Every other module names states through its constants (``FORWARD``, ``RANK``,
``NOT_YET_DEPLOYED``, ``FINISHED``...): a collection literal naming two or more states
elsewhere is a second copy of the order, which drifts the day a state is added. (Result
words such as ``ok``/``failed``/``skipped`` in a report are another vocabulary.)
"""

from __future__ import annotations

import ast
from pathlib import Path

from upgrade.journal.states import STATES

PACKAGE = Path(__file__).resolve().parents[2] / "upgrade"
HOME = PACKAGE / "journal" / "states.py"


def _state_names(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Dict):
        items = [k for k in node.keys if k is not None]
    elif isinstance(node, ast.Tuple | ast.List | ast.Set):
        items = node.elts
    else:
        return set()
    words = {i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)}
    # A vocabulary mixing in other words ("ok", "running") is a result's, not the states'.
    return words if words <= set(STATES) else set()


def test_no_module_but_states_spells_out_states() -> None:
    copies = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == HOME:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = _state_names(node)
            if len(names) >= 2:
                copies.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: "
                              f"{sorted(names)}")
    assert not copies, "state names spelled out outside journal/states.py:\n" + "\n".join(copies)
