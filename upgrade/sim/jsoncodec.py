"""JSON for ``astro-sim``, through CPython's ``_json`` accelerator without importing ``json``.

``import json`` imports ``re`` (and with it ``enum``) to compile a few patterns only its
pure-Python fallbacks use: about 12 ms of CPU on every ``astro-sim`` call, half of the
whole budget of a call (benchmarks/sim_cli.py). The C scanner and encoder that ``json``
itself uses when they exist are public enough for this; where they do not (PyPy), the
``json`` module serves. Output is the same as ``json.dumps``'s for the same arguments.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's own import would cost each call more than this module
if TYPE_CHECKING:
    from collections.abc import Callable

try:
    import _json
except ImportError:  # pragma: no cover - only interpreters without the accelerator
    _json = None  # type: ignore[assignment]

_WHITESPACE = " \t\n\r"


class _ScanContext:
    """What ``_json.make_scanner`` reads from a ``json.JSONDecoder``."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}[name]


_scan = _json.make_scanner(_ScanContext()) if _json else None


def loads(data: bytes | str) -> object:
    """``json.loads`` of UTF-8 bytes or text; raises ValueError when it is not one JSON value."""
    text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    if _scan is None:  # pragma: no cover
        import json

        return json.loads(text)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as exc:
        raise ValueError(f"Expecting value: char {exc.value}") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"Extra data: char {end}")
    return value


def _no_default(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(
    value: object,
    *,
    indent: int | None = None,
    ensure_ascii: bool = True,
    default: Callable[[object], object] = _no_default,
) -> str:
    """``json.dumps(value, indent=, ensure_ascii=, default=)`` (default separators)."""
    if _json is None:  # pragma: no cover
        import json

        return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, default=default)
    quote = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
    if indent is None:
        encode = _json.make_encoder({}, default, quote, None, ": ", ", ", False, False, True)
        return "".join(encode(value, 0))
    # The C encoder does not indent (json falls back to Python code for that); the
    # indented shape of json.dumps, written out.
    chunks: list[str] = []
    _indented(value, quote, default, " " * indent, "\n", chunks)
    return "".join(chunks)


def _indented(value: object, quote: Callable[[str], str], default: Callable[[object], object],
              step: str, newline: str, chunks: list[str]) -> None:
    if isinstance(value, str):
        chunks.append(quote(value))
    elif value is None:
        chunks.append("null")
    elif value is True:
        chunks.append("true")
    elif value is False:
        chunks.append("false")
    elif isinstance(value, int):
        chunks.append(int.__repr__(value))
    elif isinstance(value, float):
        chunks.append(_float(value))
    elif isinstance(value, dict):
        if not value:
            chunks.append("{}")
            return
        inner = newline + step
        chunks.append("{")
        for i, (key, item) in enumerate(value.items()):
            chunks.append(("," if i else "") + inner + quote(_key(key)) + ": ")
            _indented(item, quote, default, step, inner, chunks)
        chunks.append(newline + "}")
    elif isinstance(value, list | tuple):
        if not value:
            chunks.append("[]")
            return
        inner = newline + step
        chunks.append("[")
        for i, item in enumerate(value):
            chunks.append(("," if i else "") + inner)
            _indented(item, quote, default, step, inner, chunks)
        chunks.append(newline + "]")
    else:
        _indented(default(value), quote, default, step, newline, chunks)


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _key(key: object) -> str:
    # json.dumps turns these key types into strings; anything else is a TypeError.
    if isinstance(key, str):
        return key
    if key is True or key is False or key is None:
        return {True: "true", False: "false", None: "null"}[key]
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float):
        return _float(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
