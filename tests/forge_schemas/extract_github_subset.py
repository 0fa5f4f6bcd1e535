"""Cut the subset of GitHub's REST API description that the forge client uses.

    python tests/forge_schemas/extract_github_subset.py DESCRIPTION.json > \
        tests/forge_schemas/github-2022-11-28.subset.json

DESCRIPTION.json is github/rest-api-description's
``descriptions/api.github.com/api.github.com.2022-11-28.json`` (or a copy of it; keys named
``x-octokit``, which one republished copy adds to operations, are dropped). The subset holds
the path items of ``OPERATIONS`` (only those methods) and every component they reach through
``$ref``, transitively, verbatim; ``info`` names the source (tests/forge_schemas/README.md).
"""

from __future__ import annotations

import json
import sys
from typing import Any

OPERATIONS = {
    "/repos/{owner}/{repo}": ("get",),
    "/repos/{owner}/{repo}/pulls": ("get", "post"),
    "/repos/{owner}/{repo}/pulls/{pull_number}": ("get",),
    "/repos/{owner}/{repo}/pulls/{pull_number}/merge": ("put",),
    "/repos/{owner}/{repo}/commits/{ref}/status": ("get",),
    "/repos/{owner}/{repo}/commits/{ref}/check-runs": ("get",),
}


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k != "x-octokit"}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value)
            else:
                _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def subset(doc: dict[str, Any]) -> dict[str, Any]:
    """The path items of OPERATIONS and the components they reach."""
    doc = _strip(doc)
    paths = {path: {m: doc["paths"][path][m] for m in methods}
             for path, methods in OPERATIONS.items()}
    todo: set[str] = set()
    _refs(paths, todo)
    components: dict[str, dict[str, Any]] = {}
    while todo:
        ref = todo.pop()
        _, _, kind, name = ref.split("/", 3)
        if name in components.get(kind, {}):
            continue
        node = doc["components"][kind][name]
        components.setdefault(kind, {})[name] = node
        more: set[str] = set()
        _refs(node, more)
        todo |= {r for r in more if r.split("/", 3)[3] not in components.get(r.split("/")[2], {})}
    info = {"title": "GitHub v3 REST API: the subset astro-fleet's forge client uses",
            "version": "2022-11-28", "x-source": "tests/forge_schemas/README.md"}
    return {"openapi": doc["openapi"], "info": info, "paths": paths,
            "components": {k: dict(sorted(v.items())) for k, v in sorted(components.items())}}


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        json.dump(subset(json.load(handle)), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
