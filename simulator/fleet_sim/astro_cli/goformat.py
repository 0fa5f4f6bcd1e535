"""Output the way astro-cli's Go libraries write it (stdlib only, import-cheap).

* YAML like gopkg.in/yaml.v3 with ``SetIndent(4)`` (``astro deployment inspect``).
* JSON like ``encoding/json`` ``MarshalIndent`` (HTML-escaped unless told not to).
* Values like ``fmt.Println`` (``inspect --key``): ``map[k:v]``, ``[a b]``, Go times.
* Tables like astro-cli's ``printutil.Table`` with dynamic padding.
* Durations like ``time.ParseDuration``.
"""

from __future__ import annotations

from upgrade.sim import jsoncodec

TYPE_CHECKING = False  # typing's own import would cost every astro-sim call
if TYPE_CHECKING:
    from datetime import datetime


class GoTime:
    """A ``time.Time`` value: plain in YAML, RFC 3339 in JSON, Go's String() with --key."""

    __slots__ = ("_stamp", "_utc")

    # datetime is imported only where it is needed: its pure-Python class bodies cost a
    # command about 2 ms of CPU, and the API's own UTC stamps (``…T13:28:48.699Z``) are
    # reformatted as text.
    def __init__(self, stamp: datetime | None = None, *, utc: tuple[str, str] | None = None):
        if stamp is not None:
            from datetime import UTC

            stamp = stamp.astimezone(UTC)
        self._stamp = stamp
        self._utc = utc  # (date and time of day "YYYY-MM-DDTHH:MM:SS", fraction digits)

    @classmethod
    def parse(cls, text: str) -> GoTime:
        """From an API timestamp such as ``2023-06-27T13:28:48.699Z``."""
        utc = _plain_utc(text)
        if utc is not None:
            return cls(utc=utc)
        from datetime import datetime

        return cls(datetime.fromisoformat(text.replace("Z", "+00:00")))

    @property
    def stamp(self) -> datetime:
        """The time as an aware UTC datetime."""
        if self._stamp is None:
            from datetime import datetime

            assert self._utc is not None
            self._stamp = datetime.fromisoformat(f"{self._utc[0]}.{self._utc[1] or 0}+00:00")
        return self._stamp

    def _parts(self) -> tuple[str, str]:
        if self._utc is not None:
            return self._utc
        stamp = self.stamp
        return stamp.strftime("%Y-%m-%dT%H:%M:%S"), f"{stamp.microsecond:06d}".rstrip("0")

    def rfc3339(self) -> str:
        """RFC3339Nano as Go marshals it (trailing zeros of the fraction dropped)."""
        day_time, fraction = self._parts()
        return day_time + ("." + fraction if fraction else "") + "Z"

    def go_string(self) -> str:
        """``time.Time.String()`` for a UTC time."""
        day_time, fraction = self._parts()
        return day_time.replace("T", " ") + ("." + fraction if fraction else "") + " +0000 UTC"


_STAMP_SHAPE = "0000-00-00T00:00:00"


def _plain_utc(text: str) -> tuple[str, str] | None:
    """``YYYY-MM-DDTHH:MM:SS[.digits]Z`` as (date and time, fraction to µs without trailing
    zeros), else None: any other shape, and days past the 28th, are left to datetime."""
    day_time, rest = text[:19], text[19:]
    shape = "".join("0" if "0" <= c <= "9" else c for c in day_time)
    if shape != _STAMP_SHAPE or not rest.endswith("Z"):
        return None
    fraction = rest[1:-1]
    if rest != "Z" and not (rest[0] == "." and fraction.isascii() and fraction.isdigit()):
        return None
    month, day, hour, minute, second = (int(day_time[i : i + 2]) for i in (5, 8, 11, 14, 17))
    if not (1 <= month <= 12 and 1 <= day <= 28 and hour < 24 and minute < 60 and second < 60):
        return None
    return day_time, fraction[:6].rstrip("0")


# ------------------------------------------------------------------ JSON
def _json_default(value: object) -> object:
    if isinstance(value, GoTime):
        return value.rfc3339()
    raise TypeError(f"cannot encode {type(value).__name__}")


def go_json(value: object, indent: int, escape_html: bool = True) -> str:
    """``json.MarshalIndent(value, "", <indent spaces>)``."""
    text = jsoncodec.dumps(value, indent=indent, ensure_ascii=False, default=_json_default)
    if escape_html:
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text


# ------------------------------------------------------------------ YAML
# yaml.v3's resolver patterns, compiled on the first YAML output: ``re`` would cost every
# other command (and every deploy) about 8 ms of CPU to import.
_PATTERNS: list = []


def _resolver_patterns() -> list:
    if not _PATTERNS:
        import re

        _PATTERNS.extend((
            re.compile(r"[-+]?(0|[1-9][0-9_]*|0[0-7_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+)"),
            re.compile(r"[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?"
                       r"|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"),
            re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?"),
        ))
    return _PATTERNS


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
    if s in _RESERVED or any(p.fullmatch(s) for p in _resolver_patterns()):
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
    return jsoncodec.dumps(text, ensure_ascii=False)


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
    """``time.ParseDuration`` in seconds; raises ValueError with Go's message.

    A port of Go's scanner (``[-+]?([0-9]*(\\.[0-9]*)?[a-z]+)+``), step by step, so the
    same text fails with the same message; every ``astro-sim deploy`` parses its default.
    """
    invalid = ValueError(f'time: invalid duration "{text}"')
    s, sign = text, 1.0
    if s[:1] in ("-", "+"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise invalid
    total = 0.0
    while s:
        if not (s[0] == "." or "0" <= s[0] <= "9"):
            raise invalid
        whole, s = _leading_digits(s)
        fraction = ""
        if s[:1] == ".":
            fraction, s = _leading_digits(s[1:])
        if not whole and not fraction:
            raise invalid  # no digits, e.g. ".s"
        end = 0
        while end < len(s) and not (s[end] == "." or "0" <= s[end] <= "9"):
            end += 1
        if end == 0:
            raise ValueError(f'time: missing unit in duration "{text}"')
        unit, s = s[:end], s[end:]
        if unit not in _UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        total += float(f"{whole or 0}.{fraction or 0}") * _UNITS[unit]
    return sign * total


def _leading_digits(s: str) -> tuple[str, str]:
    end = 0
    while end < len(s) and "0" <= s[end] <= "9":
        end += 1
    return s[:end], s[end:]
