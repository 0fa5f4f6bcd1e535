"""The bundled Runtime catalog, served the way Astronomer serves its data.

Two views of ``data/runtime-catalog.yaml`` (Astronomer's releases, the same snapshot the
product ships; tests/simulator checks they agree): the runtime feed
(``GET /astronomer-runtime``, as updates.astronomer.io serves it) and
``deployment-options.runtimeReleases`` (the platform API's list). Fields the catalog
does not know are omitted rather than invented.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cmp_to_key
from pathlib import Path

import yaml

from fleet_sim.errors import InputError
from fleet_sim.runtime_versions import compare_runtime_versions, is_new_format

CATALOG_PATH = Path(__file__).resolve().parent / "data" / "runtime-catalog.yaml"

_WILDCARD = re.compile(r"([0-9]+)\.([0-9]+)\.\*")


@dataclass(frozen=True)
class RuntimeEntry:
    """One catalog version, reduced to what the control plane exposes."""

    version: str
    airflow: str | None  # "2.9.3", or "2.10.*" when only major.minor is known
    channel: str  # "stable" | "deprecated"
    released: str | None
    end_of_support: str | None
    python: str | None
    yanked: bool | None
    yanked_reason: str | None


class Catalog:
    """Read-only lookups over the bundled catalog."""

    def __init__(self, entries: list[RuntimeEntry]):
        self.entries = entries
        self._by_version = {e.version: e for e in entries}

    @classmethod
    def load(cls, path: Path = CATALOG_PATH) -> Catalog:
        """Load and check the catalog file; raises InputError naming the entry."""
        try:
            doc = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"{path}: cannot read the Runtime catalog: {exc}") from exc
        versions = doc.get("versions") if isinstance(doc, dict) else None
        if not isinstance(versions, list):
            raise InputError(f"{path}: versions: expected a list of Runtime versions")
        entries = []
        for i, raw in enumerate(versions):
            if not isinstance(raw, dict) or not isinstance(raw.get("version"), str):
                raise InputError(f"{path}: versions[{i}]: each entry needs a string 'version'")
            entries.append(
                RuntimeEntry(
                    version=raw["version"],
                    airflow=_opt_str(raw.get("airflow")),
                    channel="deprecated" if raw.get("status") == "deprecated" else "stable",
                    released=_opt_str(raw.get("released")),
                    end_of_support=_opt_str(raw.get("end_of_support")),
                    python=_opt_str(raw.get("python")),
                    yanked=raw.get("yanked") if isinstance(raw.get("yanked"), bool) else None,
                    yanked_reason=_opt_str(raw.get("yanked_reason")),
                )
            )
        return cls(entries)

    def get(self, version: str) -> RuntimeEntry | None:
        """The entry for an exact version string, if the catalog has it."""
        return self._by_version.get(version)

    def airflow_version(self, runtime_version: str) -> str:
        """The Airflow version a Deployment on this Runtime reports.

        The catalog's value when exact; ``A.B.0`` when it only knows ``A.B.*``
        (a deterministic, documented guess); for versions missing from the
        catalog, the Airflow minor of the same Runtime line; ``NA`` otherwise
        (the Astro API's own placeholder).
        """
        entry = self._by_version.get(runtime_version)
        if entry and entry.airflow:
            return _pin_wildcard(entry.airflow)
        if is_new_format(runtime_version):
            major_minor = runtime_version.split("-", 1)[0]
            return f"{major_minor}.0"
        major = runtime_version.split(".", 1)[0]
        for e in self.entries:
            if not is_new_format(e.version) and e.version.split(".", 1)[0] == major and e.airflow:
                af_major, af_minor = e.airflow.split(".")[:2]
                return f"{af_major}.{af_minor}.0"
        return "NA"

    def feed(self) -> dict:
        """The ``/astronomer-runtime`` JSON document: ``runtimeVersions`` keyed by version."""
        v2: dict[str, dict] = {}
        v3: dict[str, dict] = {}
        for e in sorted(self.entries, key=_sort_key):
            metadata: dict[str, object] = {}
            if e.airflow:
                metadata["airflowVersion"] = e.airflow
            metadata["channel"] = e.channel
            if e.released:
                metadata["releaseDate"] = e.released
            if e.python:
                metadata["defaultPythonVersion"] = e.python
            if e.yanked is not None:
                metadata["yanked"] = e.yanked
            if e.yanked_reason:
                metadata["yankedReason"] = e.yanked_reason
            if e.end_of_support:
                metadata["endOfMaintenance"] = e.end_of_support
            (v3 if is_new_format(e.version) else v2)[e.version] = {
                "metadata": metadata,
                "migrations": {},
            }
        return {"runtimeVersions": v2, "runtimeVersionsV3": v3}

    def runtime_releases(self) -> list[dict]:
        """``deployment-options.runtimeReleases``: every non-yanked catalog version."""
        out = []
        for e in sorted(self.entries, key=_sort_key):
            if e.yanked:
                continue
            release: dict[str, object] = {"version": e.version}
            if e.airflow:
                release["airflowVersion"] = e.airflow
            release["channel"] = e.channel
            if e.released:
                release["releaseDate"] = f"{e.released}T00:00:00Z"
            out.append(release)
        return out


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _pin_wildcard(airflow: str) -> str:
    m = _WILDCARD.fullmatch(airflow)
    return f"{m.group(1)}.{m.group(2)}.0" if m else airflow


# Catalog order follows astro-cli's Runtime ordering.
_by_version = cmp_to_key(compare_runtime_versions)


def _sort_key(entry: RuntimeEntry) -> object:
    return _by_version(entry.version)
