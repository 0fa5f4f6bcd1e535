"""One step of a playbook: its kind, its arguments, and how they render for a repo or Deployment.

String arguments are Jinja2 templates, rendered per repo or Deployment at execution time
(:meth:`Step.render_args`) in the immutable sandbox with ``StrictUndefined``: a template
reads plain values, never Python internals, and a missing variable is a located error
naming it, not an empty string. The kinds and their argument schemas are here; loading a
playbook file is ``upgrade.config.playbook_loader``'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Any, Literal

from jinja2 import StrictUndefined, Template, nodes
from jinja2.exceptions import SecurityError, UndefinedError

from upgrade.config.located import join
from upgrade.config.schema import DAY, Arg, literal_problem, text_problem, timeout_arg, want
from upgrade.config.verify import CHECK_ARGS
from upgrade.errors import PlaybookError, Problem

# The one sandbox policy of the project (immutable, ``**`` capped) shared with Dockerfile
# templates, so a hole fixed there is fixed here.
from upgrade.model.template import Sandbox

Scope = Literal["repo", "deployment"]
SCOPES: tuple[Scope, ...] = ("repo", "deployment")

CONTEXT = ("target", "rollout", "wave", "deployment", "repo", "vars", "runtime")
REPO_CONTEXT = tuple(name for name in CONTEXT if name != "deployment")
TRUE_WORDS = frozenset({"true", "yes", "1"})
FALSE_WORDS = frozenset({"false", "no", "0"})

_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")


@dataclass(frozen=True)
class Kind:
    """A built-in step kind: where it runs, whether a crash may repeat it, its arguments."""

    scope: Scope
    safe_to_repeat: bool
    args: Mapping[str, Arg]


KINDS: Mapping[str, Kind] = {
    "render": Kind("repo", True, {"adopt": Arg("bool", False)}),
    "commit": Kind("repo", True, {
        "branch": Arg("ref", "runtime-upgrade/{{ target }}"),
        "push": Arg("bool", False),
        "remote": Arg("ref", "origin"),
        "message": Arg("string", None),  # None: the executor's from → to message
    }),
    "run": Kind("repo", True, {
        "argv": Arg("argv", required=True),
        "timeout": timeout_arg(600),
        "env": Arg("env", {}),
        "cwd": Arg("path", None),
    }),
    # Not safe to repeat blindly: after a crash the executor asks Astro what is deployed.
    "deploy": Kind("deployment", False, {
        "timeout": timeout_arg(1800),
        "description": Arg("string", "Astro Runtime upgrade to {{ target }} "
                                     "(rollout {{ rollout }}, wave {{ wave }})"),
    }),
    "verify": Kind("deployment", True, {
        "timeout": timeout_arg(900),
        "poll_interval": timeout_arg(10, maximum=3600),
        "checks": Arg("checks", ({"name": "version"}, {"name": "healthy"})),
        "inconclusive": Arg("choice", "fail", choices=("fail", "pass")),
    }),
    "wait": Kind("deployment", True, {"seconds": Arg("number", required=True, above=0,
                                                     maximum=DAY, seconds=True)}),
}

EXAMPLES = {
    "render": "render: {}",
    "commit": "commit: {push: false}",
    "run": 'run: {argv: ["astro", "dev", "parse"]}',
    "deploy": "deploy: {}",
    "verify": "verify: {checks: [version, healthy]}",
    "wait": "wait: {seconds: 30}",
}


@dataclass(frozen=True)
class Step:
    """One validated step; ``args`` hold literals and template strings, defaults filled in."""

    index: int  # 0-based, as in the key path steps[index]
    kind: str
    name: str
    scope: Scope
    args: Mapping[str, Any] = field(hash=False)
    when: str | None
    line: int | None
    safe_to_repeat: bool
    retries: int = 0
    file: str = field(default="", compare=False, repr=False)
    # Argument path ("argv[1]") → (full key path, line), for render-time problems.
    where: Mapping[str, tuple[str, int | None]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    @property
    def path(self) -> str:
        """The step's key path in the playbook: ``steps[2]``."""
        return f"steps[{self.index}]"

    def render_args(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments rendered for one repo or Deployment, type-checked; PlaybookError."""
        renderer = _Renderer(self, context)
        spec = KINDS[self.kind].args
        out = {key: renderer.value(spec[key], value, key) for key, value in self.args.items()}
        renderer.raise_if_any()
        return out

    def enabled(self, context: Mapping[str, Any]) -> bool:
        """Whether ``when`` holds for this repo or Deployment (True without one)."""
        if self.when is None:
            return True
        renderer = _Renderer(self, context)
        value = renderer.boolean(self.when, "when")
        renderer.raise_if_any()
        return bool(value)


# --- templates -----------------------------------------------------------------------


class _Scope(dict):  # type: ignore[type-arg]
    """A context mapping that knows its dotted name, so an undefined key is named in full."""

    __slots__ = ("_where",)

    def __init__(self, where: str, items: dict[Any, Any]) -> None:
        super().__init__(items)
        self._where = where


class _Undefined(StrictUndefined):
    """StrictUndefined that names ``vars.suite`` rather than "'dict object' has no ..."."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        owner, name = self._undefined_obj, self._undefined_name
        if isinstance(owner, _Scope) and not self._undefined_hint:
            where = owner._where
            return f"'{where}.{name}' is undefined" if isinstance(name, str) else (
                f"'{where}[{name!r}]' is undefined")
        return super()._undefined_message  # type: ignore[no-any-return]


class _NullPrinted(Exception):
    """A template printed None, which would become the word "None" in a command."""


def _finalize(value: Any) -> Any:
    if value is None:
        raise _NullPrinted("an expression printed null")
    return value


SANDBOX = Sandbox(undefined=_Undefined, autoescape=False, finalize=_finalize)
INCLUDES = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)


