"""Container image references as Astro projects write them, and retargeting them.

A Runtime image tag is a version followed by variant tokens: ``12.4.0-python-3.12-slim-base``
or ``3.1-12-ubi9-python-3.12-base``. The tokens are not part of the version, appear in any
order in the wild (``-python-3.12-base`` and ``-base-python-3.12`` both exist on quay.io),
and must survive a version change,
so they are kept as an ordered tuple and compared as a set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

from upgrade.errors import VersionError
from upgrade.model.versions import ACCEPTED_VERSIONS, RuntimeVersion, Scheme, parse_version

RepoKind = Literal["runtime", "runtime-dev", "certified", "other"]

CANONICAL_REPOSITORY: dict[Scheme, str] = {
    "af2": "quay.io/astronomer/astro-runtime",
    "af3": "astrocrpublic.azurecr.io/runtime",
}
# Hosts that serve the Airflow 3 repository under the plain name "runtime".
_AF3_HOSTS = ("astrocrpublic.azurecr.io", "air.astronomer.io")

_VERSION_HEAD = re.compile(r"^(\d+\.\d+-\d+|\d+\.\d+\.\d+|\d+\.\d+|latest)(?=-|$)")
_TOKEN = re.compile(r"-(python-\d+\.\d+|[a-z]+\d*(?:\.\d+)?)")
_PRE_TOKEN = re.compile(r"^(alpha|beta|rc|nightly|dev)\d*$")
_VARIANT_TOKEN = re.compile(r"^(python-\d+\.\d+|slim|base|ubi\d+)$")
ACCEPTED_VARIANTS = "-base, -slim, -python-X.Y, -ubiN (any order)"


@dataclass(frozen=True)
class ImageRef:
    """One parsed image reference; ``version`` is set only for pinned Runtime images."""

    repository: str
    tag: str | None
    digest: str | None
    kind: RepoKind
    version: RuntimeVersion | None = None
    floating: str | None = None  # "3.1", "latest": a tag that moves under you
    variants: tuple[str, ...] = ()

    @property
    def is_runtime(self) -> bool:
        """True for Astro Runtime images (released or pre-release repositories)."""
        return self.kind in ("runtime", "runtime-dev")

    @property
    def home_scheme(self) -> Scheme | None:
        """The version scheme this repository is meant to carry."""
        if not self.is_runtime:
            return None
        host = self.repository.split("/", 1)[0]
        name = self.repository.rsplit("/", 1)[-1]
        return "af3" if name.startswith("runtime") and host in _AF3_HOSTS else "af2"

    def retarget(self, version: RuntimeVersion) -> ImageRef:
        """The same image at ``version``: variants kept, repository switched across schemes."""
        repository = self.repository
        if version.scheme != self.home_scheme:
            # Crossing Airflow 2 -> 3 changes the registry too (astro-cli airflow/constants.go);
            # so does fixing an A.B-N tag that sits on the Airflow 2 repository.
            repository = CANONICAL_REPOSITORY[version.scheme]
        tag = str(version) + "".join(f"-{t}" for t in self.variants)
        return replace(
            self, repository=repository, tag=tag, digest=None, version=version, floating=None
        )

    def __str__(self) -> str:
        text = self.repository
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def classify_repository(repository: str) -> RepoKind:
    """Which family of Astronomer image a repository path belongs to."""
    parts = repository.lower().split("/")
    name = parts[-1]
    host = parts[0] if len(parts) > 1 else ""
    if name == "ap-airflow":
        return "certified"
    if name == "astro-runtime-dev" or (name == "runtime-dev" and host in _AF3_HOSTS):
        return "runtime-dev"
    if name == "astro-runtime" and len(parts) >= 2 and parts[-2] == "astronomer":
        return "runtime"
    if name == "runtime" and host in _AF3_HOSTS and len(parts) == 2:
        return "runtime"
    return "other"


# A fleet writes few distinct references (a handful of versions and variants) in many
# Dockerfiles, and each FROM is read twice (before and after a rewrite): the answer,
# immutable, is kept. Refusals raise each time (lru_cache keeps no exceptions).
@lru_cache(maxsize=4096)
def parse_image(reference: str, *, source: str = "") -> ImageRef:
    """Parse an image reference; Runtime tags must be a version plus known variant tokens."""
    text = reference.strip()
    where = f"{source}: " if source else ""
    if not text or len(text.split()) != 1:  # whitespace inside (strip took the ends)
        raise VersionError(f"{where}'{reference}' is not an image reference.")
    name, _, digest = text.partition("@")
    repository, tag = name, None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        repository, tag = name[:colon], name[colon + 1 :]
    kind = classify_repository(repository)
    image = ImageRef(repository, tag, digest or None, kind)
    if not image.is_runtime or tag is None:
        return image
    return _with_runtime_tag(image, tag, where)


def _with_runtime_tag(image: ImageRef, tag: str, where: str) -> ImageRef:
    head = _VERSION_HEAD.match(tag)
    if head is None:
        raise VersionError(
            f"{where}tag '{tag}' of {image.repository} does not start with a Runtime version. "
            f"Accepted forms: {ACCEPTED_VERSIONS}, optionally followed by {ACCEPTED_VARIANTS}."
        )
    rest = tag[head.end() :]
    tokens = _TOKEN.findall(rest)
    if "".join(f"-{t}" for t in tokens) != rest:
        raise VersionError(
            f"{where}tag '{tag}' of {image.repository} has an unreadable suffix '{rest}'. "
            f"Accepted suffixes: {ACCEPTED_VARIANTS}."
        )
    pre = [t for t in tokens if _PRE_TOKEN.match(t)]
    unknown = [t for t in tokens if not _PRE_TOKEN.match(t) and not _VARIANT_TOKEN.match(t)]
    if unknown or len(pre) > 1:
        bad = unknown[0] if unknown else pre[1]
        raise VersionError(
            f"{where}tag '{tag}' of {image.repository} has an unknown suffix '-{bad}'. "
            f"Accepted suffixes: {ACCEPTED_VARIANTS}."
        )
    variants = tuple(t for t in tokens if _VARIANT_TOKEN.match(t))
    core = head.group(1)
    if core == "latest" or re.fullmatch(r"\d+\.\d+", core):
        return replace(image, floating=core, variants=variants)
    version = parse_version(f"{core}-{pre[0]}" if pre else core)
    return replace(image, version=version, variants=variants)


def require_pinned_runtime(image: ImageRef, *, source: str = "") -> RuntimeVersion:
    """The pinned Runtime version of ``image``, or a VersionError that says what to do."""
    where = f"{source}: " if source else ""
    if image.kind == "certified":
        raise VersionError(
            f"{where}{image} is an Astronomer Certified (ap-airflow) image, not Astro Runtime. "
            "It needs a manual migration to Astro Runtime (pick the Runtime that ships your "
            "Airflow version and rewrite the FROM line by hand); this tool only upgrades Runtime."
        )
    if not image.is_runtime:
        raise VersionError(f"{where}{image} is not an Astro Runtime image.")
    if image.floating is not None or image.tag is None:
        shown = image.floating or "no tag"
        raise VersionError(
            f"{where}{image} is unpinned ('{shown}' moves under you and Astro never pulls a "
            "newer patch after the first deploy). Pin an exact version in the Dockerfile, "
            f"in the form {ACCEPTED_VERSIONS}, then run again."
        )
    assert image.version is not None
    return image.version
