"""The limits on input (docs/inventory.md, "Limits"): each refusal is exit 2 with file:line,
in bounded time and memory, wherever in the file the hostile part sits.

An alias bomb hung `plan` and grew past 1.8 GB; 500 levels of nesting and a 5,000-digit
target crashed with exit 1. Each is refused now, in-process and as the real command.
"""

from __future__ import annotations

import textwrap
import tracemalloc
from pathlib import Path

import pytest

from tests.hostile.harness import LOCATED, run_command
from upgrade.config.inventory_loader import load_inventory
from upgrade.config.located import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NUMBER_CHARS,
    MAX_STRING_CHARS,
)
from upgrade.config.playbook_loader import load_playbook
from upgrade.errors import EXIT_INPUT, InventoryError, PlaybookError, ProblemsError, VersionError
from upgrade.model.versions import MAX_VERSION_CHARS, parse_spec

VALID = """\
target: "13"
defaults:
  vars: {owner: platform}
groups:
  g:
    vars: {team: a}
waves:
  1:
    parallel: 2
repos:
  app:
    path: repos/app
    groups: [g]
    vars: {tier: dev}
    deployments:
      - id: cl1
        name: app-dev
        workspace_id: ws1
        wave: 1
        vars: {x: 1}
"""


def bomb(levels: int = 9) -> str:
    """A flow mapping whose last anchor expands to 9**levels nodes ("billion laughs")."""
    parts = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    parts += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "{" + ", ".join(parts) + "}"


# Where the bomb goes: (the line of VALID it replaces, what it becomes).
SECTIONS = {
    "defaults.vars": ("  vars: {owner: platform}", "  vars: {bomb}"),
    "groups.g.vars": ("    vars: {team: a}", "    vars: {bomb}"),
    "waves.1": ("    parallel: 2", "    verify: {bomb}"),
    "repos.app.vars": ("    vars: {tier: dev}", "    vars: {bomb}"),
    "deployment vars": ("        vars: {x: 1}", "        vars: {bomb}"),
    "top level": ('target: "13"', 'target: "13"\nunknown: {bomb}'),
}


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    repo = tmp_path / "repos" / "app"
    repo.mkdir(parents=True)
    (repo / "Dockerfile").write_text("FROM quay.io/astronomer/astro-runtime:12.4.0\n")
    return tmp_path


def write(fleet: Path, text: str) -> Path:
    path = fleet / "inventory.yaml"
    path.write_text(text)
    return path


def refused(path: Path) -> list[str]:
    """Load ``path``: it must be refused (exit 2), every problem at a line, in bounded
    memory (the work an expansion does shows there; time is the machine's). The problems
    as printed."""
    tracemalloc.start()
    try:
        with pytest.raises(ProblemsError) as caught:
            load_inventory(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.exit_code == EXIT_INPUT
    assert peak < 200 * 1024 * 1024, f"{peak / 1e6:.0f} MB"
    problems = [str(p) for p in caught.value.problems]
    for problem in problems:
        assert LOCATED.match(problem), problem
    return problems


def test_the_base_is_valid(fleet: Path) -> None:
    assert [d.name for d in load_inventory(write(fleet, VALID)).deployments] == ["app-dev"]


@pytest.mark.parametrize("section", SECTIONS)
def test_an_alias_bomb_in_any_section_is_refused_at_its_line(fleet: Path, section: str) -> None:
    old, new = SECTIONS[section]
    text = VALID.replace(old, new.replace("{bomb}", bomb()))
    line = text.splitlines().index(next(ln for ln in text.splitlines() if "&a0" in ln)) + 1
    problems = refused(write(fleet, text))
    message = f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes"
    assert any(p.startswith(f"{fleet / 'inventory.yaml'}:{line}: ") and message in p
               for p in problems), problems


def test_aliases_that_add_fewer_nodes_than_the_limit_load(fleet: Path) -> None:
    # 9**4 = 6,561 nodes from aliases: fine (anchors are YAML; people use them).
    text = VALID.replace("  vars: {owner: platform}", f"  vars: {bomb(4)}")
    assert load_inventory(write(fleet, text)).defaults.vars["a3"][0][0][0] == ["x"] * 9


def test_a_merge_key_bomb_is_refused(fleet: Path) -> None:
    anchors = ["b0: &b0 {k0: [x, x, x, x, x, x, x, x, x, x]}"]
    anchors += [f"b{i}: &b{i} {{{', '.join(f'k{j}: *b{i - 1}' for j in range(10))}}}"
                for i in range(1, 8)]
    text = VALID.replace("  vars: {owner: platform}",
                         "  vars: {" + ", ".join(anchors) + ", m: {<<: *b7}}")
    problems = refused(write(fleet, text))
    assert any("aliases expand" in p for p in problems), problems


def test_the_alias_bomb_as_the_real_command(fleet: Path) -> None:
    """`astro-fleet plan` refuses it well under 200 MB (it grew past 1.8 GB)."""
    write(fleet, VALID.replace("    vars: {tier: dev}", f"    vars: {bomb()}"))
    run = run_command(["plan", "--offline"], fleet)
    assert run.code == EXIT_INPUT, run.stderr
    assert "inventory.yaml:14: repos.app.vars" in run.stderr and "aliases expand" in run.stderr
    assert 0 < run.peak_rss < 200 * 1024 * 1024, run.peak_rss
    assert not (fleet / ".upgrade").exists()  # nothing written, not even the journal


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 500, 999, 1000, 1500])
def test_deep_nesting_is_refused_at_its_line(fleet: Path, levels: int) -> None:
    text = VALID + "\n" * 3 + "x: " + "[" * levels + "]" * levels + "\n"
    problems = refused(write(fleet, text))
    line = text.count("\n")
    assert any(p.startswith(f"{fleet / 'inventory.yaml'}:{line}: ") for p in problems), problems
    assert any("nest" in p for p in problems), problems


