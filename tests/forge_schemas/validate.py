"""Validate a forge's answers against the public API descriptions kept here (README.md).

GitHub: the subset of GitHub's OpenAPI description (OpenAPI 3.0: ``nullable`` is turned
into JSON Schema's ``null`` type); each answer is checked against the schema its operation
documents for that status, and an undocumented error status against ``basic-error`` (the
body GitHub's REST docs give every client error). GitLab: the schema written from its
docs; a 2xx against the endpoint's answer, anything else against the error body.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7, DRAFT202012

HERE = Path(__file__).parent
GITHUB = HERE / "github-2022-11-28.subset.json"
GITLAB = HERE / "gitlab-v4.schema.json"

# GitLab: (method, path under /projects/:id/, 2xx) -> the $defs entry of its answer.
GITLAB_ROUTES = (
    ("GET", r"", "project"),
    ("GET", r"merge_requests", "merge_request_list"),
    ("POST", r"merge_requests", "single_merge_request"),
    ("GET", r"merge_requests/\d+", "single_merge_request"),
    ("PUT", r"merge_requests/\d+/merge", "single_merge_request"),
)


class Invalid(AssertionError):
    """An answer that does not match the description."""


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema (draft 7) says it."""
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items()}
    if out.pop("nullable", False):
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        else:
            return {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def _github() -> tuple[dict[str, Any], Registry]:
    doc = _nullable(json.loads(GITHUB.read_text(encoding="utf-8")))
    registry = Registry().with_resource("github", Resource(contents=doc, specification=DRAFT7))
    return doc, registry


@cache
def _gitlab() -> Registry:
    doc = json.loads(GITLAB.read_text(encoding="utf-8"))
    return Registry().with_resource("gitlab", Resource(contents=doc, specification=DRAFT202012))


def _template_match(template: str, path: str) -> bool:
    pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None


def github_schema(method: str, path: str, status: int) -> dict[str, Any]:
    """The JSON Schema GitHub's description gives the answer to ``method path`` with
    ``status`` (a ``$ref`` into the subset)."""
    doc, _ = _github()
    for template, item in doc["paths"].items():
        if _template_match(template, path) and method.lower() in item:
            responses = item[method.lower()]["responses"]
            break
    else:
        raise Invalid(f"GitHub: {method} {path} is not an operation of the subset")
    response = responses.get(str(status))
    if response is None:
        if status < 400:
            raise Invalid(f"GitHub: {method} {path} does not document status {status}")
        return {"$ref": "github#/components/schemas/basic-error"}
    while "$ref" in response:
        response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        raise Invalid(f"GitHub: {method} {path} {status} documents no JSON body")
    return _rebase(schema, "github")


def gitlab_schema(method: str, path: str, status: int) -> dict[str, Any]:
    """The schema written from GitLab's docs for the answer to ``method path``."""
    if status >= 300:
        return {"$ref": "gitlab#/$defs/error"}
    m = re.fullmatch(r"/api/v4/projects/[^/]+/?(.*)", path)
    for verb, pattern, name in GITLAB_ROUTES:
        if m and verb == method and re.fullmatch(pattern, m.group(1)):
            return {"$ref": f"gitlab#/$defs/{name}"}
    raise Invalid(f"GitLab: {method} {path} is not an endpoint the schema describes")


def _rebase(schema: Any, resource: str) -> Any:
    """Point the description's local ``#/...`` references at its registered resource."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/"):
                node["$ref"] = resource + ref
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def validate(method: str, path: str, status: int, body: Any) -> None:
    """Raise Invalid when the answer does not match its forge's description."""
    if path.startswith("/api/v4/"):
        schema, registry, cls = gitlab_schema(method, path, status), _gitlab(), \
            Draft202012Validator
    else:
        schema, cls = github_schema(method, path, status), Draft7Validator
        registry = _github()[1]
    errors = sorted(cls(schema, registry=registry).iter_errors(body), key=lambda e: e.path)
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(the body)"
        raise Invalid(f"{method} {path} -> {status}: {where}: {first.message[:300]} "
                      f"({len(errors)} problem(s))")


def validate_all(served: list[Any]) -> int:
    """Validate every answer a forge simulator served (``ForgeState.served``); how many."""
    for answer in served:
        validate(answer.method, answer.path, answer.status, answer.body)
    return len(served)
