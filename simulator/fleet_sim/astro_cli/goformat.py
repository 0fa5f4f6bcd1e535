"""Output the way astro-cli's Go libraries write it.

* YAML like gopkg.in/yaml.v3 with ``SetIndent(4)`` (``astro deployment inspect``).
* JSON like ``encoding/json`` ``MarshalIndent`` (HTML-escaped unless told not to).
* Values like ``fmt.Println`` (``inspect --key``): ``map[k:v]``, ``[a b]``, Go times.
* Tables like astro-cli's ``printutil.Table`` with dynamic padding.
* Durations like ``time.ParseDuration``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class GoTime:
    """A ``time.Time`` value: plain in YAML, RFC 3339 in JSON, Go's String() with --key."""

    stamp: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "stamp", self.stamp.astimezone(UTC))

    @classmethod
    def parse(cls, text: str) -> GoTime:
        """From an API timestamp such as ``2023-06-27T13:28:48.699Z``."""
        return cls(datetime.fromisoformat(text))

    def _parts(self) -> tuple[str, str]:
        """(date and time of day, fraction of a second without trailing zeros)."""
        return (self.stamp.strftime("%Y-%m-%dT%H:%M:%S"),
                f"{self.stamp.microsecond:06d}".rstrip("0"))

    def rfc3339(self) -> str:
        """RFC3339Nano as Go marshals it (trailing zeros of the fraction dropped)."""
        day_time, fraction = self._parts()
        return day_time + ("." + fraction if fraction else "") + "Z"

    def go_string(self) -> str:
        """``time.Time.String()`` for a UTC time."""
        day_time, fraction = self._parts()
        return day_time.replace("T", " ") + ("." + fraction if fraction else "") + " +0000 UTC"


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
# yaml.v3's resolver patterns: a plain scalar matching one would read back as a number or
# a time, so such strings are quoted.
_RESOLVED = (
    re.compile(r"[-+]?(0|[1-9][0-9_]*|0[0-7_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+)"),
    re.compile(r"[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?"
               r"|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"),
    re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?"),
)


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
    if s in _RESERVED or any(p.fullmatch(s) for p in _RESOLVED):
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
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
          "h": 3600.0}
# One term of Go's [-+]?([0-9]*(\.[0-9]*)?[a-z]+)+ : a number (digits on at least one side of
# the point) and whatever up to the next digit or point is its unit.
_TERM = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")


def parse_go_duration(text: str) -> float:
    """``time.ParseDuration`` in seconds; raises ValueError with Go's message."""
    sign = -1.0 if text[:1] == "-" else 1.0
    rest = text[1:] if text[:1] in ("-", "+") else text
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0.0
    while rest:
        m = _TERM.match(rest)
        whole, fraction, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not fraction:
            raise ValueError(f'time: invalid duration "{text}"')
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        if unit not in _UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        total += float(f"{whole or 0}.{fraction or 0}") * _UNITS[unit]
        rest = rest[m.end():]
    return sign * total