def is_template(text: str) -> bool:
    """True when ``text`` holds Jinja2 syntax."""
    return "{{" in text or "{%" in text or "{#" in text


@lru_cache(maxsize=4096)
def compiled(source: str) -> Template:
    """``source`` compiled in the sandbox (cached: a wave renders the same text often)."""
    return SANDBOX.from_string(source)


def _scoped(value: Any, where: str) -> Any:
    if isinstance(value, Mapping):
        return _Scope(where, {k: _scoped(v, f"{where}.{k}") for k, v in value.items()})
    if isinstance(value, list | tuple):
        return [_scoped(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


# --- rendering -----------------------------------------------------------------------


class _Renderer:
    """Renders one step's arguments for one repo or Deployment, collecting problems."""

    def __init__(self, step: Step, context: Mapping[str, Any]) -> None:
        self.step = step
        self.context = {key: _scoped(value, key) for key, value in context.items()}
        self.problems: list[Problem] = []
        deployment = context.get("deployment")
        repo = context.get("repo")
        if isinstance(deployment, Mapping) and deployment.get("name"):
            self.who = f"Deployment '{deployment['name']}'"
        elif isinstance(repo, Mapping) and repo.get("name"):
            self.who = f"repo '{repo['name']}'"
        else:
            self.who = "this run"

    def raise_if_any(self) -> None:
        if self.problems:
            raise PlaybookError(self.problems)

    def problem(self, rel: str, message: str) -> None:
        step = self.step
        path, line = step.where.get(rel, (join(f"{step.path}.{step.kind}", rel), step.line))
        self.problems.append(Problem(step.file, line, path, message))

    def text(self, source: str, rel: str) -> str | None:
        """Render one template string; None (and a problem) when it fails."""
        if not is_template(source):
            return source
        try:
            return compiled(source).render(self.context)
        except Exception as exc:  # anything raised by template code is the template's fault
            self.problem(rel, self.failure(exc))
            return None

    def failure(self, exc: Exception) -> str:
        at = f"(step '{self.step.name}', {self.who})"
        if isinstance(exc, UndefinedError):
            match = _UNDEFINED.match(str(exc))
            what = f"undefined variable '{match.group(1)}'" if match else f"undefined: {exc}"
            return (f"{what} {at}. Define it in the inventory vars, or give a default with "
                    "'| default(...)', then run again.")
        if isinstance(exc, SecurityError):
            return (f"the template sandbox refused an unsafe operation ({exc}) {at}. Step "
                    f"arguments may only read {', '.join(CONTEXT)} and their public fields; "
                    "remove it.")
        if isinstance(exc, _NullPrinted):
            return (f"the template printed null {at}. Give the value in the inventory, or "
                    "use '| default(\"...\", true)'.")
        return f"{type(exc).__name__}: {exc} {at}. Fix the template or the inventory vars."

    def boolean(self, source: str, rel: str) -> bool | None:
        rendered = self.text(source, rel)
        if rendered is None:
            return None
        word = rendered.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        self.problem(rel, f"rendered to '{_short(rendered)}', which is not true or false "
                     f"(step '{self.step.name}', {self.who}). Make it render true/false, yes/no "
                     "or 1/0.")
        return None

    def value(self, spec: Arg, value: Any, rel: str) -> Any:
        """One argument rendered and converted to its type."""
        kind = spec.type
        if value is None:
            return None
        if kind == "argv":
            out = [self.text(item, f"{rel}[{i}]") for i, item in enumerate(value)]
            if out and out[0] is not None and not out[0].strip():
                self.problem(f"{rel}[0]", f"the program rendered empty (step "
                             f"'{self.step.name}', {self.who}). Give the program's name.")
            return out
        if kind == "env":
            # Values are never echoed in problems: an env var may carry a secret.
            return {key: self.text(item, join(rel, key)) for key, item in value.items()}
        if kind == "strings":
            return [self.text(item, f"{rel}[{i}]") for i, item in enumerate(value)]
        if kind == "checks":
            return [self.check(check, f"{rel}[{i}]") for i, check in enumerate(value)]
        if kind == "choice" or not isinstance(value, str):
            return float(value) if kind == "number" else value
        if kind == "bool":
            return self.boolean(value, rel) if is_template(value) else value
        rendered = self.text(value, rel)
        if rendered is None:
            return None
        if kind in ("number", "integer"):
            return self.number(spec, rendered, rel)
        problem = text_problem(spec, rendered)
        if problem:
            self.problem(rel, f"rendered to something invalid: {problem} (step "
                         f"'{self.step.name}', {self.who}).")
            return None
        if kind == "path":
            return PurePosixPath(rendered).as_posix()
        return rendered

    def number(self, spec: Arg, rendered: str, rel: str) -> float | int | None:
        at = f"(step '{self.step.name}', {self.who})"
        try:
            value: float | int = float(rendered) if spec.type == "number" else int(rendered)
        except ValueError:
            self.problem(rel, f"rendered to '{_short(rendered)}', which is not {want(spec)} "
                         f"{at}. Make it render a number.")
            return None
        problem = literal_problem(spec, value)
        if problem:
            self.problem(rel, f"rendered to '{_short(rendered)}': it {problem} {at}.")
            return None
        return value

    def check(self, check: Mapping[str, Any], rel: str) -> dict[str, Any]:
        spec = CHECK_ARGS[check["name"]]
        out: dict[str, Any] = {"name": check["name"]}
        for key, value in check.items():
            if key != "name":
                out[key] = self.value(spec[key], value, join(rel, key))
        return out


def _short(text: str, limit: int = 60) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"
