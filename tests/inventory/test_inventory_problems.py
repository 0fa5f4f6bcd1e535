"""Every inventory problem is refused with its file, line, key path and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from upgrade.config.inventory_loader import load_inventory
from upgrade.errors import EXIT_INPUT, InventoryError, VersionError

from .conftest import FleetDir

# A valid inventory; the cases below are small edits of it, so their lines are easy to see.
VALID = """
target: "12.4"
repos:
  app:
    path: repos/app
    deployments:
      - id: cl1
        name: app-dev
        workspace_id: ws1
        wave: 1
"""


def test_the_valid_base_loads(fleet: FleetDir) -> None:
    inventory = fleet.load(VALID)
    assert [d.name for d in inventory.deployments] == ["app-dev"]


def _one(fleet: FleetDir, text: str) -> tuple[int | None, str, str]:
    problems = fleet.problems(text)
    assert len(problems) == 1, [str(p) for p in problems]
    p = problems[0]
    assert p.file == str(fleet.path)
    return p.line, p.key, p.message


# (id, inventory text, line, key path, the message or the start of it)
CASES = [
    (
        "unknown top-level key",
        VALID + "notfications: {}\n",
        10, "notfications", "unknown key. Did you mean 'notifications'?",
    ),
    (
        "unknown repo key",
        VALID.replace("    path: repos/app\n", "    path: repos/app\n    dockerfle: D\n"),
        5, "repos.app.dockerfle", "unknown key. Did you mean 'dockerfile'?",
    ),
    (
        "unknown key without a close match lists the allowed keys",
        VALID.replace("        wave: 1\n", "        wave: 1\n        colour: red\n"),
        10, "repos.app.deployments[0].colour",
        "unknown key. Allowed keys: id, name, workspace_id, wave, groups, vars, target.",
    ),
    (
        "wrong type: groups as a string",
        VALID.replace("    path: repos/app\n", "    path: repos/app\n    groups: prod\n"),
        5, "repos.app.groups", "must be a list, got the string 'prod'.",
    ),
    (
        "wrong type: a Deployment id that YAML reads as a number",
        VALID.replace("id: cl1", "id: 12345"),
        6, "repos.app.deployments[0].id",
        "must be a non-empty string, got the number 12345. Quote it.",
    ),
    (
        "wrong type: a Deployment that is not a mapping",
        VALID.replace("      - id: cl1\n", "      - cl1\n      - id: cl1\n"),
        6, "repos.app.deployments[0]", "must be a mapping, got the string 'cl1'.",
    ),
    (
        "missing required key",
        VALID.replace("        workspace_id: ws1\n", ""),
        6, "repos.app.deployments[0].workspace_id", "required key is missing. Add it.",
    ),
    (
        "unknown group in a repo",
        VALID.replace("    path: repos/app\n", "    path: repos/app\n    groups: [prdo]\n")
        + "groups:\n  prod: {}\n",
        5, "repos.app.groups", "unknown group 'prdo'. Did you mean 'prod'? Define it under groups: "
        "or fix the name.",
    ),
    (
        "unknown group in a Deployment",
        VALID.replace("        wave: 1\n", "        wave: 1\n        groups: [canary]\n"),
        10, "repos.app.deployments[0].groups",
        "unknown group 'canary'. Define it under groups: or fix the name.",
    ),
    (
        "unknown child group",
        VALID + "groups:\n  prod:\n    children: [prod-eu]\n",
        12, "groups.prod.children", "unknown group 'prod-eu'.",
    ),
    (
        "unknown runner",
        VALID.replace("    path: repos/app\n", "    path: repos/app\n    runner: build-2\n")
        + "runners:\n  build-1: {host: b1}\n",
        5, "repos.app.runner",
        "unknown runner 'build-2'. Did you mean 'build-1'? Define it under runners: or use 'local'.",
    ),
    (
        "wave zero",
        VALID.replace("wave: 1", "wave: 0"),
        9, "repos.app.deployments[0].wave", "must be an integer >= 1, got the number 0.",
    ),
    (
        "wave as a word",
        VALID.replace("wave: 1", "wave: first"),
        9, "repos.app.deployments[0].wave", "must be an integer >= 1, got the string 'first'.",
    ),
    (
        "wave number that is not a positive integer",
        VALID + "waves:\n  canary: {soak: 1m}\n",
        11, "waves.canary", "wave numbers must be positive integers (1, 2, 3, ...).",
    ),
    (
        "repo path that does not exist",
        VALID.replace("repos/app", "repos/ap"),
        4, "repos.app.path", "directory '",
    ),
    (
        "Dockerfile that does not exist",
        VALID.replace("    path: repos/app\n", "    path: repos/app\n    dockerfile: docker/Df\n"),
        5, "repos.app.dockerfile", "'",
    ),
    (
        "invalid target spec",
        VALID.replace('target: "12.4"', 'target: "12.4.x.1"'),
        1, "target", "'12.4.x.1' is not a valid Runtime version spec. Accepted forms: an exact "
        "version (12.4.0, 3.1-12), a line (12.4, 12, 3.1, 3, also written 12.4.x) or 'latest'.",
    ),
    (
        "target that is not a scalar",
        VALID.replace('target: "12.4"', "target: [12.4]"),
        1, "target", 'must be a version spec such as "13", "3.1" or "12.4.2", or a mapping by '
        'line such as {airflow2: "13", airflow3: "3.1"}, got a list.',
    ),
    (
        "missing target",
        VALID.replace('target: "12.4"\n', ""),
        1, "target", 'required key is missing. Add e.g. target: "13", or {airflow2: "13", '
        'airflow3: "3.1"}, or pass --target.',
    ),
    (
        "a Deployment with no wave",
        VALID.replace("        wave: 1\n", ""),
        6, "repos.app.deployments[0]",
        "Deployment 'app-dev' has no wave. Give it one: set 'wave: N' on it, match it in "
        "waves.N.match, or put it in a group that has a 'wave'.",
    ),
    (
        "a regular expression in waves.N.match",
        VALID + "waves:\n  1:\n    match: ['~app-.*']\n",
        12, "waves.1.match[0]",
        "'~app-.*': regular expressions are not supported. Use a glob such as 'etl-*'.",
    ),
    (
        "a waves.N.match pattern that matches nothing",
        VALID + "waves:\n  2:\n    match: [app-dev, app-prod]\n",
        12, "waves.2.match[1]", "'app-prod' matches no Deployment, group or repo. Did you mean "
        "'app-dev'? Known groups: (none); repos: app.",
    ),
    (
        "a single-string waves.N.match that matches nothing",
        VALID + "waves:\n  2:\n    match: nope\n",
        12, "waves.2.match", "'nope' matches no Deployment, group or repo.",
    ),
    (
        "an invalid duration",
        VALID + "waves:\n  1: {soak: 10 minutes}\n",
        11, "waves.1.soak", "'10 minutes' is not a duration. Write a number with units d, h, m, "
        "s, largest first, e.g. 30s, 10m, 1h30m.",
    ),
    (
        "a percentage above 100",
        VALID + "waves:\n  1:\n    max_fail_percentage: 150\n",
        12, "waves.1.max_fail_percentage", "must be a number from 0 to 100, got the number 150.",
    ),
    (
        "a batch of 0%",
        VALID + "waves:\n  1:\n    batch: [1, '0%']\n",
        12, "waves.1.batch[1]", "must be a positive integer, a percentage such as '25%', or a "
        "list of those (a ramp, e.g. [1, 5, '20%']), got the string '0%'.",
    ),
    (
        "negative max_failures",
        VALID + "waves:\n  1: {max_failures: -1}\n",
        11, "waves.1.max_failures", "must be an integer >= 0, got the number -1.",
    ),
    (
        "known_hosts not one of the three",
        VALID + "runners:\n  b1: {host: b1, known_hosts: yes-please}\n",
        11, "runners.b1.known_hosts", "must be one of strict, accept-new, ignore",
    ),
    (
        "an SSH runner without a host",
        VALID + "runners:\n  b1: {user: deploy}\n",
        11, "runners.b1.host", "required key is missing. Add it.",
    ),
    (
        "the local runner only takes parallel",
        VALID + "runners:\n  local: {host: elsewhere}\n",
        11, "runners.local.host", "unknown key. Allowed keys: parallel.",
    ),
    (
        "a group named like a repo",
        VALID + "groups:\n  app: {}\n",
        11, "groups.app", "'app' is both a group and a repo",
    ),
    (
        "a reserved name",
        VALID.replace("name: app-dev", "name: all"),
        7, "repos.app.deployments[0].name", "'all' is reserved: it selects every Deployment.",
    ),
    (
        "a catalog feed file that does not exist",
        VALID + "catalog:\n  feed: feeds/missing.json\n",
        11, "catalog.feed", "file '",
    ),
    (
        "an unknown catalog mode",
        VALID + "catalog:\n  feed: https://updates.astronomer.io/astronomer-runtime\n"
        "  mode: replce\n",
        12, "catalog.mode", "must be 'extend' or 'replace', got 'replce'. Did you mean 'replace'?",
    ),
    (
        "a template path that escapes templates/",
        VALID.replace("    path: repos/app\n",
                      "    path: repos/app\n    template: {name: ../secret.j2}\n"),
        5, "repos.app.template.name", "'../secret.j2' must be a file name inside templates/",
    ),
    # Names longer than the filesystem allows (found by tests/hostile): "not there", with
    # the line, not an OSError and exit 1.
    (
        "a template name too long for the filesystem",
        VALID.replace("    path: repos/app\n",
                      f"    path: repos/app\n    template: {{name: {'é' * 300}.j2}}\n"),
        5, "repos.app.template.name", f"no template '{'é' * 300}.j2' in ",
    ),
    (
        "a catalog feed name too long for the filesystem",
        VALID + f"catalog:\n  feed: {'f' * 300}.yaml\n",
        11, "catalog.feed", "file '",
    ),
    # "Did you mean" never offers the word typed: a group with no Deployment says so.
    (
        "a wave naming an empty group",
        VALID.replace("target: \"12.4\"\n", "target: \"12.4\"\ngroups:\n  production: {}\n"
                      "waves:\n  2: {match: [production]}\n"),
        5, "waves.2.match[0]", "'production' is a group with no Deployment in it (nor in its "
        "child groups). Add Deployments to it (a Deployment's or repo's groups:), or leave it out.",
    ),
    (
        "a wave naming a repo without Deployments",
        VALID.replace("target: \"12.4\"\n", "target: \"12.4\"\nwaves:\n  2: {match: [idle]}\n")
        + "  idle:\n    path: repos/app\n    deployments: []\n",
        3, "waves.2.match[0]", "'idle' is a repo that feeds no Deployment.",
    ),
    # Every URL is parsed at load as the HTTP clients will parse it (found by tests/hostile).
    (
        "a forge_url that does not parse",
        VALID.replace("    path: repos/app\n", "    path: repos/app\n"
                      "    git: {mode: pull-request, forge: github, forge_url: 'http://[::1'}\n"),
        5, "repos.app.git.forge_url", "must be an http(s) URL with a host, e.g. "
        "https://api.github.com; it does not parse as a URL (Invalid IPv6 URL).",
    ),
    (
        "a forge_url whose port is no port",
        VALID.replace("    path: repos/app\n", "    path: repos/app\n"
                      "    git: {mode: direct, forge_url: 'https://git.example:99999/api'}\n"),
        5, "repos.app.git.forge_url", "must be an http(s) URL with a host, e.g. "
        "https://api.github.com; it does not parse as a URL (Port out of range 0-65535).",
    ),
    (
        "a catalog feed URL that does not parse",
        VALID + "catalog:\n  feed: 'https://[feed.example/runtime.json'\n",
        11, "catalog.feed", "'https://[feed.example/runtime.json' is not a URL the feed can be "
        "read from: it does not parse as a URL (Invalid IPv6 URL).",
    ),
    (
        "a webhook URL that does not parse, never echoed",
        VALID + "notifications:\n  webhook: {url: 'https://hooks.example:x/T0/secret'}\n",
        11, "notifications.webhook.url",
        "must be an http:// or https:// URL with a host; it is not.",
    ),
    (
        "a platform API URL that does not parse",
        VALID + "control_plane:\n  api_url: 'http://[::1:8000/v1'\n",
        11, "control_plane.api_url", "must be an https:// URL such as "
        "https://api.astronomer.io/v1; 'http://[::1:8000/v1' does not parse as a URL (Invalid "
        "IPv6 URL).",
    ),
    (
        "a templates directory name too long for the filesystem",
        VALID + f"templates: {'t' * 300}\n",
        10, "templates", "directory '",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "message"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_problem_is_located(
    fleet: FleetDir, text: str, line: int, key: str, message: str
) -> None:
    got_line, got_key, got_message = _one(fleet, text)
    assert (got_line, got_key) == (line, key)
    assert got_message.startswith(message), got_message


def test_problem_text_is_file_line_key_message(fleet: FleetDir) -> None:
    with pytest.raises(InventoryError) as caught:
        load_inventory(fleet.write(VALID.replace("wave: 1", "wave: 0")))
    assert str(caught.value) == (
        f"{fleet.path}:9: repos.app.deployments[0].wave: must be an integer >= 1, got the number 0."
    )
    assert caught.value.exit_code == EXIT_INPUT


def test_missing_paths_are_named_absolute(fleet: FleetDir) -> None:
    _, _, message = _one(fleet, VALID.replace("repos/app", "repos/ap"))
    assert message == (
        f"directory '{fleet.root / 'repos' / 'ap'}' does not exist. Fix the path (relative "
        "paths start at the inventory's directory)."
    )
    _, _, message = _one(fleet, VALID.replace(
        "    path: repos/app\n", "    path: repos/app\n    dockerfile: docker/Df\n"))
    assert message == (
        f"'{fleet.root / 'repos' / 'app' / 'docker' / 'Df'}' does not exist. Add the Dockerfile, "
        "set 'dockerfile' to its path in the repo, or make the repo template-managed."
    )


def test_duplicate_deployment_ids_name_both_lines(fleet: FleetDir) -> None:
    text = VALID + "      - {id: cl1, name: app-prod, workspace_id: ws1, wave: 2}\n"
    line, key, message = _one(fleet, text)
    assert (line, key) == (10, "repos.app.deployments[1].id")
    assert message == ("Deployment id 'cl1' is already used at line 6 (repos.app.deployments[0].id)"
                       ". Each Deployment must appear once; remove the duplicate or fix the id.")


def test_duplicate_deployment_names_across_repos_name_both_lines(fleet: FleetDir) -> None:
    fleet.repo("other")
    text = VALID + (
        "  other:\n"
        "    path: repos/other\n"
        "    deployments:\n"
        "      - {id: cl9, name: app-dev, workspace_id: ws1, wave: 1}\n"
    )
    line, key, message = _one(fleet, text)
    assert (line, key) == (13, "repos.other.deployments[0].name")
    assert message == ("Deployment name 'app-dev' is already used at line 7 "
                       "(repos.app.deployments[0].name). Names must be unique; rename one.")


def test_group_cycle_is_named(fleet: FleetDir) -> None:
    text = VALID + (
        "groups:\n"
        "  eu: {children: [eu-prod]}\n"
        "  eu-prod:\n"
        "    children: [eu-canary]\n"
        "  eu-canary: {children: [eu]}\n"
    )
    line, key, message = _one(fleet, text)
    assert (line, key) == (11, "groups.eu.children")
    assert message == ("groups form a cycle: eu -> eu-prod -> eu-canary -> eu. "
                       "Remove one of these children.")


def test_a_group_that_contains_itself_is_a_cycle(fleet: FleetDir) -> None:
    line, key, message = _one(fleet, VALID + "groups:\n  eu: {children: [eu]}\n")
    assert (line, key, message) == (
        11, "groups.eu.children", "groups form a cycle: eu -> eu. Remove one of these children."
    )


def test_template_managed_repo_needs_no_dockerfile(fleet: FleetDir) -> None:
    fleet.repo("managed", dockerfile=None)
    inventory = fleet.load(VALID + (
        "  managed:\n"
        "    path: repos/managed\n"
        "    template: {name: standard.Dockerfile.j2}\n"
        "    deployments: []\n"
    ))
    assert inventory.repos["managed"].template is not None


def test_ssh_runner_paths_are_not_checked_here(fleet: FleetDir) -> None:
    inventory = fleet.load(VALID + (
        "  remote:\n"
        "    path: /srv/nowhere/remote\n"
        "    runner: b1\n"
        "    deployments: []\n"
        "runners:\n"
        "  b1: {host: build-1.internal}\n"
    ))
    assert inventory.repos["remote"].path == Path("/srv/nowhere/remote")


def test_duplicate_yaml_key_in_inventory(fleet: FleetDir) -> None:
    line, key, message = _one(fleet, VALID + "target: '13'\n")
    assert (line, key, message) == (
        10, "target", "duplicate key (first at line 1). Remove one of them."
    )


def test_many_problems_are_reported_together_sorted_by_line(fleet: FleetDir) -> None:
    text = """
    target: "12.4"
    defaults:
      runnr: local
    groups:
      prod: {wave: 0}
    waves:
      1: {soak: soon}
    repos:
      app:
        path: repos/app
        groups: [prd]
        deployments:
          - {id: cl1, name: app-dev, workspace_id: ws1, wave: 1}
          - {id: cl1, name: app-prod, workspace_id: ws1, wave: -2}
      gone:
        path: repos/gone
    """
    problems = fleet.problems(text)
    got = [(p.line, p.key) for p in problems]
    assert got == [
        (3, "defaults.runnr"),
        (5, "groups.prod.wave"),
        (7, "waves.1.soak"),
        (11, "repos.app.groups"),
        (14, "repos.app.deployments[1].id"),
        (14, "repos.app.deployments[1].wave"),
        (16, "repos.gone.path"),
    ]
    assert "Did you mean 'runner'?" in problems[0].message
    assert "Did you mean 'prod'?" in problems[3].message
    with pytest.raises(InventoryError) as caught:
        load_inventory(fleet.path)
    lines = str(caught.value).splitlines()
    assert len(lines) == 7
    assert lines[0].startswith(f"{fleet.path}:3: defaults.runnr: unknown key.")


def test_top_level_must_be_a_mapping(fleet: FleetDir) -> None:
    problems = fleet.problems("- target: 12.4\n- repos: {}\n")
    assert [str(p) for p in problems] == [
        f"{fleet.path}:1: the top level must be a mapping (target, repos, ...), got a list."
    ]


def test_empty_file_is_refused_with_a_hint(fleet: FleetDir) -> None:
    problems = fleet.problems("\n# nothing yet\n")
    assert [str(p) for p in problems] == [
        f"{fleet.path}:1: the file is empty. An inventory needs at least 'target' and 'repos'; "
        "see docs/inventory.md."
    ]


def test_yaml_syntax_error_is_one_located_problem(fleet: FleetDir) -> None:
    problems = fleet.problems(VALID.replace("        wave: 1\n", "        wave: 1\n      - id: [\n"))
    assert len(problems) == 1
    assert problems[0].line == 11 and problems[0].message.startswith("invalid YAML: ")


def test_missing_inventory_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path / "inventory.yaml")
    assert str(caught.value) == f"{tmp_path / 'inventory.yaml'}: file not found. Check the path."


def test_target_override_replaces_the_files_target(fleet: FleetDir) -> None:
    inventory = fleet.load(VALID, target_override="3.1")
    assert str(inventory.target) == "12.4"  # as written
    for d in inventory.deployments:
        target, source = inventory.target_of(d)
        assert str(target) == "3.1" and target.for_line("airflow3") is not None
        assert source == "--target"
    plain = fleet.load(VALID)
    assert {plain.target_of(d)[1] for d in plain.deployments} == {"inventory"}


def test_target_override_makes_a_missing_target_fine(fleet: FleetDir) -> None:
    inventory = fleet.load(VALID.replace('target: "12.4"\n', ""), target_override="latest")
    assert inventory.target is None
    target, _ = inventory.target_of(inventory.deployments[0])
    assert target.for_line("airflow3").kind == "latest"


def test_invalid_target_override_names_the_flag(fleet: FleetDir) -> None:
    with pytest.raises(VersionError) as caught:
        fleet.load(VALID, target_override="twelve")
    assert str(caught.value).startswith("--target: 'twelve' is not a valid Runtime version spec.")
    assert caught.value.exit_code == EXIT_INPUT


def test_unquoted_target_keeps_its_digits(fleet: FleetDir) -> None:
    inventory = fleet.load(VALID.replace('target: "12.4"', "target: 12.10"))
    assert inventory.target.for_line("airflow2").prefix == (12, 10)  # not the float 12.1
