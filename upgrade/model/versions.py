"""Astro Runtime versions and version specs: parsing and one total order.

Two schemes coexist (Astronomer switched to the second with Airflow 3, in 2025):

* ``X.Y.Z`` — Airflow 2 era Runtime (2.1.1 … 13.x), ``quay.io/astronomer/astro-runtime``.
* ``A.B-N`` — Airflow 3 era Runtime, where ``A.B`` is the Airflow major.minor and ``N`` is
  Astronomer's build counter, ``astrocrpublic.azurecr.io/runtime``.

Every ``A.B-N`` ranks above every ``X.Y.Z`` (astro-cli ``CompareRuntimeVersions``), so old
Runtime ``3.0.4`` (Airflow 2.1, 2021) is far below ``3.0-1`` (Airflow 3.0). The hyphen
tells them apart; nothing else does.

A *spec* is what a user may write as a target: an exact version, a floating line
(``12.4``, ``12``, ``3.1``, ``3``) or ``latest``. Specs are resolved against the catalog;
they are never compared as versions (astro-cli reads ``12.4`` as ``12.4.0``, which is how
tools end up "upgrading" to an old patch).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, total_ordering
from typing import Literal

from packaging.version import Version

from upgrade.errors import VersionError

Scheme = Literal["af2", "af3"]

# Airflow majors whose Runtime uses the A.B-N scheme. A floating "3.1" belongs to that
# scheme (astro-cli ResolveFloatingTag searches only runtimeVersionsV3); "12.4" does not.
AF3_MAJORS = frozenset({3})

ACCEPTED_VERSIONS = "X.Y.Z (e.g. 12.4.0) or A.B-N (e.g. 3.1-12)"
ACCEPTED_SPECS = (
    "an exact version (12.4.0, 3.1-12), a line (12.4, 12, 3.1, 3, also written 12.4.x) or 'latest'"
)

# The longest real tag is ~30 characters (12.0.0-nightly20241216); past this a value is
# refused before any of it is read as a number (int() refuses more than 4,300 digits).
MAX_VERSION_CHARS = 64

_PRE = r"(?:alpha|beta|rc|nightly|dev)\.?\d*"
_AF2_RE = re.compile(rf"^v?(\d+)\.(\d+)\.(\d+)(?:-({_PRE}))?$")
_AF3_RE = re.compile(rf"^v?(\d+)\.(\d+)-(\d+)(?:[-.]({_PRE}))?$")
_NUM = re.compile(r"^(0|[1-9]\d*)$")
# PEP 440 spelling of each pre-release word. Nightly and dev builds come before alphas.
_PRE_PEP440 = {"alpha": "a", "beta": "b", "rc": "rc", "nightly": ".dev", "dev": ".dev"}


def _pep440_pre(pre: str | None) -> str:
    if not pre:
        return ""
    word = re.match(r"[a-z]+", pre).group(0)  # type: ignore[union-attr]
    number = pre[len(word) :].lstrip(".") or "0"
    return f"{_PRE_PEP440[word]}{int(number)}"


@total_ordering
@dataclass(frozen=True, eq=False)
class RuntimeVersion:
    """One exact Astro Runtime version, in either scheme."""

    scheme: Scheme
    major: int  # Runtime major (af2) or Airflow major (af3)
    minor: int  # Runtime minor (af2) or Airflow minor (af3)
    patch: int  # Runtime patch (af2) or Astronomer build counter (af3)
    pre: str | None = None  # pre-release marker: alpha4, nightly20241216, ...
    raw: str = field(default="", compare=False)

    @cached_property
    def _key(self) -> tuple[int, Version]:
        # packaging cannot read "3.1-12" itself: PEP 440 takes "-12" as a post-release
        # (3.1.post12), which would sort it below 3.2.0 and below every 12.x.y. So the
        # scheme is ranked first by hand, and packaging orders the numbers and the
        # pre-release marker inside each scheme.
        rank = 1 if self.scheme == "af3" else 0
        return rank, Version(f"{self.major}.{self.minor}.{self.patch}{_pep440_pre(self.pre)}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RuntimeVersion):
            return NotImplemented
        return self._key == other._key

    def __lt__(self, other: RuntimeVersion) -> bool:
        if not isinstance(other, RuntimeVersion):
            return NotImplemented
        return self._key < other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __str__(self) -> str:
        return self._text

    @cached_property
    def _text(self) -> str:
        # Kept: a plan shows each Deployment's versions, tens of thousands of times.
        core = (
            f"{self.major}.{self.minor}-{self.patch}"
            if self.scheme == "af3"
            else f"{self.major}.{self.minor}.{self.patch}"
        )
        return f"{core}-{self.pre}" if self.pre else core

    def __repr__(self) -> str:
        return f"RuntimeVersion({str(self)!r})"

    @property
    def airflow_major(self) -> int:
        """Airflow major this Runtime ships: 3 for A.B-N, 2 for X.Y.Z."""
        return self.major if self.scheme == "af3" else 2

    @property
    def is_prerelease(self) -> bool:
        """True for alpha, beta, rc, nightly and dev builds."""
        return self.pre is not None

    @property
    def line(self) -> tuple[int, int]:
        """The (major, minor) line: Runtime major.minor, or Airflow major.minor for A.B-N."""
        return self.major, self.minor


# Versions already parsed, by their text: a run reads the same few versions back from the
# journal and the catalog thousands of times, and a shared (immutable) instance also keeps
# its ordering key, whose packaging.Version parse is the costly part of a comparison.
_PARSED: dict[str, RuntimeVersion] = {}
_PARSED_MAX = 4096


def parse_version(text: str, *, source: str = "") -> RuntimeVersion:
    """Parse one exact Runtime version (``12.4.0``, ``3.1-12``); raise VersionError otherwise."""
    value = text.strip()
    known = _PARSED.get(value)
    if known is not None:
        return known
    _check_length(value, source, "version")
    for scheme, pattern in (("af3", _AF3_RE), ("af2", _AF2_RE)):
        m = pattern.match(value)
        if m and all(_NUM.match(g) for g in m.groups()[:3]):
            major, minor, patch = (int(g) for g in m.groups()[:3])
            version = RuntimeVersion(scheme, major, minor, patch, m.group(4), raw=value)  # type: ignore[arg-type]
            if len(_PARSED) < _PARSED_MAX:
                _PARSED[value] = version
            return version
    hint = ""
    if re.match(r"^\d+(\.\d+)?(\.x)?$", value) or value == "latest":
        hint = " It is a floating spec; resolve it against the catalog to get an exact version."
    raise VersionError(
        f"{_origin(source)}'{text}' is not an exact Astro Runtime version. "
        f"Accepted forms: {ACCEPTED_VERSIONS}.{hint}"
    )


def try_parse_version(text: str) -> RuntimeVersion | None:
    """Parse an exact version, or return None."""
    try:
        return parse_version(text)
    except VersionError:
        return None


@dataclass(frozen=True)
class VersionSpec:
    """A target as a user writes it: exact, a floating line, or latest."""

    kind: Literal["exact", "line", "latest"]
    raw: str
    exact: RuntimeVersion | None = None
    scheme: Scheme | None = None  # for lines: which scheme the line belongs to
    prefix: tuple[int, ...] = ()  # for lines: (12,), (12, 4), (3, 1)

    def matches(self, version: RuntimeVersion) -> bool:
        """True when ``version`` belongs to this spec (ignores channel and yanked)."""
        if self.kind == "latest":
            return self.scheme is None or version.scheme == self.scheme
        if self.kind == "exact":
            return version == self.exact
        return (
            version.scheme == self.scheme
            and (version.major, version.minor)[: len(self.prefix)] == self.prefix
        )

    def __str__(self) -> str:
        return self.raw


def parse_spec(text: str, *, source: str = "", scheme: Scheme | None = None) -> VersionSpec:
    """Parse a target spec; raise VersionError naming the value and the accepted forms.

    ``scheme`` narrows ``latest`` to one scheme (``latest`` under ``airflow2:``).
    """
    value = str(text).strip()
    _check_length(value, source, "version spec")
    if value.lower() == "latest":
        return VersionSpec("latest", value, scheme=scheme)
    exact = try_parse_version(value)
    if exact is not None:
        return VersionSpec("exact", value, exact=exact, scheme=exact.scheme)
    m = re.match(r"^v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.x)?$", value)
    if m:
        prefix = tuple(int(g) for g in m.groups() if g is not None)
        scheme: Scheme = "af3" if prefix[0] in AF3_MAJORS else "af2"
        return VersionSpec("line", value, scheme=scheme, prefix=prefix)
    raise VersionError(
        f"{_origin(source)}'{text}' is not a valid Runtime version spec. "
        f"Accepted forms: {ACCEPTED_SPECS}."
    )


def _check_length(value: str, source: str, what: str) -> None:
    if len(value) > MAX_VERSION_CHARS:
        raise VersionError(
            f"{_origin(source)}'{value[:20]}...' ({len(value):,} characters) is too long for a "
            f"Runtime {what} (at most {MAX_VERSION_CHARS}). Write e.g. 12.4.0, 3.1-12 or 13."
        )


def _origin(source: str) -> str:
    return f"{source}: " if source else ""
