"""Step arguments render per repo or Deployment: typed, sandboxed, and located when wrong."""

from __future__ import annotations

from typing import Any

import pytest

from upgrade.config.step import Step
from upgrade.errors import EXIT_INPUT, PlaybookError

from .conftest import SHOWN, BookDir, context


def _step(book: BookDir, step_yaml: str, *, kind: str | None = None) -> Step:
    """Load a playbook of ``step_yaml`` (line 2 on), plus a deploy if it has none; one step."""
    deploy = "" if "- deploy:" in step_yaml else "  - deploy: {}\n"
    playbook = book.load(f"steps:\n{step_yaml}{deploy}")
    return next(s for s in playbook.steps if s.kind == (kind or playbook.steps[0].kind))


def _refusal(step: Step, ctx: dict[str, Any], *, when: bool = False) -> PlaybookError:
    with pytest.raises(PlaybookError) as caught:
        step.enabled(ctx) if when else step.render_args(ctx)
    assert caught.value.exit_code == EXIT_INPUT
    return caught.value


def test_run_arguments_render_to_their_types(book: BookDir) -> None:
    step = _step(book, """\
  - run:
      argv: ["astro", "dev", "pytest", "--args", "-k {{ vars.suite }}", "{{ target }}"]
      timeout: 300
      env: {SUITE: "{{ vars.suite }}", PLAIN: "x"}
      cwd: "tests/./{{ vars.suite }}"
""")
    args = step.render_args(context(vars={"suite": "smoke"}))
    # One template, one argument: "-k smoke" is never split into two.
    assert args["argv"] == ["astro", "dev", "pytest", "--args", "-k smoke", "12.4.1"]
    assert args["timeout"] == 300.0 and isinstance(args["timeout"], float)
    assert args["env"] == {"SUITE": "smoke", "PLAIN": "x"}
    assert args["cwd"] == "tests/smoke"


def test_defaults_are_filled_in_and_rendered(book: BookDir) -> None:
    playbook = book.load("""\
steps:
  - render: {}
  - commit: {}
  - run: {argv: [make]}
  - deploy: {}
  - verify: {}
  - wait: {seconds: 5}
""")
    ctx = context(target="3.1-12", rollout="r7", wave=2)
    rendered = {s.kind: s.render_args(ctx) for s in playbook.steps}
    assert rendered == {
        "render": {"adopt": False},
        "commit": {"branch": "runtime-upgrade/3.1-12", "push": False, "remote": "origin",
                   "message": None},
        "run": {"argv": ["make"], "timeout": 600.0, "env": {}, "cwd": None},
        "deploy": {"timeout": 1800.0,
                   "description": "Astro Runtime upgrade to 3.1-12 (rollout r7, wave 2)"},
        "verify": {"timeout": 900.0, "poll_interval": 10.0,
                   "checks": [{"name": "version"}, {"name": "healthy"}], "inconclusive": "fail"},
        "wait": {"seconds": 5.0},
    }


def test_numbers_and_booleans_may_come_from_variables(book: BookDir) -> None:
    playbook = book.load("""\
steps:
  - commit: {push: "{{ vars.push | default(false) }}"}
  - deploy: {timeout: "{{ vars.deploy_timeout | default(1800) }}"}
""")
    commit, deploy = playbook.steps
    ctx = context(vars={"push": True, "deploy_timeout": 2400})
    assert commit.render_args(ctx)["push"] is True
    assert deploy.render_args(ctx)["timeout"] == 2400.0
    assert commit.render_args(context())["push"] is False


def test_check_settings_render_too(book: BookDir) -> None:
    step = _step(book, """\
  - deploy: {}
  - verify:
      checks:
        - version
        - {name: http, url: "https://{{ vars.host }}/health"}
        - {name: import_errors}
""", kind="verify")
    args = step.render_args(context(vars={"host": "billing.example.com"}))
    assert args["checks"] == [
        {"name": "version"},
        # Unset settings are left to upgrade.verify's defaults (status 200, 60 s).
        {"name": "http", "url": "https://billing.example.com/health"},
        {"name": "import_errors", "max_new": 0},
    ]


def test_an_undefined_variable_is_named_with_the_step_and_deployment(book: BookDir) -> None:
    step = _step(book, """\
  - name: Smoke tests
    run:
      argv: ["pytest", "{{ vars.suite }}"]
""")
    error = _refusal(step, context())
    assert str(error) == (
        f"{SHOWN}:4: steps[0].run.argv[1]: undefined variable 'vars.suite' (step 'Smoke "
        "tests', Deployment 'billing-dev'). Define it in the inventory vars, or give a default "
        "with '| default(...)', then run again."
    )


def test_an_undefined_nested_variable_is_named_in_full(book: BookDir) -> None:
    step = _step(book, '  - deploy: {description: "db {{ vars.db.host }}"}\n', kind="deploy")
    error = _refusal(step, context(vars={"db": {"port": 5432}}))
    assert "undefined variable 'vars.db.host'" in str(error)


def test_every_bad_argument_of_a_step_is_reported_at_once(book: BookDir) -> None:
    step = _step(book, """\
  - run:
      argv: ["{{ vars.a }}", "{{ vars.b }}"]
      timeout: "{{ vars.t }}"
""")
    error = _refusal(step, context(vars={"t": "soon"}))
    assert [(p.line, p.key) for p in error.problems] == [
        (3, "steps[0].run.argv[0]"), (3, "steps[0].run.argv[1]"), (4, "steps[0].run.timeout"),
    ]
    assert "rendered to 'soon', which is not a number of seconds" in error.problems[2].message


