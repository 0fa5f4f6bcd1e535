"""The catalog of Astro Runtime releases: the bundled snapshot, Astronomer's feed, queries.

The snapshot (``upgrade/model/data/runtime-catalog.yaml``) carries what public sources say and
nothing more: a field the sources do not give stays ``None`` (unknown), never a guess.
Astronomer's runtime feed (``https://updates.astronomer.io/astronomer-runtime``: a JSON
object of ``runtimeVersions`` keyed by version, each with ``metadata`` and ``migrations``;
the same data the CLI reads) is authoritative when given:
it replaces the snapshot or extends it, entry by entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from upgrade.errors import CatalogError, NothingToResolve, UnknownVersion, VersionError
from upgrade.model.image import CANONICAL_REPOSITORY
from upgrade.model.versions import RuntimeVersion, VersionSpec, parse_spec, parse_version

SNAPSHOT = "runtime-catalog.yaml"
FEED_TIMEOUT_SECONDS = 10.0
# Channels a resolved (not exactly named) target may come from. The feed also has
# "deprecated", "alpha" and "beta"; astro-cli picks its default only from "stable".
RESOLVABLE_CHANNELS = frozenset({"stable", None})


@dataclass(frozen=True)
class Release:
    """What is known about one Runtime release; ``None`` means unknown."""

    version: RuntimeVersion
    airflow: str | None = None  # "2.9.3", or "2.10.*" when only major.minor is known
    python: str | None = None
    released: date | None = None
    end_of_maintenance: date | None = None
    end_of_basic_support: date | None = None
    yanked: bool | None = None
    yanked_reason: str | None = None
    channel: str | None = None  # stable | deprecated | alpha | beta
    lts: bool | None = None
    migrates_db: bool | None = None
    observed_only: bool = False  # tag seen in the wild; no release data was readable
    origin: str = "snapshot"

    def past_maintenance(self, today: date) -> bool:
        """True when maintenance ended before ``today`` (unknown end: False)."""
        return self.end_of_maintenance is not None and self.end_of_maintenance < today

    def status(self, today: date) -> str:
        """One word for tables: yanked, deprecated, end-of-maintenance, observed, stable."""
        if self.yanked:
            return "yanked"
        if self.channel in ("deprecated", "alpha", "beta"):
            return self.channel
        if self.past_maintenance(today):
            return "end-of-maintenance"
        if self.observed_only:
            return "observed"
        return self.channel or "stable"

    def image(self, variants: Iterable[str] = ()) -> str:
        """The image reference of this release with the given variant tokens."""
        suffix = "".join(f"-{v}" for v in variants)
        return f"{CANONICAL_REPOSITORY[self.version.scheme]}:{self.version}{suffix}"

    def to_json(self, today: date) -> dict[str, Any]:
        """Plain data for --json output (a documented, stable schema)."""
        return {
            "version": str(self.version),
            "airflow": self.airflow,
            "python": self.python,
            "released": _iso(self.released),
            "end_of_maintenance": _iso(self.end_of_maintenance),
            "end_of_basic_support": _iso(self.end_of_basic_support),
            "yanked": self.yanked,
            "yanked_reason": self.yanked_reason,
            "channel": self.channel,
            "lts": self.lts,
            "observed_only": self.observed_only,
            "status": self.status(today),
            "image": self.image(),
            "origin": self.origin,
        }


@dataclass(frozen=True)
class Resolution:
    """A spec resolved to one release, with the warnings the user must see."""

    spec: VersionSpec
    release: Release
    warnings: tuple[str, ...] = ()

    @property
    def version(self) -> RuntimeVersion:
        """The exact version the spec resolved to."""
        return self.release.version


@dataclass(frozen=True)
class Catalog:
    """An immutable set of releases, newest first, with the queries the tool needs."""

    releases: tuple[Release, ...]
    sources: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.releases, key=lambda r: r.version, reverse=True))
        object.__setattr__(self, "releases", ordered)
        object.__setattr__(self, "_by_version", {r.version: r for r in ordered})

    def __iter__(self) -> Iterator[Release]:
        return iter(self.releases)

    def __len__(self) -> int:
        return len(self.releases)

    def get(self, version: RuntimeVersion) -> Release | None:
        """The release for an exact version, or None."""
        return self._by_version.get(version)  # type: ignore[attr-defined]

    def resolve(self, spec: VersionSpec | str, *, source: str = "") -> Resolution:
        """Resolve a spec to one exact release (see module docs for the rules)."""
        if isinstance(spec, str):
            spec = parse_spec(spec, source=source)
        if spec.kind == "exact":
            assert spec.exact is not None
            release = self.get(spec.exact)
            if release is None:
                raise UnknownVersion(
                    f"{_where(source)}{spec.exact} is not a known Astro Runtime release "
                    f"({self._describe_sources()}). Check the number, or point --feed at "
                    "Astronomer's current runtime feed."
                )
            return Resolution(spec, release, tuple(_exact_warnings(release)))
        members = [r for r in self.releases if spec.matches(r.version)]
        candidates = [r for r in members if _resolvable(r)]
        if not candidates:
            detail = (
                f"every release of it is yanked, pre-release or deprecated "
                f"({', '.join(str(r.version) for r in members[:5])}"
                f"{', …' if len(members) > 5 else ''}); name an exact version to use one anyway"
                if members
                else "the catalog has no release in that line"
            )
            raise NothingToResolve(f"{_where(source)}'{spec}' resolves to nothing: {detail}.")
        best = candidates[0]
        warnings = []
        if best.observed_only:
            warnings.append(
                f"{best.version} is known only from public image tags: its release date, "
                "yanked status and later patches are unknown here. Use Astronomer's live "
                "runtime feed (--feed) to be sure it is the newest patch."
            )
        return Resolution(spec, best, tuple(warnings))

    def newest_in_line(self, version: RuntimeVersion) -> Release | None:
        """The newest non-yanked release in the same major.minor line as ``version``."""
        for release in self.releases:
            if release.version.scheme == version.scheme and release.version.line == version.line:
                if release.yanked or release.version.is_prerelease:
                    continue
                return release
        return None

    def merged(self, feed: Catalog, mode: Literal["extend", "replace"]) -> Catalog:
        """This catalog with a feed applied: the feed wins entry by entry, or replaces all."""
        if mode == "replace":
            return feed
        by_version = {r.version: r for r in self.releases}
        by_version.update({r.version: r for r in feed.releases})
        return Catalog(tuple(by_version.values()), self.sources + feed.sources)

    def _describe_sources(self) -> str:
        return "catalog: " + ", ".join(self.sources) if self.sources else "empty catalog"


def _resolvable(release: Release) -> bool:
    return (
        not release.yanked
        and release.channel in RESOLVABLE_CHANNELS
        and not release.version.is_prerelease
    )


def _exact_warnings(release: Release) -> Iterator[str]:
    if release.yanked:
        reason = f": {release.yanked_reason.rstrip('.')}" if release.yanked_reason else ""
        yield f"{release.version} is yanked (restricted by Astronomer){reason}."
    if release.channel in ("deprecated", "alpha", "beta"):
        yield f"{release.version} is in the '{release.channel}' channel."
    if release.observed_only:
        yield f"{release.version} is known only from public image tags; release data unknown."


def _where(source: str) -> str:
    return f"{source}: " if source else ""


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _date(value: Any, where: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise CatalogError(f"{where}: '{value}' is not a date (YYYY-MM-DD).") from exc


# --------------------------------------------------------------------------- snapshot


def load_snapshot(path: Path | None = None) -> Catalog:
    """The bundled snapshot of real releases (or another file in the same YAML format)."""
    if path is None:
        text = resources.files("upgrade.model.data").joinpath(SNAPSHOT).read_text("utf-8")
        name = f"bundled snapshot ({SNAPSHOT})"
    else:
        text, name = _read_file(path, str(path)), str(path)
    try:
        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise CatalogError(f"{name}: not valid YAML: {exc}.") from exc
    entries = doc.get("versions") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise CatalogError(f"{name}: expected a top-level 'versions:' list of releases.")
    releases = [
        _snapshot_release(entry, f"{name}: versions[{i}]") for i, entry in enumerate(entries)
    ]
    return Catalog(tuple(releases), (name,))


def _snapshot_release(entry: Any, where: str) -> Release:
    if not isinstance(entry, dict) or "version" not in entry:
        raise CatalogError(f"{where}: each release needs a 'version'.")
    try:
        version = parse_version(str(entry["version"]))
    except VersionError as exc:
        raise CatalogError(f"{where}: {exc}") from exc
    status = entry.get("status")
    return Release(
        version=version,
        airflow=_opt_str(entry.get("airflow")),
        python=_opt_str(entry.get("python")),
        released=_date(entry.get("released"), where),
        end_of_maintenance=_date(entry.get("end_of_support"), where),
        yanked=entry.get("yanked"),
        yanked_reason=entry.get("yanked_reason"),
        # The snapshot's "deprecated" is inferred from past end-of-maintenance dates; any
        # other channel value was not readable, so it stays unknown.
        channel="deprecated" if status == "deprecated" else None,
        lts=entry.get("lts"),
        observed_only=bool(entry.get("observed_only", False)),
        origin="snapshot",
    )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


# --------------------------------------------------------------------------- feed


def load_feed(
    location: str, *, base_dir: Path | None = None, timeout: float = FEED_TIMEOUT_SECONDS
) -> Catalog:
    """Astronomer's runtime feed JSON from a file path or an http(s) URL."""
    if location.startswith(("http://", "https://")):
        text = _fetch(location, timeout)
    elif "://" in location:
        raise CatalogError(f"feed '{location}': only http(s) URLs and file paths are supported.")
    else:
        path = Path(location)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        text = _read_file(path, f"feed {location}")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(
            f"feed {location}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from exc
    return Catalog(tuple(parse_feed(doc, location)), (f"feed {location}",))


def parse_feed(doc: Any, location: str) -> list[Release]:
    """Releases from a decoded feed document (runtimeVersions and runtimeVersionsV3)."""
    if not isinstance(doc, dict) or not (
        isinstance(doc.get("runtimeVersions"), dict)
        or isinstance(doc.get("runtimeVersionsV3"), dict)
    ):
        raise CatalogError(
            f"feed {location}: expected a JSON object with 'runtimeVersions' and/or "
            "'runtimeVersionsV3' maps (Astronomer's runtime feed format)."
        )
    releases = []
    for section in ("runtimeVersions", "runtimeVersionsV3"):
        entries = doc.get(section) or {}
        if not isinstance(entries, dict):
            raise CatalogError(f"feed {location}: '{section}' must be an object keyed by version.")
        for key, entry in entries.items():
            releases.append(_feed_release(key, entry, f"feed {location}: {section}['{key}']"))
    return releases


def _feed_release(key: str, entry: Any, where: str) -> Release:
    try:
        version = parse_version(key)
    except VersionError as exc:
        raise CatalogError(f"{where}: {exc}") from exc
    meta = entry.get("metadata") if isinstance(entry, dict) else None
    if not isinstance(meta, Mapping):
        raise CatalogError(f"{where}: each entry needs a 'metadata' object.")
    airflow = meta.get("airflowVersion")
    migrations = entry.get("migrations") if isinstance(entry.get("migrations"), dict) else {}
    return Release(
        version=version,
        # Images report Airflow as 2.10.5+astro.4; strip any local tag before comparing.
        airflow=str(airflow).split("+", 1)[0] if airflow else None,
        python=_opt_str(meta.get("defaultPythonVersion")),
        released=_date(meta.get("releaseDate"), where),
        end_of_maintenance=_date(meta.get("endOfMaintenance") or meta.get("endOfSupport"), where),
        end_of_basic_support=_date(meta.get("endOfBasicSupport"), where),
        yanked=bool(meta.get("yanked", False)),
        yanked_reason=meta.get("yankedReason"),
        channel=_opt_str(meta.get("channel")),
        lts=meta.get("LTS"),
        migrates_db=migrations.get("airflowDatabase"),
        origin="feed",
    )


def _read_file(path: Path, label: str) -> str:
    try:
        return path.read_text("utf-8")
    except FileNotFoundError as exc:
        raise CatalogError(f"{label}: file not found ({path}).") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{label}: cannot be read ({exc}).") from exc


def _fetch(url: str, timeout: float) -> str:
    import httpx  # only feeds over HTTP need it; keeps `invoke catalog` start-up light

    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True)
    except httpx.TimeoutException as exc:
        raise CatalogError(f"feed {url}: no answer within {timeout:g} s.") from exc
    except httpx.HTTPError as exc:
        raise CatalogError(f"feed {url}: cannot be reached ({exc}).") from exc
    except httpx.InvalidURL as exc:  # --feed is read here only: the inventory's is checked
        raise CatalogError(f"feed {url}: not a URL that can be read ({exc}). Give an http(s) "
                           "URL with a host, or a file path.") from exc
    if response.status_code != 200:
        raise CatalogError(f"feed {url}: HTTP {response.status_code}; expected 200.")
    return response.text


def load_catalog(
    feed: str | None = None,
    *,
    mode: Literal["extend", "replace"] = "extend",
    base_dir: Path | None = None,
) -> Catalog:
    """The snapshot, with an optional feed applied."""
    snapshot = load_snapshot()
    if not feed:
        return snapshot
    if mode not in ("extend", "replace"):
        raise CatalogError(f"catalog mode '{mode}' is not 'extend' or 'replace'.")
    return snapshot.merged(load_feed(feed, base_dir=base_dir), mode)
