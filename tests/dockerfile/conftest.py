"""Fixtures for the Dockerfile engine tests."""

from __future__ import annotations

import io

import pytest
from dockerfile_parse import DockerfileParser


def _built_images(text: str) -> tuple[set[str], str]:
    """(every external image a FROM pulls, the image the final stage is rooted in)."""
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")))
    froms = [item for item in parser.structure if item["instruction"] == "FROM"]
    parents = parser.parent_images
    assert len(froms) == len(parents), (froms, parents)
    stages: dict[str, str] = {}
    roots: list[str] = []
    for item, parent in zip(froms, parents, strict=True):
        root = stages.get(parent.lower(), parent)
        roots.append(root)
        words = [w for w in item["value"].split() if not w.startswith("--")]
        if len(words) == 3 and words[1].lower() == "as":
            stages[words[2].lower()] = root
    external = {parent for parent in parents if parent.lower() not in stages}
    return external, roots[-1]


@pytest.fixture
def built_images():
    """dockerfile-parse's view: (external images pulled, image the final stage is rooted in)."""
    return _built_images