def test_a_rendered_number_out_of_range_is_refused(book: BookDir) -> None:
    step = _step(book, '  - wait: {seconds: "{{ vars.soak }}"}\n', kind="wait")
    error = _refusal(step, context(vars={"soak": -10}))
    assert error.problems[0].key == "steps[0].wait.seconds"
    assert "rendered to '-10': it must be a number of seconds > 0 and <= 86400" in str(error)


@pytest.mark.parametrize(
    ("argument", "value", "expected"),
    [
        ("cwd", "/etc", "is absolute"),
        ("cwd", "../../elsewhere", "leaves the repo"),
        ("branch", "--delete", "is not a valid git name"),
        ("branch", "a..b", "is not a valid git name"),
    ],
)
def test_rendered_paths_and_branch_names_are_checked_again(
    book: BookDir, argument: str, value: str, expected: str
) -> None:
    if argument == "cwd":
        step = _step(book, '  - run: {argv: [make], cwd: "{{ vars.x }}"}\n')
    else:
        step = _step(book, '  - commit: {branch: "{{ vars.x }}"}\n')
    error = _refusal(step, context(vars={"x": value}))
    assert expected in str(error)


@pytest.mark.parametrize(
    "attempt",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.system('touch /tmp/pwned') }}",
        "{{ vars.update({'target': '1.0.0'}) }}",
        "{{ vars.__class__ }}",
        "{{ (999999999999 | string).__len__() }}",
        "{{ 2 ** 100000 }}",
    ],
)
def test_a_sandbox_escape_in_an_argument_is_refused(book: BookDir, attempt: str) -> None:
    step = _step(book, f'  - run: {{argv: ["echo", "{attempt}"]}}\n')
    ctx = context(vars={"safe": "x"})
    error = _refusal(step, ctx)
    assert error.problems[0].key == "steps[0].run.argv[1]"
    assert "the template sandbox refused an unsafe operation" in str(error)
    assert ctx["vars"] == {"safe": "x"}  # the caller's context is never mutated


def test_a_template_printing_null_is_refused_not_turned_into_none(book: BookDir) -> None:
    step = _step(book, '  - run: {argv: ["pip", "install", "{{ runtime.airflow }}"]}\n')
    ctx = context(runtime={"version": "12.4.1", "airflow": None, "python": None})
    assert "the template printed null" in str(_refusal(step, ctx))


@pytest.mark.parametrize(
    ("value", "enabled"),
    [(True, True), (False, False), ("yes", True), ("no", False), ("1", True), ("0", False),
     (1, True), (0, False), ("TRUE", True), ("False", False), (" yes ", True)],
)
def test_when_renders_to_a_boolean(book: BookDir, value: object, enabled: bool) -> None:
    step = _step(book, """\
  - run: {argv: [astro, dev, parse]}
    when: "{{ vars.run_parse }}"
""")
    assert step.enabled(context(vars={"run_parse": value})) is enabled


def test_when_with_a_default_is_off_without_the_variable(book: BookDir) -> None:
    step = _step(book, """\
  - run: {argv: [astro, dev, parse], when: "{{ vars.run_parse | default(false) }}"}
""")
    assert step.enabled(context()) is False
    assert step.enabled(context(vars={"run_parse": True})) is True


def test_when_can_compare_things(book: BookDir) -> None:
    step = _step(book, """\
  - wait: {seconds: 60}
    when: "{{ deployment.name.endswith('-prod') and wave > 1 }}"
""", kind="wait")
    assert step.enabled(context(wave=2, deployment={"name": "a-prod", "id": "c", "workspace_id": "w"}))
    assert not step.enabled(context(wave=1, deployment={"name": "a-prod", "id": "c", "workspace_id": "w"}))


@pytest.mark.parametrize(("literal", "enabled"), [("true", True), ("no", False), ("0", False)])
def test_a_literal_when_needs_no_template(book: BookDir, literal: str, enabled: bool) -> None:
    step = _step(book, f"  - render: {{}}\n    when: {literal}\n")
    assert step.enabled({}) is enabled


def test_a_when_that_is_not_a_boolean_is_an_error_naming_it(book: BookDir) -> None:
    step = _step(book, '  - render: {}\n    when: "{{ vars.mode }}"\n')
    error = _refusal(step, context(vars={"mode": "perhaps"}), when=True)
    assert str(error).startswith(
        f"{SHOWN}:3: steps[0].when: rendered to 'perhaps', which is not true or false (step "
        "'render', Deployment 'billing-dev')."
    )


def test_a_when_reading_an_undefined_variable_is_an_error(book: BookDir) -> None:
    step = _step(book, '  - render: {}\n    when: "{{ vars.run_parse }}"\n')
    error = _refusal(step, context(), when=True)
    assert "undefined variable 'vars.run_parse'" in str(error)


def test_a_step_without_when_is_always_enabled(book: BookDir) -> None:
    assert _step(book, "  - render: {}\n").enabled(context()) is True


def test_steps_are_read_only(book: BookDir) -> None:
    step = _step(book, "  - run: {argv: [make, test], env: {A: b}}\n")
    with pytest.raises(TypeError):
        step.args["argv"] = ["rm", "-rf", "/"]  # type: ignore[index]
    with pytest.raises(TypeError):
        step.args["env"]["A"] = "c"  # type: ignore[index]
    assert step.render_args(context())["argv"] == ["make", "test"]