def test_nesting_to_the_limit_loads(fleet: Path) -> None:
    depth = MAX_DEPTH - 3  # top level, defaults, vars, then the lists
    text = VALID.replace("{owner: platform}", "{deep: " + "[" * depth + "]" * depth + "}")
    load_inventory(write(fleet, text))


def test_deep_nesting_as_the_real_command(fleet: Path) -> None:
    write(fleet, VALID.replace("{owner: platform}", "{x: " + "[" * 500 + "]" * 500 + "}"))
    run = run_command(["plan", "--offline"], fleet)
    assert run.code == EXIT_INPUT, run.stderr
    assert "inventory.yaml:3: defaults.vars.x" in run.stderr
    assert f"nested deeper than {MAX_DEPTH} levels" in run.stderr


@pytest.mark.parametrize("written", [
    "9" * 5000,                    # a YAML integer
    '"' + "9" * 5000 + '"',        # a string of digits
    '"13.0.' + "9" * 5000 + '"',   # an exact version with a huge patch
    '"3.1-' + "9" * 4400 + '"',    # an Airflow 3 build number
    "{airflow2: \"" + "1" * 4400 + "\"}",
])
def test_a_huge_number_as_the_target_is_refused_at_its_line(fleet: Path, written: str) -> None:
    problems = refused(write(fleet, VALID.replace('target: "13"', f"target: {written}")))
    assert len(problems) == 1 and problems[0].startswith(f"{fleet / 'inventory.yaml'}:1: "), problems
    assert len(problems[0]) < 400  # the value is not echoed whole


def test_a_huge_target_in_a_group_and_on_the_command_line(fleet: Path) -> None:
    text = VALID.replace("    vars: {team: a}", '    target: "' + "7" * 5000 + '"')
    assert refused(write(fleet, text))[0].startswith(f"{fleet / 'inventory.yaml'}:6: groups.g.target")
    with pytest.raises(VersionError, match=rf"--target: .*\(at most {MAX_VERSION_CHARS}\)"):
        parse_spec("13.0." + "9" * 5000, source="--target")
    write(fleet, VALID)
    run = run_command(["plan", "--offline", "--target", "1" * 5000], fleet)
    assert run.code == EXIT_INPUT and "--target:" in run.stderr, run.stderr


def test_a_long_string_and_a_long_number_are_refused(fleet: Path) -> None:
    text = VALID.replace("{owner: platform}", '{owner: "' + "o" * (MAX_STRING_CHARS + 1) + '"}')
    text = text.replace("{x: 1}", "{x: " + "1" * (MAX_NUMBER_CHARS + 1) + "}")
    problems = refused(write(fleet, text))
    assert [p.split(": ")[0] for p in problems] == [
        f"{fleet / 'inventory.yaml'}:3", f"{fleet / 'inventory.yaml'}:20"]
    assert f"the limit is {MAX_STRING_CHARS:,}" in problems[0]
    assert f"the limit is {MAX_NUMBER_CHARS:,}" in problems[1]


def test_a_long_key_is_refused(fleet: Path) -> None:
    # An explicit key ("? "): YAML allows implicit keys of at most 1,024 characters.
    key = "k" * (MAX_STRING_CHARS + 1)
    text = VALID.replace("  vars: {owner: platform}", f"  vars:\n    ? {key}\n    : 1")
    problems = refused(write(fleet, text))
    assert problems[0].startswith(f"{fleet / 'inventory.yaml'}:4: defaults.vars: a string of "), problems


def test_a_file_past_the_size_limit_is_refused_at_the_line_it_passes_it(fleet: Path) -> None:
    line = "# " + "x" * 1021 + "\n"  # 1 KiB a line
    text = VALID + line * (MAX_FILE_BYTES // len(line) + 10)
    problems = refused(write(fleet, text))
    line = text[:MAX_FILE_BYTES].count("\n") + 1
    assert problems == [f"{fleet / 'inventory.yaml'}:{line}: the file is larger than 8 MiB (the "
                        "limit is reached at this line). Split the fleet, or remove what does "
                        "not belong in it."]


def test_a_duration_with_huge_numbers_is_refused(fleet: Path) -> None:
    text = VALID.replace("    parallel: 2", "    soak: " + "9" * 5000 + "s")
    problems = refused(write(fleet, text))
    assert problems[0].startswith(f"{fleet / 'inventory.yaml'}:9: waves.1.soak"), problems


def test_the_playbook_has_the_same_limits(tmp_path: Path) -> None:
    book = tmp_path / "upgrade.yaml"
    book.write_text(textwrap.dedent(f"""\
        name: bombed
        vars: {bomb()}
        steps: []
        """))
    with pytest.raises(PlaybookError) as caught:
        load_playbook(book)
    assert any(str(p).startswith(f"{book}:2: ") and "aliases expand" in str(p)
               for p in caught.value.problems), caught.value


def test_an_inventory_error_is_still_an_inventory_error() -> None:
    assert issubclass(InventoryError, ProblemsError)
