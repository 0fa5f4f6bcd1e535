"""astro-cli's ordering of Astro Runtime versions, ported.

From ``astronomer/astro-cli airflow_versions/runtime_versions.go``
(``CompareRuntimeVersions``, ``AirflowMajorVersionForRuntimeVersion``,
``isValidRuntimeVersion``) and the parts of ``golang.org/x/mod/semver`` they rely on. The
simulator must order versions as Astro does, so it deliberately does not use the product's
own version model. An ``A.B-N`` (Airflow 3 era) version becomes the semver ``A.B.N`` and is
newer than every ``X.Y.Z``; an invalid version is older than every valid one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUM = r"0|[1-9][0-9]*"
_IDENTS = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
# x/mod/semver: vMAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]], shorthands completed with .0.
_SEMVER = re.compile(rf"v({_NUM})(?:\.({_NUM})(?:\.({_NUM})(?:-({_IDENTS}))?(?:\+{_IDENTS})?)?)?")
# astro-cli's new-format pattern, ^(\d+)\.(\d+)-(\d+)(?:[.-](.+))?$ (Go's \d is ASCII).
_NEW_FORMAT = re.compile(r"([0-9]+)\.([0-9]+)-([0-9]+)(?:[.-](.+))?")


@dataclass(frozen=True)
class Semver:
    """A parsed semantic version: numbers, and the prerelease identifiers ("" if none)."""

    major: int
    minor: int
    patch: int
    prerelease: str

    def compare(self, other: Semver) -> int:
        """-1, 0 or 1, as ``semver.Compare``."""
        mine, theirs = (self.major, self.minor, self.patch), (other.major, other.minor,
                                                               other.patch)
        if mine != theirs:
            return -1 if mine < theirs else 1
        return _compare_prerelease(self.prerelease, other.prerelease)


def parse_semver(text: str) -> Semver | None:
    """``semver.parse`` of a ``v``-prefixed version, or None when it is not valid."""
    m = _SEMVER.fullmatch(text)
    if m is None:
        return None
    prerelease = m.group(4) or ""
    # A numeric prerelease identifier may not have a leading zero.
    if any(p.isdigit() and len(p) > 1 and p[0] == "0" for p in prerelease.split(".")):
        return None
    major, minor, patch = (int(g) if g else 0 for g in m.group(1, 2, 3))
    return Semver(major, minor, patch, prerelease)


def _compare_prerelease(x: str, y: str) -> int:
    if x == y:
        return 0
    if not x:
        return 1  # a release is newer than any of its prereleases
    if not y:
        return -1
    xs, ys = x.split("."), y.split(".")
    for a, b in zip(xs, ys, strict=False):
        if a == b:
            continue
        if a.isdigit() != b.isdigit():
            return -1 if a.isdigit() else 1  # numeric identifiers sort first
        if a.isdigit():
            return -1 if int(a) < int(b) else 1
        return -1 if a < b else 1
    if len(xs) == len(ys):
        return 0
    return -1 if len(xs) < len(ys) else 1


def is_new_format(version: str) -> bool:
    """True for Airflow 3 era ``A.B-N[...]`` strings (no ``v`` stripping, as in Go)."""
    return _NEW_FORMAT.fullmatch(version) is not None


def _semver_of(version: str) -> Semver | None:
    """The version as astro-cli compares it: ``v`` stripped, ``A.B-N[-x]`` as ``A.B.N[-x]``."""
    version = version.removeprefix("v")
    m = _NEW_FORMAT.fullmatch(version)
    if m is not None:
        major, minor, build, suffix = m.groups()
        version = f"{major}.{minor}.{build}" + (f"-{suffix}" if suffix else "")
    return parse_semver("v" + version)


def is_valid_runtime_version(version: str) -> bool:
    """astro-cli isValidRuntimeVersion."""
    return _semver_of(version) is not None


def compare_runtime_versions(v1: str, v2: str) -> int:
    """astro-cli CompareRuntimeVersions: -1, 0 or 1."""
    s1, s2 = _semver_of(v1), _semver_of(v2)
    if s1 is None or s2 is None:
        return (s1 is not None) - (s2 is not None)
    new1, new2 = is_new_format(v1.removeprefix("v")), is_new_format(v2.removeprefix("v"))
    if new1 != new2:
        return 1 if new1 else -1
    return s1.compare(s2)


def airflow_major(runtime_version: str) -> str:
    """astro-cli AirflowMajorVersionForRuntimeVersion: "2", "3" or "" (not a Runtime)."""
    if not is_new_format(runtime_version):
        return "2" if parse_semver("v" + runtime_version.removeprefix("v")) else ""
    parsed = _semver_of(runtime_version)
    return str(parsed.major) if parsed else ""


def is_airflow3(runtime_version: str) -> bool:
    """astro-cli IsAirflow3."""
    return airflow_major(runtime_version) == "3"
