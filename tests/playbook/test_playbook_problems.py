"""Every playbook problem is refused with its file, line, key path and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from upgrade.config.playbook_loader import load_playbook
from upgrade.errors import EXIT_INPUT, PlaybookError

from .conftest import SHOWN, BookDir

# A valid playbook; the cases below are small edits of it, so their lines are easy to see.
VALID = """
name: Test
steps:
  - name: Rewrite
    render: {}
  - commit:
      push: false
  - name: Parse
    run:
      argv: ["astro", "dev", "parse"]
      timeout: 600
  - deploy:
      timeout: 1800
  - verify:
      checks: [version, healthy]
"""


def test_the_valid_base_loads(book: BookDir) -> None:
    playbook = book.load(VALID)
    assert [s.kind for s in playbook.steps] == ["render", "commit", "run", "deploy", "verify"]
    assert playbook.warnings == ()


def _one(book: BookDir, text: str) -> tuple[int | None, str, str]:
    problems = book.problems(text)
    assert len(problems) == 1, [str(p) for p in problems]
    p = problems[0]
    assert p.file == SHOWN
    return p.line, p.key, p.message


def _sub(old: str, new: str) -> str:
    assert old in VALID, old
    return VALID.replace(old, new)


# (id, playbook text, line, key path, the start of the message)
CASES = [
    (
        "unknown step kind, with did-you-mean",
        _sub("    render: {}\n", "    rendr: {}\n"),
        4, "steps[0].rendr", "unknown step kind or key. Did you mean 'render'?",
    ),
    (
        "unknown step kind without a close match lists the kinds",
        _sub("    render: {}\n", "    shell: {}\n"),
        4, "steps[0].shell",
        "unknown step kind or key. Step kinds: render, commit, run, deploy, verify, wait;",
    ),
    (
        "unknown top-level key",
        VALID + "stpes: []\n",
        15, "stpes", "unknown key. Did you mean 'steps'?",
    ),
    (
        "unknown argument, with did-you-mean",
        _sub("      push: false\n", "      pushh: false\n"),
        6, "steps[1].commit.pushh", "unknown key. Did you mean 'push'?",
    ),
    (
        "unknown argument without a close match lists the arguments",
        _sub("      timeout: 1800\n", "      colour: red\n"),
        12, "steps[3].deploy.colour",
        "unknown key. Allowed keys: timeout, description, when, retries.",
    ),
    (
        "wrong type: push as a string",
        _sub("push: false", "push: nope"),
        6, "steps[1].commit.push", "must be true or false, got the string 'nope'.",
    ),
    (
        "wrong type: a timeout as a string",
        _sub("timeout: 600", "timeout: ten minutes"),
        10, "steps[2].run.timeout",
        "must be a number of seconds > 0 and <= 86400, got the string 'ten minutes'.",
    ),
    (
        "out of range: a negative timeout",
        _sub("timeout: 1800", "timeout: -1"),
        12, "steps[3].deploy.timeout",
        "must be a number of seconds > 0 and <= 86400, got the number -1.",
    ),
    (
        "out of range: a zero wait",
        VALID + "  - wait: {seconds: 0}\n",
        15, "steps[5].wait.seconds", "must be a number of seconds > 0 and <= 86400, got the number 0.",
    ),
    (
        "wait without its required seconds",
        VALID + "  - wait: {}\n",
        15, "steps[5].wait.seconds", "required argument is missing. Add it;",
    ),
    (
        "arguments that are not a mapping",
        VALID + "  - wait: 30\n",
        15, "steps[5].wait",
        "must be a mapping of arguments, got the number 30. Write it like 'wait: {seconds: 30}'",
    ),
    (
        "argv given as a string says to use a list",
        _sub('argv: ["astro", "dev", "parse"]', "argv: astro dev parse"),
        9, "steps[2].run.argv",
        "must be a list of strings, not one string: a command line is never split or given "
        "to a shell. Use a list,",
    ),
    (
        "argv empty",
        _sub('argv: ["astro", "dev", "parse"]', "argv: []"),
        9, "steps[2].run.argv", "must be a non-empty list of strings, got a list.",
    ),
    (
        "argv item a number",
        _sub('argv: ["astro", "dev", "parse"]', 'argv: ["sleep", 5]'),
        9, "steps[2].run.argv[1]", "must be a string, got the number 5. Quote it.",
    ),
    (
        "run without argv",
        _sub('      argv: ["astro", "dev", "parse"]\n', ""),
        9, "steps[2].run.argv", "required argument is missing.",
    ),
    (
        "absolute cwd",
        _sub("      timeout: 600\n", "      timeout: 600\n      cwd: /etc\n"),
        11, "steps[2].run.cwd", "'/etc' is absolute; it must be a path relative to the repo.",
    ),
    (
        "cwd leaving the repo",
        _sub("      timeout: 600\n", "      timeout: 600\n      cwd: tests/../../other\n"),
        11, "steps[2].run.cwd", "'tests/../../other' leaves the repo; it must stay inside it.",
    ),
    (
        "env name that is not an environment variable name",
        _sub("      timeout: 600\n", "      timeout: 600\n      env: {'MY-VAR': x}\n"),
        11, "steps[2].run.env.MY-VAR", "is not an environment variable name",
    ),
    (
        "env value a number",
        _sub("      timeout: 600\n", "      timeout: 600\n      env: {PORT: 8080}\n"),
        11, "steps[2].run.env.PORT", "must be a string, got the number 8080. Quote it.",
    ),
    (
        "a branch name git refuses, starting with a dash",
        _sub("      push: false\n", "      push: false\n      branch: --force\n"),
        7, "steps[1].commit.branch", "'--force' is not a valid git name",
    ),
    (
        "a branch name with a space",
        _sub("      push: false\n", "      push: false\n      branch: my branch\n"),
        7, "steps[1].commit.branch", "'my branch' is not a valid git name",
    ),
    (
        "bad when: a bare word",
        _sub("    run:\n", "    when: maybe\n    run:\n"),
        8, "steps[2].when",
        "must be true or false, or a template that renders to one, got the string 'maybe'.",
    ),
    (
        "bad when: an Ansible-style bare expression",
        _sub("    run:\n", "    when: vars.run_parse\n    run:\n"),
        8, "steps[2].when", "must be true or false, or a template that renders to one",
    ),
    (
        "when given twice",
        _sub("      timeout: 600\n", "      timeout: 600\n      when: true\n")
        .replace("    run:\n", "    when: false\n    run:\n"),
        12, "steps[2].run.when", "given twice: at the step (line 8) and in its arguments. Keep one.",
    ),
    (
        "retries on deploy, which is not safe to repeat",
        _sub("      timeout: 1800\n", "      timeout: 1800\n    retries: 2\n"),
        13, "steps[3].retries", "deploy is not safe to repeat, so it cannot have retries",
    ),
    (
        "retries out of range",
        _sub("      timeout: 600\n", "      timeout: 600\n    retries: 99\n"),
        11, "steps[2].retries", "must be an integer from 0 to 10, got the number 99.",
    ),
    (
        "a timeout on a step kind that has none",
        _sub("    render: {}\n", "    render: {}\n    timeout: 5\n"),
        5, "steps[0].timeout", "render has no timeout. Remove it.",
    ),
    (
        "two kind keys in one step",
        _sub("  - deploy:\n      timeout: 1800\n", "  - deploy:\n      timeout: 1800\n    verify: {}\n"),
        13, "steps[3]",
        "a step has exactly one kind, this one has 'deploy' and 'verify'. Split it into one "
        "step per kind.",
    ),
    (
        "a step without a kind",
        _sub("  - commit:\n      push: false\n", "  - name: Lonely\n"),
        5, "steps[1]", "the step has no kind. Add one of: render, commit, run, deploy, verify, wait.",
    ),
    (
        "a step that is not a mapping",
        _sub("  - commit:\n      push: false\n", "  - commit\n"),
        5, "steps[1]", "must be a mapping, got the string 'commit'.",
    ),
    (
        "unknown check name, with did-you-mean",
        _sub("[version, healthy]", "[version, helthy]"),
        14, "steps[4].verify.checks[1]", "unknown check 'helthy'. Did you mean 'healthy'?",
    ),
    (
        "a check listed twice",
        _sub("[version, healthy]", "[version, healthy, version]"),
        14, "steps[4].verify.checks[2]", "check 'version' is listed twice (first at line 14).",
    ),
    (
        "a check that needs settings, given as a bare name",
        _sub("[version, healthy]", "[version, http]"),
        14, "steps[4].verify.checks[1].url",
        "check 'http' needs 'url'. Write it as a mapping: {name: http, url: ...}.",
    ),
    (
        "a check setting that does not exist",
        _sub("      checks: [version, healthy]\n",
             "      checks:\n        - version\n        - {name: import_errors, max_nwe: 0}\n"),
        16, "steps[4].verify.checks[1].max_nwe", "unknown key. Did you mean 'max_new'?",
    ),
    (
        "a check setting of the wrong type",
        _sub("      checks: [version, healthy]\n",
             "      checks:\n        - version\n        - name: http\n          url: http://x/health\n"
             "          status: ok\n"),
        18, "steps[4].verify.checks[1].status",
        "must be an integer >= 100 and <= 599, got the string 'ok'.",
    ),
    (
        "inconclusive outside its choices",
        _sub("      checks: [version, healthy]\n",
             "      checks: [version, healthy]\n      inconclusive: retry\n"),
        15, "steps[4].verify.inconclusive", "must be one of fail, pass, got the string 'retry'.",
    ),
    (
        "poll interval longer than the timeout",
        _sub("      checks: [version, healthy]\n",
             "      checks: [version, healthy]\n      timeout: 60\n      poll_interval: 120\n"),
        16, "steps[4].verify.poll_interval", "is longer than the timeout (120 > 60). Lower it.",
    ),
    (
        "empty steps",
        "name: Nothing\nsteps: []\n",
        2, "steps", "the playbook has no steps. List at least one",
    ),
    (
        "missing steps",
        "name: Nothing\n",
        1, "steps", "the playbook has no steps.",
    ),
    (
        "steps as a mapping",
        "steps:\n  render: {}\n",
        1, "steps", "must be a list, got a mapping.",
    ),
    (
        "a playbook that is a list",
        "- render: {}\n",
        1, "", "a playbook must be a mapping with 'name' and 'steps', got a list.",
    ),
    # Order rules
    (
        "two render steps",
        VALID.replace("  - commit:\n", "  - render: {}\n  - commit:\n"),
        5, "steps[1]", "a playbook has at most one render step; there is one already at steps[0] (line 3).",
    ),
    (
        "commit before render",
        "steps:\n  - commit: {}\n  - render: {}\n  - deploy: {}\n",
        2, "steps[0]", "commit comes before render (steps[1]), so it would commit nothing new.",
    ),
    (
        "commit after deploy",
        "steps:\n  - render: {}\n  - deploy: {}\n  - commit: {}\n",
        4, "steps[2]", "commit comes after deploy (steps[1]), so what is deployed would not be committed.",
    ),
    (
        "verify before deploy",
        "steps:\n  - render: {}\n  - verify: {}\n  - deploy: {}\n",
        3, "steps[1]", "verify checks a new deploy, but it comes before deploy (steps[2]).",
    ),
    (
        "verify without any deploy",
        "steps:\n  - render: {}\n  - verify: {}\n",
        3, "steps[1]", "verify checks a new deploy, but it comes without a deploy step.",
    ),
    (
        "a repo step after a Deployment step",
        "steps:\n  - render: {}\n  - deploy: {}\n  - run: {argv: [make, smoke]}\n",
        4, "steps[2]", "run runs once per repo, so it must come before every Deployment step (deploy at steps[1]).",
    ),
    # Templates, checked at load time
    (
        "template syntax error",
        _sub("push: false", 'push: false\n      branch: "upgrade/{{ target }"'),
        7, "steps[1].commit.branch", "template syntax error: unexpected '}'. Fix the template.",
    ),
    (
        "template calling an unknown filter",
        _sub("push: false", 'push: false\n      message: "{{ target | shout }}"'),
        7, "steps[1].commit.message", "template syntax error: No filter named 'shout'.",
    ),
    (
        "template reading an unknown variable, with did-you-mean",
        _sub('argv: ["astro", "dev", "parse"]', 'argv: ["echo", "{{ tagret }}"]'),
        9, "steps[2].run.argv[1]", "unknown template variable 'tagret'. Did you mean 'target'?",
    ),
    (
        "template reading the Deployment in a repo step",
        _sub('argv: ["astro", "dev", "parse"]', 'argv: ["echo", "{{ deployment.name }}"]'),
        9, "steps[2].run.argv[1]", "'deployment' is not available in a repo step",
    ),
    (
        "template including a file",
        _sub('argv: ["astro", "dev", "parse"]', "argv: [\"cat\", \"{% include '/etc/passwd' %}\"]"),
        9, "steps[2].run.argv[1]", "a step argument cannot include, import or extend other templates.",
    ),
    (
        "bad when template",
        _sub("    run:\n", '    when: "{{ vars.x | default(false) "\n    run:\n'),
        8, "steps[2].when", "template syntax error:",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_each_problem_is_located_and_says_what_to_do(
    book: BookDir, text: str, line: int, key: str, message: str
) -> None:
    got_line, got_key, got_message = _one(book, text)
    assert (got_line, got_key) == (line, key)
    assert got_message.startswith(message), got_message
    assert got_message.endswith((".", "?")), got_message


def test_the_rendered_message_has_file_line_key_and_advice(book: BookDir) -> None:
    error = book.error(_sub('argv: ["astro", "dev", "parse"]', "argv: astro dev parse"))
    assert str(error).startswith(
        "playbooks/upgrade.yaml:9: steps[2].run.argv: must be a list of strings, not one string"
    )
    assert 'Use a list, e.g. argv: ["astro", "dev", "parse"].' in str(error)
    assert error.exit_code == EXIT_INPUT


def test_every_problem_is_reported_at_once(book: BookDir) -> None:
    text = """
    steps:
      - rendr: {}
      - commit:
          branch: "-x"
      - run:
          argv: "make test"
          cwd: /tmp
          timeout: 0
        when: perhaps
      - deploy: {retries: 1}
      - verify:
          checks: [versoin]
      - wait: {seconds: -3}
    """
    problems = book.problems(text)
    assert [(p.line, p.key) for p in problems] == [
        (2, "steps[0].rendr"),
        (4, "steps[1].commit.branch"),
        (6, "steps[2].run.argv"),
        (7, "steps[2].run.cwd"),
        (8, "steps[2].run.timeout"),
        (9, "steps[2].when"),
        (10, "steps[3].deploy.retries"),
        (12, "steps[4].verify.checks[0]"),
        (13, "steps[5].wait.seconds"),
    ]
    assert all(p.file == SHOWN for p in problems)


def test_order_problems_come_with_the_others(book: BookDir) -> None:
    problems = book.problems("""
    steps:
      - deploy: {timeout: -1}
      - verify: {}
      - render: {}
    """)
    assert [(p.line, p.key, p.message.split(",")[0]) for p in problems] == [
        (2, "steps[0].deploy.timeout", "must be a number of seconds > 0 and <= 86400"),
        (4, "steps[2]", "render runs once per repo"),
    ]


def test_a_yaml_syntax_error_names_the_line(book: BookDir) -> None:
    problems = book.problems("steps:\n  - render: {}\n  - run: {argv: [a, b}\n")
    assert len(problems) == 1
    assert problems[0].file == SHOWN
    assert problems[0].line == 3
    assert problems[0].message.startswith("invalid YAML:")
    assert problems[0].message.endswith("Fix the syntax at this line.")


def test_a_custom_yaml_tag_is_refused_not_run(book: BookDir) -> None:
    problems = book.problems("steps:\n  - run: {argv: !!python/object/apply:os.system [id]}\n")
    assert "unsupported YAML tag" in problems[0].message


def test_a_missing_file_is_a_clear_refusal(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError) as caught:
        load_playbook(tmp_path / "playbooks" / "nope.yaml", display="playbooks/nope.yaml")
    assert str(caught.value) == "playbooks/nope.yaml: file not found. Check the path."


def test_problems_name_the_file_relative_to_the_working_directory(
    book: BookDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(book.root)
    book.write("steps:\n  - rendr: {}\n")
    with pytest.raises(PlaybookError) as caught:
        load_playbook(book.path)
    assert str(caught.value).startswith("playbooks/upgrade.yaml:2: steps[0].rendr: ")


def test_a_hostile_template_does_not_hang_the_loader(book: BookDir) -> None:
    # Jinja folds constant expressions at compile time; the sandbox caps the exponent
    # (uncapped, 9**9**9 would outlast pytest's time-out).
    playbook = book.load('steps:\n  - deploy: {description: "{{ 9**9**9 }}"}\n')
    assert playbook.steps[0].kind == "deploy"
