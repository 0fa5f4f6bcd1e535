"""Template failures are TemplateErrors naming file and line; the sandbox holds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from upgrade.errors import TemplateError
from upgrade.model.image import parse_image
from upgrade.model.template import RuntimeContext, render_template

RUNTIME = RuntimeContext.from_image(parse_image("quay.io/astronomer/astro-runtime:12.4.0"))


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    root.mkdir()
    return root


def render(templates: Path, body: str, name: str = "t.Dockerfile.j2", **vars) -> str:
    (templates / name).write_text(body)
    return render_template(templates, name, runtime=RUNTIME, vars=vars)


def refusal(templates: Path, body: str, **vars) -> str:
    with pytest.raises(TemplateError) as info:
        render(templates, body, **vars)
    message = str(info.value)
    assert "Traceback" not in message
    return message


def test_undefined_variable_is_named_with_file_and_line(templates):
    message = refusal(templates, "# header\nFROM {{ runtime.image }}\nENV A={{ team_name }}\n")
    assert message.startswith("templates/t.Dockerfile.j2:3: undefined variable 'team_name'.")
    assert "template vars" in message


def test_undefined_attribute_of_runtime(templates):
    message = refusal(templates, "FROM {{ runtime.imgae }}\n")
    assert message.startswith("templates/t.Dockerfile.j2:1: undefined value:")
    assert "imgae" in message


def test_syntax_error_names_the_line(templates):
    message = refusal(templates, "FROM {{ runtime.image }}\n\n{% if runtime.python %}\nENV X=1\n")
    assert message.startswith("templates/t.Dockerfile.j2:")
    assert ": syntax error: " in message and "then run again" in message
    bad = refusal(templates, "FROM {{ runtime.image }\n")
    assert bad.startswith("templates/t.Dockerfile.j2:1: syntax error: ")


def test_error_in_an_included_template_names_that_template(templates):
    (templates / "part.j2").write_text("ENV A=1\nENV B={{ nope }}\n")
    message = refusal(templates, "FROM {{ runtime.image }}\n{% include 'part.j2' %}\n")
    assert message.startswith("templates/part.j2:2: undefined variable 'nope'")


@pytest.mark.parametrize(
    "expression",
    [
        "''.__class__.__mro__",
        "''.__class__.__mro__[1].__subclasses__()",
        "runtime.__init__.__globals__",
        "runtime.__class__",
        "cycler.__init__.__globals__.os",
        "joiner.__init__.__globals__",
        "lipsum.__globals__",
        "namespace.__init__",
        "runtime.__dataclass_fields__",
        "team._secret",
        "team.__dict__",
        "self._TemplateReference__context",
        "runtime|attr('__class__')",
    ],
)
def test_sandbox_escapes_are_refused(templates, expression):
    message = refusal(templates, f"FROM {{{{ runtime.image }}}}\nRUN echo {{{{ {expression} }}}}\n",
                      team=Team())
    assert message.startswith("templates/t.Dockerfile.j2:2: "), message
    assert "the template sandbox refused an unsafe operation" in message
    assert "hunter2" not in message


class Team:
    name = "data"
    _secret = "hunter2"


def test_inputs_cannot_be_mutated(templates):
    packages = ["git"]
    message = refusal(templates, "{{ packages.append('curl') }}\n", packages=packages)
    assert "sandbox refused an unsafe operation" in message
    assert packages == ["git"]


def test_resource_bombs_are_refused(templates):
    assert "sandbox refused" in refusal(templates, "{{ 2 ** 100000000 }}\n")
    assert "OverflowError" in refusal(templates, "{{ range(10 ** 9) | list }}\n")


@pytest.mark.parametrize(
    "name",
    ["../secret.j2", "sub/../../secret.j2", "/etc/passwd", "..\\secret.j2", "", "C:/x.j2", "~/x.j2"],
)
def test_path_traversal_in_the_template_name_is_refused(templates, name):
    (templates.parent / "secret.j2").write_text("TOKEN=abc\n")
    with pytest.raises(TemplateError) as info:
        render_template(templates, name, runtime=RUNTIME, vars={})
    assert "must be a relative path inside templates/" in str(info.value)


def test_include_outside_the_templates_dir_is_refused(templates):
    (templates.parent / "secret.j2").write_text("TOKEN=abc\n")
    message = refusal(templates, "{% include '../secret.j2' %}\n")
    assert message.startswith("templates/t.Dockerfile.j2:1: includes '../secret.j2'")
    assert "abc" not in message


def test_symlink_out_of_the_templates_dir_is_refused(templates):
    (templates.parent / "secret.j2").write_text("TOKEN=abc\n")
    os.symlink(templates.parent / "secret.j2", templates / "link.j2")
    with pytest.raises(TemplateError, match="no such template"):
        render_template(templates, "link.j2", runtime=RUNTIME, vars={})


def test_var_names_must_be_identifiers(templates):
    (templates / "t.j2").write_text("x\n")
    with pytest.raises(TemplateError, match="cannot be passed"):
        render_template(templates, "t.j2", runtime=RUNTIME, vars={"a-b": 1})


def test_require_stops_rendering_with_the_template_authors_message(templates):
    body = (
        "FROM {{ runtime.image }}\n"
        "{% set ok = require(team | length > 2, 'team must be longer than 2 letters. "
        "Fix it in the repo vars') %}\n"
    )
    message = refusal(templates, body, team="ab")
    assert message == (
        "templates/t.Dockerfile.j2:2: team must be longer than 2 letters. Fix it in the repo vars."
    )
    assert render(templates, body, team="abc") == "FROM quay.io/astronomer/astro-runtime:12.4.0\n"
