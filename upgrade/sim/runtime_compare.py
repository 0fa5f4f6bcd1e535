"""A line-by-line port of astro-cli's Runtime version ordering.

Ported from ``astronomer/astro-cli airflow_versions/runtime_versions.go``
(``CompareRuntimeVersions``, ``AirflowMajorVersionForRuntimeVersion``) and the
parts of ``golang.org/x/mod/semver`` it relies on. The simulator must behave
like Astro, so it deliberately does not use the project's own version model.

Go's ``\\d`` is ASCII-only and its ``$`` anchors at the very end of the text,
hence ``[0-9]`` and ``fullmatch`` below.
"""

from __future__ import annotations

import re
from functools import cache

_NEW_FORMAT = re.compile(r"([0-9]+)\.([0-9]+)-([0-9]+)(?:[.-](.+))?", re.DOTALL)


# (major, minor, patch, prerelease-with-leading-"-" or ""); a plain tuple keeps
# the CLI's import time low (no dataclasses/inspect).
_Semver = tuple[str, str, str, str]


def _is_ident_char(c: str) -> bool:
    return ("0" <= c <= "9") or ("a" <= c <= "z") or ("A" <= c <= "Z") or c == "-"


def _is_num(s: str) -> bool:
    return s != "" and all("0" <= c <= "9" for c in s)


def _is_bad_num(s: str) -> bool:
    # x/mod semver: a numeric identifier with a leading zero is invalid.
    return len(s) > 1 and s[0] == "0" and _is_num(s)


def _parse_int(v: str) -> tuple[str, str] | None:
    i = 0
    while i < len(v) and "0" <= v[i] <= "9":
        i += 1
    if i == 0 or (v[0] == "0" and i != 1):
        return None
    return v[:i], v[i:]


def _parse_prerelease(v: str) -> tuple[str, str] | None:
    if not v or v[0] != "-":
        return None
    i, start = 1, 1
    while i < len(v) and v[i] != "+":
        if not _is_ident_char(v[i]) and v[i] != ".":
            return None
        if v[i] == ".":
            if start == i or _is_bad_num(v[start:i]):
                return None
            start = i + 1
        i += 1
    if start == i or _is_bad_num(v[start:i]):
        return None
    return v[:i], v[i:]


def _parse_build(v: str) -> tuple[str, str] | None:
    if not v or v[0] != "+":
        return None
    i, start = 1, 1
    while i < len(v):
        if not _is_ident_char(v[i]) and v[i] != ".":
            return None
        if v[i] == ".":
            if start == i:
                return None
            start = i + 1
        i += 1
    if start == i:
        return None
    return v[:i], v[i:]


# A deploy orders every version of the release feed (hundreds of comparisons of the same
# few strings); parsing each string once halves the command's own work.
@cache
def _parse(v: str) -> _Semver | None:
    """x/mod semver.parse: ``vX``, ``vX.Y`` shorthands; prerelease only after X.Y.Z."""
    if not v or v[0] != "v":
        return None
    got = _parse_int(v[1:])
    if got is None:
        return None
    major, rest = got
    if rest == "":
        return (major, "0", "0", "")
    if rest[0] != ".":
        return None
    got = _parse_int(rest[1:])
    if got is None:
        return None
    minor, rest = got
    if rest == "":
        return (major, minor, "0", "")
    if rest[0] != ".":
        return None
    got = _parse_int(rest[1:])
    if got is None:
        return None
    patch, rest = got
    prerelease = ""
    if rest and rest[0] == "-":
        got = _parse_prerelease(rest)
        if got is None:
            return None
        prerelease, rest = got
    if rest and rest[0] == "+":
        got = _parse_build(rest)
        if got is None:
            return None
        rest = got[1]
    if rest != "":
        return None
    return (major, minor, patch, prerelease)


def _compare_int(x: str, y: str) -> int:
    if x == y:
        return 0
    if len(x) != len(y):
        return -1 if len(x) < len(y) else 1
    return -1 if x < y else 1


def _compare_prerelease(x: str, y: str) -> int:
    if x == y:
        return 0
    if x == "":
        return 1
    if y == "":
        return -1
    xs, ys = x[1:].split("."), y[1:].split(".")
    for dx, dy in zip(xs, ys, strict=False):
        if dx == dy:
            continue
        nx, ny = _is_num(dx), _is_num(dy)
        if nx != ny:
            return -1 if nx else 1
        if nx:
            return _compare_int(dx, dy)
        return -1 if dx < dy else 1
    if len(xs) == len(ys):
        return 0
    return -1 if len(xs) < len(ys) else 1


def semver_compare(v: str, w: str) -> int:
    """golang.org/x/mod/semver.Compare (both arguments carry the leading ``v``)."""
    pv, pw = _parse(v), _parse(w)
    if pv is None and pw is None:
        return 0
    if pv is None:
        return -1
    if pw is None:
        return 1
    for a, b in zip(pv[:3], pw[:3], strict=True):
        c = _compare_int(a, b)
        if c:
            return c
    return _compare_prerelease(pv[3], pw[3])


def _strip_v(version: str) -> str:
    return version[1:] if version.startswith("v") else version


def is_new_format(version: str) -> bool:
    """True for Airflow 3 era ``A.B-N[...]`` strings (no ``v`` stripping, as in Go)."""
    return _NEW_FORMAT.fullmatch(version) is not None


def _normalize(version: str) -> str:
    m = _NEW_FORMAT.fullmatch(version)
    if m is None:
        return version
    out = f"{m.group(1)}.{m.group(2)}.{m.group(3)}"
    return out + "-" + m.group(4) if m.group(4) else out


def is_valid_runtime_version(version: str) -> bool:
    """astro-cli isValidRuntimeVersion."""
    return _parse("v" + _normalize(_strip_v(version))) is not None


def compare_runtime_versions(v1: str, v2: str) -> int:
    """astro-cli CompareRuntimeVersions: -1, 0 or 1."""
    valid1, valid2 = is_valid_runtime_version(v1), is_valid_runtime_version(v2)
    if not valid1 and not valid2:
        return 0
    if not valid1:
        return -1
    if not valid2:
        return 1
    v1, v2 = _strip_v(v1), _strip_v(v2)
    new1, new2 = is_new_format(v1), is_new_format(v2)
    if new1 and not new2:
        return 1
    if new2 and not new1:
        return -1
    return semver_compare("v" + _normalize(v1), "v" + _normalize(v2))


def runtime_version_major(version: str) -> str:
    """astro-cli RuntimeVersionMajor: the semver major, or "" if invalid."""
    parsed = _parse("v" + _normalize(_strip_v(version)))
    return parsed[0] if parsed else ""


def airflow_major(runtime_version: str) -> str:
    """astro-cli AirflowMajorVersionForRuntimeVersion ("2", "3" or "")."""
    if not is_new_format(runtime_version):
        return "2" if _parse("v" + _strip_v(runtime_version)) is not None else ""
    return runtime_version_major(runtime_version)


def is_airflow3(runtime_version: str) -> bool:
    """astro-cli IsAirflow3."""
    return airflow_major(runtime_version) == "3"
