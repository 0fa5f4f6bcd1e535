"""What ``docker build`` would stamp into ``io.astronomer.docker.runtime.version``.

astro-cli never trusts the Dockerfile text; it reads the label of the built
image. Without Docker, the simulator gets the same answer from the image the
Dockerfile builds FROM, resolved by the independent ``dockerfile-parse``
library (ARG defaults substituted, stage aliases followed), then strips the
variant suffixes a Runtime tag may carry, because the label holds the bare
version. A floating Airflow 3 tag (``runtime:3.1``) resolves to the newest
non-yanked ``3.1-N`` of the feed, as the image behind that tag would.

``astro deploy`` hands the build to the Docker daemon; ``astro-sim deploy`` hands it to the
simulator's server (``POST /_sim/build``), which plays that part.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from dockerfile_parse import DockerfileParser

from fleet_sim.runtime_versions import compare_runtime_versions

RUNTIME_REPOSITORIES = (
    "quay.io/astronomer/astro-runtime",
    "astrocrpublic.azurecr.io/runtime",
    "astrocrpublic.azurecr.io/astronomer/astro-runtime",
    "quay.io/astronomer/astro-runtime-dev",
)
_FLOATING_AF3 = re.compile(r"[0-9]+\.[0-9]+")
_UBI = re.compile(r"ubi[0-9]*")


@dataclass(frozen=True)
class BaseImage:
    """The Dockerfile's answer: the raw first FROM (for messages) and the label, if any."""

    first_from: str  # as written on the first FROM line, as astro-cli shows it
    image: str | None  # resolved Runtime base image, if any stage has one
    label: str | None  # emulated io.astronomer.docker.runtime.version


def split_image(ref: str) -> tuple[str, str | None]:
    """``repo[:tag][@digest]`` -> (lower-cased repo, tag or None)."""
    ref = ref.split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon].lower(), ref[colon + 1 :]
    return ref.lower(), None


def strip_variants(tag: str) -> str:
    """Drop ``-python-X.Y``, ``-slim``, ``-base`` and ``-ubiN`` tokens, in any order."""
    tokens = tag.split("-")
    kept: list[str] = []
    skip_next = False
    for i, token in enumerate(tokens):
        if skip_next:
            skip_next = False
            continue
        if i > 0 and token == "python" and i + 1 < len(tokens):
            skip_next = True
            continue
        if i > 0 and (token in ("slim", "base") or _UBI.fullmatch(token)):
            continue
        kept.append(token)
    return "-".join(kept)


def floating_tags(feed: dict) -> dict[str, str]:
    """astro-cli ResolveFloatingTag for every ``A.B`` of the feed's runtimeVersionsV3."""
    newest: dict[str, str] = {}
    for version, entry in (feed.get("runtimeVersionsV3") or {}).items():
        if (entry.get("metadata") or {}).get("yanked"):
            continue
        floating = version.split("-", 1)[0]
        if floating not in newest or compare_runtime_versions(version, newest[floating]) > 0:
            newest[floating] = version
    return newest


def read_base_image(dockerfile: str, floating: dict[str, str] | None = None) -> BaseImage:
    """Resolve the Runtime base image and its label from a Dockerfile's text.

    ``floating`` maps a floating Airflow 3 tag (``"3.1"``) to its newest build.
    """
    parser = DockerfileParser(fileobj=io.BytesIO(dockerfile.encode()), env_replace=True)
    froms = [i for i in parser.structure if i["instruction"] == "FROM"]
    first_from = _first_image_token(froms[0]["value"]) if froms else ""
    resolved: list[str] = []
    aliases: dict[str, str] = {}
    for instruction, image in zip(froms, parser.parent_images, strict=False):
        alias = _alias(instruction["value"])
        actual = aliases.get(image.lower(), image)
        resolved.append(actual)
        if alias:
            aliases[alias.lower()] = actual
    for image in reversed(resolved):
        repo, tag = split_image(image)
        if repo in RUNTIME_REPOSITORIES and tag:
            return BaseImage(first_from, image, _label(repo, tag, floating or {}))
    return BaseImage(first_from, None, None)


def _label(repo: str, tag: str, floating: dict[str, str]) -> str | None:
    version = strip_variants(tag)
    if _FLOATING_AF3.fullmatch(version) and repo == "astrocrpublic.azurecr.io/runtime":
        return floating.get(version)
    if not version or not version[0].isdigit():
        return None  # e.g. "latest": the simulator cannot know which build that is
    return version


def _first_image_token(value: str) -> str:
    for token in value.split():
        if not token.startswith("--"):
            return token
    return ""


def _alias(value: str) -> str | None:
    tokens = value.split()
    for i, token in enumerate(tokens[:-1]):
        if token.lower() == "as":
            return tokens[i + 1]
    return None
