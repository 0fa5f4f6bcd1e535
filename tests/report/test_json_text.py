"""The ``--json`` text is exactly what ``json.dumps(doc, indent=2)`` writes, for any document."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upgrade.report.json_text import dumps

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**40), 10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),  # any code point, lone surrogates and control characters included
)
keys = st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.none())
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(keys, inner, max_size=5),
    ),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_the_text_is_the_standard_librarys(doc: object) -> None:
    assert dumps(doc) == json.dumps(doc, indent=2)


def test_a_plan_shaped_document() -> None:
    doc = {
        "schema": "astro-fleet-upgrade/plan", "schema_version": 2,
        "targets": {"12.4": {"version": "12.4.0", "warnings": ["é → ü \u2028 \x00"]}},
        "summary": {"upgrade": 1, "noop": 0}, "findings": {},
        "deployments": [{"deployment": "a", "wave": 1, "deployed": None, "warnings": [],
                         "ok": True, "ratio": 0.1, "nan": math.nan,
                         "diff": "--- a/Dockerfile\n+++ b/Dockerfile\n\t\"x\"\\\n"}],
        1: "int key", 2.5: "float key", None: "null key", False: "bool key",
    }
    assert dumps(doc) == json.dumps(doc, indent=2)


@pytest.mark.parametrize("doc", [{"a": {1, 2}}, [object()], {(1, 2): "tuple key"}, b"bytes"])
def test_what_json_cannot_hold_is_the_same_type_error(doc: object) -> None:
    with pytest.raises(TypeError) as ours:
        dumps(doc)
    with pytest.raises(TypeError) as theirs:
        json.dumps(doc, indent=2)
    assert str(ours.value) == str(theirs.value)
