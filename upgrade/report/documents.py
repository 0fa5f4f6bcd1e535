"""The ``--json`` documents' contract: each names its schema and the schema's version.

Every document a command prints with ``--json`` starts with ``schema`` (e.g.
``astro-fleet-upgrade/plan``) and ``schema_version``; ``docs/schemas/<name>.schema.json``
is the JSON Schema of each, and tests validate real outputs against them. A version goes
up only when a field is removed or changes meaning; new fields may appear in any version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PREFIX = "astro-fleet-upgrade/"

# name -> schema version; docs/schemas/<name>.schema.json describes each.
SCHEMAS: Mapping[str, int] = {
    "catalog": 1,
    "catalog-resolve": 1,
    "discover": 1,
    "inventory": 1,
    "inventory-deployment": 1,
    "plan": 2,
    "status": 2,
    "upgrade": 2,
    "verify-all": 1,
}


def stamp(name: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` with ``schema`` and ``schema_version`` first (a bug if ``name`` is unknown)."""
    return {"schema": PREFIX + name, "schema_version": SCHEMAS[name],
            **{k: v for k, v in doc.items() if k not in ("schema", "schema_version")}}
