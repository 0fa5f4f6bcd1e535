"""API contract of the engine: messages name the given path, bad input never escapes as a crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upgrade.errors import DockerfileError, InputError
from upgrade.model.dockerfile import BaseImage, find_base_image, retarget
from upgrade.model.versions import parse_version


def test_messages_name_the_path_given_by_the_caller():
    with pytest.raises(DockerfileError) as info:
        find_base_image("FROM quay.io/astronomer/astro-runtime:latest\n",
                        path="repos/payments/Dockerfile")
    assert str(info.value).startswith("repos/payments/Dockerfile:1: ")
    assert isinstance(info.value, InputError)  # exit code 2 at the CLI boundary


def test_base_image_is_frozen_and_reports_the_arg():
    base = find_base_image('ARG V="3.1-9"\n\nFROM astrocrpublic.azurecr.io/runtime:${V}-base AS a\n',
                           path="Dockerfile")
    assert base == BaseImage(line=3, edit_line=1, image=base.image,
                             version=parse_version("3.1-9"), arg="V")
    assert base.image.variants == ("base",)
    with pytest.raises(AttributeError):
        base.line = 4  # type: ignore[misc]


def test_equal_version_returns_the_very_same_text():
    text = "FROM quay.io/astronomer/astro-runtime:12.4.0-base\r\n\r\n"
    assert retarget(text, parse_version("12.4.0"), path="Dockerfile") is text


LINES = st.sampled_from([
    "FROM quay.io/astronomer/astro-runtime:12.3.0", "FROM ${X}", "ARG X=astrocrpublic.azurecr.io/runtime:3.1-2",
    "ARG X", "ARG X=\"quay.io/astronomer/astro-runtime:13.1.0-base", "from x AS y", "FROM y",
    "RUN echo \\", "RUN cat <<EOF", "EOF", "# escape=`", "# syntax=x", "FROM --platform=$P", "",
    "FROM quay.io/astronomer/astro-runtime:${X:-1}", "ARG =1", "FROM a b c", "\ufeffFROM z:1",
    "FROM quay.io/astronomer/ap-airflow:2.2.0", "FROM quay.io/astronomer/astro-runtime:1.2",
])


@settings(max_examples=250, deadline=None)
@given(st.lists(st.one_of(LINES, st.text(max_size=30)), max_size=8),
       st.sampled_from(["\n", "\r\n"]))
def test_any_input_is_an_answer_or_a_located_refusal(lines, eol):
    text = eol.join(lines)
    try:
        base = find_base_image(text, path="Dockerfile")
    except DockerfileError as exc:
        assert str(exc).startswith("Dockerfile:")
        return
    target = parse_version("3.9-99")  # above every version the lines above can hold
    try:
        result = retarget(text, target, path="Dockerfile")
    except DockerfileError as exc:  # e.g. a mirror or a shared ARG: refused, but located
        assert str(exc).startswith("Dockerfile:")
        return
    assert base.version < target
    assert find_base_image(result, path="Dockerfile").version == target
