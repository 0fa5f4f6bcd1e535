"""A line-by-line port of astro-cli's Runtime version ordering.

Ported from ``astronomer/astro-cli airflow_versions/runtime_versions.go``
(``CompareRuntimeVersions``, ``AirflowMajorVersionForRuntimeVersion``) and the
parts of ``golang.org/x/mod/semver`` it relies on. The simulator must behave
like Astro, so it deliberately does not use the project's own version model.

Go's ``\\d`` is ASCII-only and its ``$`` anchors at the very end of the text; the
new-format pattern is matched by hand (``re`` would cost every ``astro-sim deploy`` about
8 ms of CPU to import), digit by ASCII digit, to the very end.
"""

from __future__ import annotations

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
_PARSED: dict[str, _Semver | None] = {}


def _parse(v: str) -> _Semver | None:
    """x/mod semver.parse: ``vX``, ``vX.Y`` shorthands; prerelease only after X.Y.Z."""
    if v not in _PARSED:
        _PARSED[v] = _parse_uncached(v)
    return _PARSED[v]


def _parse_uncached(v: str) -> _Semver | None:
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
    return _compare_parsed(pv, pw)


def _compare_parsed(pv: _Semver, pw: _Semver) -> int:
    for a, b in zip(pv[:3], pw[:3], strict=True):
        c = _compare_int(a, b)
        if c:
            return c
    return _compare_prerelease(pv[3], pw[3])


def _strip_v(version: str) -> str:
    return version[1:] if version.startswith("v") else version


def _digits(s: str) -> tuple[str, str]:
    end = 0
    while end < len(s) and "0" <= s[end] <= "9":
        end += 1
    return s[:end], s[end:]


_NEW_FORMATS: dict[str, tuple[str, str, str, str] | None] = {}


def _new_format(version: str) -> tuple[str, str, str, str] | None:
    """astro-cli's ``^(\\d+)\\.(\\d+)-(\\d+)(?:[.-](.+))?$`` (DOTALL): the four groups, or None."""
    if version not in _NEW_FORMATS:
        _NEW_FORMATS[version] = _match_new_format(version)
    return _NEW_FORMATS[version]


def _match_new_format(version: str) -> tuple[str, str, str, str] | None:
    major, rest = _digits(version)
    if not major or rest[:1] != ".":
        return None
    minor, rest = _digits(rest[1:])
    if not minor or rest[:1] != "-":
        return None
    build, rest = _digits(rest[1:])
    if not build:
        return None
    if rest and (rest[0] not in ".-" or len(rest) == 1):
        return None
    return major, minor, build, rest[1:]


def is_new_format(version: str) -> bool:
    """True for Airflow 3 era ``A.B-N[...]`` strings (no ``v`` stripping, as in Go)."""
    return _new_format(version) is not None


def _normalize(version: str) -> str:
    groups = _new_format(version)
    if groups is None:
        return version
    major, minor, build, suffix = groups
    out = f"{major}.{minor}.{build}"
    return out + "-" + suffix if suffix else out


def is_valid_runtime_version(version: str) -> bool:
    """astro-cli isValidRuntimeVersion."""
    return _parse("v" + _normalize(_strip_v(version))) is not None


_CLASSIFIED: dict[str, tuple[bool, _Semver | None]] = {}


def _classify(version: str) -> tuple[bool, _Semver | None]:
    """(new format, the parsed semver or None when invalid), once per distinct string."""
    if version not in _CLASSIFIED:
        stripped = _strip_v(version)
        _CLASSIFIED[version] = (is_new_format(stripped), _parse("v" + _normalize(stripped)))
    return _CLASSIFIED[version]


def compare_runtime_versions(v1: str, v2: str) -> int:
    """astro-cli CompareRuntimeVersions: -1, 0 or 1."""
    new1, parsed1 = _classify(v1)
    new2, parsed2 = _classify(v2)
    if parsed1 is None and parsed2 is None:
        return 0
    if parsed1 is None:
        return -1
    if parsed2 is None:
        return 1
    if new1 and not new2:
        return 1
    if new2 and not new1:
        return -1
    return _compare_parsed(parsed1, parsed2)


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
