"""Output the way astro-cli's Go libraries write it (stdlib only, import-cheap).

* YAML like gopkg.in/yaml.v3 with ``SetIndent(4)`` (``astro deployment inspect``).
* JSON like ``encoding/json`` ``MarshalIndent`` (HTML-escaped unless told not to).
* Values like ``fmt.Println`` (``inspect --key``): ``map[k:v]``, ``[a b]``, Go times.
* Tables like astro-cli's ``printutil.Table`` with dynamic padding.
* Durations like ``time.ParseDuration``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime


class GoTime:
    """A ``time.Time`` value: plain in YAML, RFC 3339 in JSON, Go's String() with --key."""

    __slots__ = ("stamp",)

    def __init__(self, stamp: datetime):
        self.stamp = stamp.astimezone(UTC)

    @classmethod
    def parse(cls, text: str) -> GoTime:
        """From an API timestamp such as ``2023-06-27T13:28:48.699Z``."""
        return cls(datetime.fromisoformat(text.replace("Z", "+00:00")))

    def _fraction(self) -> str:
        micro = self.stamp.microsecond
        return ("." + f"{micro:06d}".rstrip("0")) if micro else ""

    def rfc3339(self) -> str:
        """RFC3339Nano as Go marshals it (trailing zeros of the fraction dropped)."""
        return self.stamp.strftime("%Y-%m-%dT%H:%M:%S") + self._fraction() + "Z"

    def go_string(self) -> str:
        """``time.Time.String()`` for a UTC time."""
        return self.stamp.strftime("%Y-%m-%d %H:%M:%S") + self._fraction() + " +0000 UTC"


# ------------------------------------------------------------------ JSON
def _json_default(value: object) -> object:
    if isinstance(value, GoTime):
        return value.rfc3339()
    raise TypeError(f"cannot encode {type(value).__name__}")


def go_json(value: object, indent: int, escape_html: bool = True) -> str:
    """``json.MarshalIndent(value, "", <indent spaces>)``."""
    text = json.dumps(value, indent=indent, ensure_ascii=False, default=_json_default)
    if escape_html:
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text


# ------------------------------------------------------------------ YAML
_INT = re.compile(r"[-+]?(0|[1-9][0-9_]*|0[0-7_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+)")
_FLOAT = re.compile(
    r"[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
)
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?")
_RESERVED = {
    "",
    "~",
    "null",
    "Null",
    "NULL",
    "true",
    "True",
    "TRUE",
    "false",
    "False",
    "FALSE",
    "y",
    "Y",
    "yes",
    "Yes",
    "YES",
    "n",
    "N",
    "no",
    "No",
    "NO",
    "on",
    "On",
    "ON",
    "off",
    "Off",
    "OFF",
}
_INDICATORS = set("-?:,[]{}#&*!|>'\"%@`")


def _plain_ok(s: str) -> bool:
    if s in _RESERVED or _INT.fullmatch(s) or _FLOAT.fullmatch(s) or _TIMESTAMP.fullmatch(s):
        return False
    if s[0] in _INDICATORS or s[0] == " " or s[-1] in (" ", ":"):
        return False
    return ": " not in s and " #" not in s and "\t" not in s


def _yaml_scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, GoTime):
        return value.rfc3339()
    text = str(value)
    if _plain_ok(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def go_yaml(value: dict, indent: int = 4) -> str:
    """yaml.v3 output of a nested dict/list document."""
    lines: list[str] = []
    _yaml_mapping(value, 0, indent, lines)
    return "\n".join(lines) + "\n"


def _yaml_mapping(
    mapping: dict, col: int, step: int, lines: list[str], first_prefix: str = ""
) -> None:
    pad = " " * col
    for i, (key, value) in enumerate(mapping.items()):
        lead = first_prefix if (i == 0 and first_prefix) else pad
        _yaml_entry(f"{lead}{key}:", value, col, step, lines)


def _yaml_entry(head: str, value: object, col: int, step: int, lines: list[str]) -> None:
    if isinstance(value, dict):
        if not value:
            lines.append(f"{head} {{}}")
        else:
            lines.append(head)
            _yaml_mapping(value, col + step, step, lines)
    elif isinstance(value, list):
        if not value:
            lines.append(f"{head} []")
        else:
            lines.append(head)
            _yaml_sequence(value, col + step, step, lines)
    elif isinstance(value, str) and "\n" in value:
        lines.append(f"{head} |-")
        lines.extend(" " * (col + step) + line for line in value.split("\n"))
    else:
        lines.append(f"{head} {_yaml_scalar(value)}")


def _yaml_sequence(items: list, col: int, step: int, lines: list[str]) -> None:
    pad = " " * col
    for item in items:
        if isinstance(item, dict) and item:
            _yaml_mapping(item, col + 2, step, lines, first_prefix=pad + "- ")
        else:
            _yaml_entry(pad + "-", item, col, step, lines)


# ------------------------------------------------------------- fmt.Println
def go_value(value: object) -> str:
    """``fmt.Sprint`` of a value decoded into ``interface{}``."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, GoTime):
        return value.go_string()
    if isinstance(value, dict):
        inner = " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value))
        return f"map[{inner}]"
    if isinstance(value, list):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    return str(value)


# ------------------------------------------------------------------ table
def go_table(header: list[str], rows: list[list[str]]) -> str:
    """printutil.Table with DynamicPadding: each column is its widest cell + 5."""
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    out = []
    for row in [header, *rows]:
        out.append(" " + "".join(cell.ljust(widths[i] + 5) for i, cell in enumerate(row)))
    return "\n".join(out) + "\n"


# --------------------------------------------------------------- duration
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_go_duration(text: str) -> float:
    """``time.ParseDuration`` in seconds; raises ValueError with Go's message."""
    s = text
    sign = 1.0
    if s[:1] in ("-", "+"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    total, pos = 0.0, 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None or m.group(1) in ("", "."):
            unit = re.match(r"[0-9.]+([^0-9.]+)", s[pos:])
            if unit is not None:
                raise ValueError(f'time: unknown unit "{unit.group(1)}" in duration "{text}"')
            if re.fullmatch(r"[0-9.]+", s[pos:]):
                raise ValueError(f'time: missing unit in duration "{text}"')
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total
