"""Image references: registries, variant tokens, legacy images, retargeting."""

from __future__ import annotations

import pytest

from upgrade.errors import VersionError
from upgrade.model.image import parse_image, require_pinned_runtime
from upgrade.model.versions import parse_version


@pytest.mark.parametrize(
    ("ref", "kind", "version", "variants"),
    [
        ("quay.io/astronomer/astro-runtime:12.4.0", "runtime", "12.4.0", ()),
        ("astrocrpublic.azurecr.io/runtime:3.1-12", "runtime", "3.1-12", ()),
        (
            "astrocrpublic.azurecr.io/astronomer/astro-runtime:13.4.0-base",
            "runtime",
            "13.4.0",
            ("base",),
        ),
        (
            "quay.io/astronomer/astro-runtime:11.0.0-python-3.11-slim-base",
            "runtime",
            "11.0.0",
            ("python-3.11", "slim", "base"),
        ),
        (
            "quay.io/astronomer/astro-runtime:13.7.0-slim-python-3.12",
            "runtime",
            "13.7.0",
            ("slim", "python-3.12"),
        ),
        (
            "astrocrpublic.azurecr.io/runtime:3.1-12-ubi9-python-3.12-base",
            "runtime",
            "3.1-12",
            ("ubi9", "python-3.12", "base"),
        ),
        (
            "artifactory.example/quay-remote/astronomer/astro-runtime:12.1.0",
            "runtime",
            "12.1.0",
            (),
        ),
        (
            "quay.io/astronomer/astro-runtime-dev:8.2.0-alpha4-base",
            "runtime-dev",
            "8.2.0-alpha4",
            ("base",),
        ),
        ("quay.io/astronomer/ap-airflow:2.3.4-7-onbuild", "certified", None, ()),
        ("astronomerinc/ap-airflow:latest-onbuild", "certified", None, ()),
        ("quay.io/astronomer/airflow-extensions:v1", "other", None, ()),
        ("python:3.11", "other", None, ()),
        ("localhost:5000/team/base:1.0", "other", None, ()),
    ],
)
def test_parse(ref: str, kind: str, version: str | None, variants: tuple[str, ...]) -> None:
    image = parse_image(ref)
    assert image.kind == kind
    assert image.version == (parse_version(version) if version else None)
    assert image.variants == variants
    assert str(image) == ref


def test_variant_order_is_kept_but_compared_as_a_set() -> None:
    a = parse_image("quay.io/astronomer/astro-runtime:12.1.0-slim-python-3.12")
    b = parse_image("quay.io/astronomer/astro-runtime:12.1.0-python-3.12-slim")
    assert frozenset(a.variants) == frozenset(b.variants)
    assert a.variants != b.variants


@pytest.mark.parametrize(
    ("ref", "target", "expected"),
    [
        (
            "quay.io/astronomer/astro-runtime:12.1.0-slim-base",
            "12.4.0",
            "quay.io/astronomer/astro-runtime:12.4.0-slim-base",
        ),
        # Crossing Airflow 2 -> 3 switches the registry and keeps the variants.
        (
            "quay.io/astronomer/astro-runtime:13.7.0-python-3.12-base",
            "3.1-12",
            "astrocrpublic.azurecr.io/runtime:3.1-12-python-3.12-base",
        ),
        (
            "astrocrpublic.azurecr.io/astronomer/astro-runtime:13.4.0-base",
            "3.1-12",
            "astrocrpublic.azurecr.io/runtime:3.1-12-base",
        ),
        # An Airflow 2 mirror stays the mirror for Airflow 2 targets.
        (
            "astrocrpublic.azurecr.io/astronomer/astro-runtime:13.4.0-base",
            "13.9.0",
            "astrocrpublic.azurecr.io/astronomer/astro-runtime:13.9.0-base",
        ),
        # An A.B-N tag on the Airflow 2 repository (seen in the wild) moves to the right one.
        (
            "quay.io/astronomer/astro-runtime:3.0-4",
            "3.1-12",
            "astrocrpublic.azurecr.io/runtime:3.1-12",
        ),
        (
            "astrocrpublic.azurecr.io/runtime:3.0-9-slim",
            "3.1-12",
            "astrocrpublic.azurecr.io/runtime:3.1-12-slim",
        ),
        # A digest pins the old image; a new version drops it.
        (
            "quay.io/astronomer/astro-runtime:12.1.0@sha256:" + "a" * 64,
            "12.4.0",
            "quay.io/astronomer/astro-runtime:12.4.0",
        ),
    ],
)
def test_retarget(ref: str, target: str, expected: str) -> None:
    assert str(parse_image(ref).retarget(parse_version(target))) == expected


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (
            "quay.io/astronomer/ap-airflow:2.3.4-onbuild",
            "Astronomer Certified (ap-airflow) image, not Astro Runtime",
        ),
        ("quay.io/astronomer/astro-runtime:latest", "is unpinned ('latest'"),
        ("astrocrpublic.azurecr.io/runtime:3.2", "is unpinned ('3.2'"),
        ("quay.io/astronomer/astro-runtime", "is unpinned ('no tag'"),
        ("python:3.11", "is not an Astro Runtime image"),
    ],
)
def test_refusals_say_what_to_do(ref: str, message: str) -> None:
    with pytest.raises(VersionError, match=None) as err:
        require_pinned_runtime(parse_image(ref), source="Dockerfile:1")
    assert message in str(err.value)
    assert str(err.value).startswith("Dockerfile:1: ")


@pytest.mark.parametrize(
    "ref",
    [
        "quay.io/astronomer/astro-runtime:12.1.0-bookworm",
        "quay.io/astronomer/astro-runtime:v12",
        "quay.io/astronomer/astro-runtime:12.1.0-alpha1-beta2",
        "quay.io/astronomer/astro-runtime:12.1.0 AS x",
    ],
)
def test_unreadable_runtime_tags_are_refused(ref: str) -> None:
    with pytest.raises(VersionError):
        parse_image(ref)
