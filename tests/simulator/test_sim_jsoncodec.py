"""sim/jsoncodec writes what json.dumps writes and reads what json.loads reads."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upgrade.sim import jsoncodec

SCALARS = (st.none() | st.booleans() | st.integers()
           | st.floats(allow_nan=False) | st.text())
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(VALUES, st.sampled_from([None, 2, 4]), st.booleans())
def test_dumps_is_json_dumps(value: object, indent: int | None, ascii_only: bool) -> None:
    assert jsoncodec.dumps(value, indent=indent, ensure_ascii=ascii_only) == json.dumps(
        value, indent=indent, ensure_ascii=ascii_only)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_loads_reads_what_json_writes(value: object) -> None:
    text = json.dumps(value, indent=2)
    assert jsoncodec.loads(text) == value
    assert jsoncodec.loads(("\n " + text + " \n").encode()) == value


@pytest.mark.parametrize("text", ["", "  ", "{", "[1,]", "1 2", "nul", '{"a":1}x'])
def test_what_json_refuses_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        jsoncodec.loads(text)


def test_default_and_keys_as_json_dumps_treats_them() -> None:
    class Stamp:
        pass

    doc = {1: Stamp(), 2.5: [Stamp()], None: True, False: "x"}
    for indent in (None, 2):
        assert jsoncodec.dumps(doc, indent=indent, default=lambda _: "s") == json.dumps(
            doc, indent=indent, default=lambda _: "s")
    with pytest.raises(TypeError):
        jsoncodec.dumps({"x": Stamp()}, indent=2)
