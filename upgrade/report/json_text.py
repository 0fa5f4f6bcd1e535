"""The text of a ``--json`` document, and printing it.

The text is ``json.dumps(doc, indent=2)``, character for character. The standard library
encodes indented JSON in pure Python, a generator step per token (its C encoder ignores
``indent``): 150-170 ms for the 7.5 MB plan of 10,000 Deployments. This encoder makes the
same text with the C string escaper and one list of parts, in 65-100 ms: the same
indentation, ``", "`` and ``": "`` separators, escapes (``ensure_ascii``), key order,
spelling of numbers, NaN and infinities, and the same TypeError for a value JSON cannot
hold. Only ``json.dumps(doc, indent=2)`` is replicated, no other option; and a document
that contains itself (which no command builds) ends in RecursionError, not ValueError.
"""

from __future__ import annotations

import sys
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from upgrade.model.redact import redact

_INDENT = "  "


def print_json(doc: Any) -> None:
    """A JSON document on stdout (redacted: a secret that reached a message stays hidden).

    Apart from the consoles (``upgrade.report.console``), so ``--json`` does not import
    rich for a document that is plain text.
    """
    sys.stdout.write(redact(dumps(doc)) + "\n")
    sys.stdout.flush()


def dumps(doc: Any) -> str:
    """``json.dumps(doc, indent=2)``, faster; the same text for every document it accepts."""
    parts: list[str] = []
    _encode(doc, parts, "\n")
    return "".join(parts)


def _encode(value: Any, parts: list[str], newline: str) -> None:
    """Append ``value``'s text; ``newline`` is a line break and the current indentation."""
    if isinstance(value, str):
        parts.append(encode_basestring_ascii(value))
    elif isinstance(value, dict):
        if not value:
            parts.append("{}")
            return
        inner = newline + _INDENT
        opening, separator = "{" + inner, "," + inner
        for key, item in value.items():
            name = encode_basestring_ascii(key if isinstance(key, str) else _key(key))
            if isinstance(item, str):  # most values: one part, no call
                parts.append(f"{opening}{name}: {encode_basestring_ascii(item)}")
            else:
                parts.append(f"{opening}{name}: ")
                _encode(item, parts, inner)
            opening = separator
        parts.append(newline + "}")
    elif isinstance(value, list | tuple):
        if not value:
            parts.append("[]")
            return
        inner = newline + _INDENT
        opening, separator = "[" + inner, "," + inner
        for item in value:
            parts.append(opening)
            opening = separator
            _encode(item, parts, inner)
        parts.append(newline + "]")
    else:
        parts.append(_scalar(value))


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float(value)
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value == float("inf"):
        return "Infinity"
    if value == -float("inf"):
        return "-Infinity"
    return float.__repr__(value)


def _key(key: Any) -> str:
    """A non-string key as ``json.dumps`` writes it (skipkeys=False)."""
    if isinstance(key, float):
        return _float(key)
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {key.__class__.__name__}")
