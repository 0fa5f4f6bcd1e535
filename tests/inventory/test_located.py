"""The located YAML loader: safe, line-accurate, and strict about duplicates."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from upgrade.config.checker import Checker
from upgrade.config.located import LMap, LScalar, LSeq, load, loads
from upgrade.errors import PlaybookError, ProblemsError


def _loads(text: str) -> object:
    return loads(textwrap.dedent(text).lstrip("\n"), file="f.yaml")


def _problems(text: str) -> list[str]:
    with pytest.raises(ProblemsError) as caught:
        _loads(text)
    return [str(p) for p in caught.value.problems]


def test_every_node_and_key_knows_its_line() -> None:
    root = _loads(
        """
        # a comment
        top:
          name: billing
          items:
            - first
            - {inner: 3}
        other: 1
        """
    )
    assert isinstance(root, LMap)
    assert root.key_line("top") == 2
    assert root.key_line("other") == 7
    top = root.get("top")
    assert isinstance(top, LMap) and top.line == 3
    assert top.key_line("items") == 4
    items = top.get("items")
    assert isinstance(items, LSeq) and [i.line for i in items] == [5, 6]
    assert root.line_of("top", "items", 1, "inner") == 6
    assert root.line_of("top", "missing", "deeper") == 2  # deepest key that exists
    assert root.plain() == {"top": {"name": "billing", "items": ["first", {"inner": 3}]},
                            "other": 1}


def test_scalars_keep_the_text_as_written() -> None:
    root = _loads("a: 12.10\nb: '12.10'\nc: 3.1\nd: true\ne:\n")
    assert isinstance(root, LMap)
    a = root.get("a")
    assert isinstance(a, LScalar)
    assert a.value == 12.1 and a.text == "12.10"  # the float loses the trailing 0; text does not
    assert root.get("b").value == "12.10"  # type: ignore[union-attr]
    assert root.get("d").value is True  # type: ignore[union-attr]
    assert root.get("e").value is None  # type: ignore[union-attr]


def test_duplicate_keys_are_refused_with_both_lines() -> None:
    problems = _problems(
        """
        repos:
          billing: {path: a}
          search: {path: b}
          billing: {path: c}
        """
    )
    assert problems == [
        "f.yaml:4: repos.billing: duplicate key (first at line 2). Remove one of them."
    ]


def test_every_duplicate_in_a_file_is_reported() -> None:
    problems = _problems("a: 1\na: 2\nb:\n  - {x: 1, x: 2}\n")
    assert problems == [
        "f.yaml:2: a: duplicate key (first at line 1). Remove one of them.",
        "f.yaml:4: b[0].x: duplicate key (first at line 4). Remove one of them.",
    ]


def test_syntax_error_is_one_problem_with_its_line() -> None:
    problems = _problems(
        """
        target: "12.4"
        repos:
          app:
            path: [unclosed
          other: 1
        """
    )
    assert len(problems) == 1
    assert problems[0].startswith("f.yaml:5: invalid YAML: ")
    assert "Fix the syntax" in problems[0]


def test_tab_indentation_is_a_syntax_error_on_its_line() -> None:
    problems = _problems("a:\n  b: 1\n\tc: 2\n")
    assert len(problems) == 1 and problems[0].startswith("f.yaml:3: invalid YAML: ")


def test_custom_tags_are_refused_not_executed() -> None:
    problems = _problems("a: !!python/object/apply:os.system ['echo hacked']\nb: !vault abc\n")
    assert problems[0].startswith("f.yaml:1: a: unsupported YAML tag 'tag:yaml.org,2002:python/")
    assert problems[1] == (
        "f.yaml:2: b: unsupported YAML tag '!vault'. Use plain strings, numbers, booleans, "
        "lists and mappings."
    )


def test_anchors_aliases_and_merge_keys_work() -> None:
    root = _loads(
        """
        base: &base {runner: local, dockerfile: Dockerfile}
        repos:
          a:
            <<: *base
            runner: build-1
          b: *base
        """
    )
    assert root.plain()["repos"] == {  # type: ignore[union-attr]
        "a": {"runner": "build-1", "dockerfile": "Dockerfile"},
        "b": {"runner": "local", "dockerfile": "Dockerfile"},
    }


def test_recursive_alias_is_refused() -> None:
    problems = _problems("a: &a\n  - *a\n")
    # Reported where the anchor starts: the alias is that very node.
    assert problems == ["f.yaml:1: a[0]: an alias refers to itself. Remove the recursive alias."]


def test_empty_file_loads_as_null_on_line_one(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# only a comment\n")
    root = load(path)
    assert isinstance(root, LScalar) and root.value is None and root.line == 1


def test_several_documents_are_refused() -> None:
    problems = _problems("a: 1\n---\nb: 2\n")
    assert len(problems) == 1 and problems[0].startswith("f.yaml:2: invalid YAML: ")


def test_missing_file_names_the_file_and_uses_the_callers_error(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError) as caught:
        load(tmp_path / "nope.yaml", error=PlaybookError, display="playbooks/nope.yaml")
    assert str(caught.value) == "playbooks/nope.yaml: file not found. Check the path."


def test_checker_reports_unknown_keys_with_did_you_mean_and_missing_keys() -> None:
    node = _loads("steps:\n  - nmae: render\n    argz: {}\n    when: x\n")
    step = node.get("steps").items[0]  # type: ignore[union-attr]
    checker = Checker("play.yaml")
    checker.keys(step, ("name", "args", "retries"), "steps[0]", required=("name",))
    assert [str(p) for p in checker.problems] == [
        "play.yaml:2: steps[0].nmae: unknown key. Did you mean 'name'?",
        "play.yaml:3: steps[0].argz: unknown key. Did you mean 'args'?",
        "play.yaml:4: steps[0].when: unknown key. Allowed keys: name, args, retries.",
        "play.yaml:2: steps[0].name: required key is missing. Add it.",
    ]
    with pytest.raises(PlaybookError) as caught:
        checker.raise_if_any(PlaybookError)
    assert str(caught.value).splitlines()[0].startswith("play.yaml:2: steps[0].name")


def test_checker_type_errors_name_what_was_found() -> None:
    node = _loads("a: [1]\nb: 'x'\nc: true\nd: 7\ne: yes-ish\nf: 150\n")
    assert isinstance(node, LMap)
    checker = Checker("x.yaml")
    assert checker.string(node, "a", "") is None
    assert checker.integer(node, "b", "", minimum=1) is None
    assert checker.integer(node, "c", "", minimum=1) is None  # a boolean is not an integer
    assert checker.string(node, "d", "") is None  # numbers must be quoted to be strings
    assert checker.boolean(node, "e", "", default=False) is False
    assert checker.number(node, "f", "", minimum=0, maximum=100) is None
    assert [str(p) for p in checker.problems] == [
        "x.yaml:1: a: must be a string, got a list.",
        "x.yaml:2: b: must be an integer >= 1, got the string 'x'.",
        "x.yaml:3: c: must be an integer >= 1, got the boolean true.",
        "x.yaml:4: d: must be a non-empty string, got the number 7. Quote it.",
        "x.yaml:5: e: must be true or false, got the string 'yes-ish'.",
        "x.yaml:6: f: must be a number from 0 to 100, got the number 150.",
    ]


def test_invalid_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("a: 1\nb: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ProblemsError) as caught:
        load(path)
    (problem,) = caught.value.problems
    assert problem.line == 2
    assert problem.message.startswith("the text is not valid UTF-8 or holds a control character")


TRICKY_SCALARS = [
    "yes", "No", "on", "OFF", "~", "null", "", "0x1F", "0o17", "017", "1_000", "1e3",
    "1.5e-3", "6.02e+23", ".inf", "-.INF", "2024-01-02", "2024-01-02T03:04:05Z", "12.10",
    "3.1-12", "true", "TRUE", "tRue", "+12", "-0", "0b101", "1:30", "'quoted'", '"12"',
    "plain text", "=", "<<x", "12.4.0",
]


@pytest.mark.parametrize("text", TRICKY_SCALARS)
def test_scalars_resolve_exactly_like_yaml_safe_load(text: str) -> None:
    document = f"a: {text}\nb: [{text}]\n"
    # safe_load cannot build YAML 1.1's value tag for a bare "="; here it is just text.
    expected = {"a": "=", "b": ["="]} if text == "=" else yaml.safe_load(document)
    assert _loads(document).plain() == expected  # type: ignore[attr-defined]
