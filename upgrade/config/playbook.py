"""Playbooks: the ordered steps every Deployment of a wave goes through.

A playbook (``playbooks/upgrade.yaml``) is Ansible-style YAML: a ``name`` and a list of
``steps``, each with exactly one kind key (``render``, ``commit``, ``run``, ``deploy``,
``verify``, ``wait``) holding its arguments. ``load_playbook`` validates the whole file
and reports every problem at once (``PlaybookError``), each as
``playbooks/upgrade.yaml:LINE: steps[2].run.argv: problem. What to do.``

String arguments are Jinja2 templates, checked for syntax and unknown variables at load
time and rendered per repo or Deployment at execution time (``Step.render_args``) in the
immutable sandbox with ``StrictUndefined``: a template reads plain values, never Python
internals, and a missing variable is a located error naming it, not an empty string.

Steps run in file order, and every repo step (``render``, ``commit``, ``run``: once per
repo) comes before every Deployment step (``deploy``, ``verify``, ``wait``: once per
Deployment). The schema is documented in docs/playbooks.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, Literal

from jinja2 import StrictUndefined, Template, meta, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError

from upgrade.config.checker import Checker, did_you_mean
from upgrade.config.located import LMap, Located, LScalar, LSeq, join, load
from upgrade.errors import PlaybookError, Problem

# The one sandbox policy of the project (immutable, ``**`` capped) shared with Dockerfile
# templates, so a hole fixed there is fixed here.
from upgrade.model.template import _Environment as _Sandbox

Scope = Literal["repo", "deployment"]
SCOPES: tuple[Scope, ...] = ("repo", "deployment")

TOP_KEYS = ("name", "steps")
STEP_KEYS = ("name", "when", "timeout", "retries")
# Keys a step may also give inside its arguments (the brief's example puts `when` there).
SHARED_KEYS = ("when", "retries", "timeout")
CONTEXT = ("target", "rollout", "wave", "deployment", "repo", "vars", "runtime")
REPO_CONTEXT = tuple(name for name in CONTEXT if name != "deployment")
DAY = 86_400.0
MAX_RETRIES = 10
TRUE_WORDS = frozenset({"true", "yes", "1"})
FALSE_WORDS = frozenset({"false", "no", "0"})

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REF_BAD = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")
_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")


@dataclass(frozen=True)
class Arg:
    """The schema of one argument: its type, default and bounds.

    Types: ``bool``, ``number`` (float), ``integer``, ``string``, ``ref`` (a git branch or
    remote name), ``url``, ``path`` (relative, inside the repo), ``choice`` (literal),
    ``argv``, ``env``, ``strings`` and ``checks``. Scalars other than ``choice`` may be
    given as a template string that renders to the type.
    """

    type: str
    default: Any = None
    required: bool = False
    above: float | None = None  # exclusive lower bound
    minimum: float | None = None  # inclusive lower bound
    maximum: float | None = None
    choices: tuple[str, ...] = ()


def _timeout(default: float) -> Arg:
    return Arg("number", default, above=0, maximum=DAY)


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
        "timeout": _timeout(600),
        "env": Arg("env", {}),
        "cwd": Arg("path", None),
    }),
    # Not safe to repeat blindly: after a crash the executor asks Astro what is deployed.
    "deploy": Kind("deployment", False, {
        "timeout": _timeout(1800),
        "description": Arg("string", "Astro Runtime upgrade to {{ target }} "
                                     "(rollout {{ rollout }}, wave {{ wave }})"),
    }),
    "verify": Kind("deployment", True, {
        "timeout": _timeout(900),
        "poll_interval": Arg("number", 10, above=0, maximum=3600),
        "checks": Arg("checks", ({"name": "version"}, {"name": "healthy"})),
        "inconclusive": Arg("choice", "fail", choices=("fail", "pass")),
    }),
    "wait": Kind("deployment", True, {"seconds": Arg("number", required=True, above=0,
                                                     maximum=DAY)}),
}

# Verification checks and their settings. The last five are implemented by a later issue;
# their settings are validated here so a typo fails at load, not mid-wave.
# Every check takes its own time budget and poll interval, and may be switched off when a
# wave or Deployment level removes it; defaults of None leave the value to upgrade.verify.
_CHECK_COMMON: Mapping[str, Arg] = {
    "timeout": Arg("number", None, above=0, maximum=DAY),
    "poll_interval": Arg("number", None, above=0, maximum=3600),
    "enabled": Arg("bool", None),
}
CHECKS: Mapping[str, Mapping[str, Arg]] = {
    "version": _CHECK_COMMON,
    "healthy": _CHECK_COMMON,
    "airflow_version": {**_CHECK_COMMON, "expected": Arg("string")},  # default: the catalog's
    "health": {**_CHECK_COMMON, "components": Arg("strings"),
               "max_heartbeat_age": Arg("number", None, above=0, maximum=DAY)},
    "import_errors": {**_CHECK_COMMON,
                      "max_new": Arg("integer", 0, minimum=0, maximum=100_000),
                      "settle": Arg("number", None, minimum=0, maximum=DAY)},
    "command": {**_CHECK_COMMON, "argv": Arg("argv", required=True), "env": Arg("env", {}),
                "expect_exit": Arg("integer", None, minimum=0, maximum=255)},
    "http": {**_CHECK_COMMON, "url": Arg("url", required=True),
             "status": Arg("integer", None, minimum=100, maximum=599),
             "expect_status": Arg("integer", None, minimum=100, maximum=599),
             "contains": Arg("string"),
             "request_timeout": Arg("number", None, above=0, maximum=DAY)},
}
REPEATABLE_CHECKS = frozenset({"command", "http"})
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


@dataclass(frozen=True)
class Playbook:
    """A validated playbook: its steps in order and any warnings to show the user."""

    path: Path
    name: str
    steps: tuple[Step, ...]
    warnings: tuple[str, ...] = ()

    def steps_of(self, scope: Scope) -> tuple[Step, ...]:
        """The steps of one scope (``repo`` or ``deployment``), in order."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; use 'repo' or 'deployment'")
        return tuple(step for step in self.steps if step.scope == scope)

    @property
    def deploys(self) -> bool:
        """True when the playbook has a deploy step (else it only renders and tests)."""
        return any(step.kind == "deploy" for step in self.steps)


def default_playbook_path(root: Path) -> Path:
    """The default playbook of a project: ``<root>/playbooks/upgrade.yaml``."""
    return Path(root) / "playbooks" / "upgrade.yaml"


def load_playbook(path: Path, *, display: str | None = None) -> Playbook:
    """Load and validate a playbook; raise PlaybookError listing every problem.

    ``display`` names the file in problems (default: the path relative to the current
    directory when it is inside it).
    """
    path = Path(path)
    file = display or _display(path)
    root = load(path, error=PlaybookError, display=file)
    return _Loader(path, file).build(root)


def step_context(
    *,
    target: str,
    rollout: str,
    wave: int,
    repo: Any,
    vars: Mapping[str, Any],
    runtime: Any,
    deployment: Any | None = None,
) -> dict[str, Any]:
    """The template context for one repo (``deployment=None``) or one Deployment.

    ``repo`` and ``deployment`` are inventory objects (or anything with the same fields);
    ``runtime`` has ``version``, ``airflow`` and ``python`` (e.g. template.RuntimeContext).
    """
    context: dict[str, Any] = {
        "target": str(target),
        "rollout": str(rollout),
        "wave": int(wave),
        "repo": {"name": repo.name, "path": str(repo.path)},
        "vars": dict(vars),
        "runtime": {key: _field(runtime, key) for key in ("version", "airflow", "python")},
    }
    if deployment is not None:
        context["deployment"] = {
            "name": deployment.name, "id": deployment.id, "workspace_id": deployment.workspace_id,
        }
    return context


def shared_vars(deployments: Iterable[Any]) -> dict[str, Any]:
    """The merged vars every one of ``deployments`` agrees on: what a repo step sees.

    A repo step runs once for all of the repo's Deployments in the wave, so a variable
    that differs between them (or that only some set) is undefined there.
    """
    merged: dict[str, Any] | None = None
    for deployment in deployments:
        own = deployment.vars
        if merged is None:
            merged = dict(own)
        else:
            merged = {k: v for k, v in merged.items() if k in own and own[k] == v}
    return merged or {}


def _field(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def _display(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return str(path)


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


_ENV = _Sandbox(undefined=_Undefined, autoescape=False, finalize=_finalize)
_INCLUDES = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)


def _is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


@lru_cache(maxsize=4096)
def _compiled(source: str) -> Template:
    return _ENV.from_string(source)


def _frozen(value: Any) -> Any:
    """A read-only copy: a Step is shared by every worker thread of a wave."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


def _scoped(value: Any, where: str) -> Any:
    if isinstance(value, Mapping):
        return _Scope(where, {k: _scoped(v, f"{where}.{k}") for k, v in value.items()})
    if isinstance(value, list | tuple):
        return [_scoped(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


# --- loading -------------------------------------------------------------------------


class _Loader:
    """Validates one playbook's located tree into Steps, collecting every problem."""

    def __init__(self, path: Path, file: str) -> None:
        self.path = path
        self.file = file
        self.c = Checker(file)
        self.names: tuple[str, ...] = CONTEXT  # what templates of the current step may read
        self.where: dict[str, tuple[str, int | None]] = {}

    def build(self, root: Located) -> Playbook:
        c = self.c
        if not isinstance(root, LMap):
            c.add(root.line, "", f"a playbook must be a mapping with 'name' and 'steps', got "
                  f"{root.kind}. See docs/playbooks.md.")
            c.raise_if_any(PlaybookError)
        assert isinstance(root, LMap)
        c.keys(root, TOP_KEYS, "")
        name = c.string(root, "name", "", default=self.path.stem) or self.path.stem
        steps: list[Step] = []
        complete = True
        node = root.get("steps")
        if node is None or (isinstance(node, LScalar) and node.value is None) or (
            isinstance(node, LSeq) and not node.items
        ):
            c.add(root.key_line("steps"), "steps", "the playbook has no steps. List at least "
                  "one (render, commit, run, deploy, verify or wait); see docs/playbooks.md.")
        elif c.expect(node, LSeq, "steps", root.key_line("steps")):
            assert isinstance(node, LSeq)
            for i, item in enumerate(node.items):
                step = self.step(item, i)
                if step is None:
                    complete = False
                else:
                    steps.append(step)
        if complete:  # a step whose kind is unclear would make the order rules misfire
            self.order(steps)
        c.raise_if_any(PlaybookError)
        return Playbook(self.path, name, tuple(steps), tuple(self.warnings(steps)))

    # -- one step

    def step(self, node: Located, index: int) -> Step | None:
        c, path = self.c, f"steps[{index}]"
        if not c.expect(node, LMap, path):
            return None
        assert isinstance(node, LMap)
        kinds = [key for key in node if key in KINDS]
        unknown = [key for key in node if key not in KINDS and key not in STEP_KEYS]
        for key in unknown:
            hint = did_you_mean(str(key), [*KINDS, *STEP_KEYS]) or (
                f" Step kinds: {', '.join(KINDS)}; step keys: {', '.join(STEP_KEYS)}.")
            c.add(node.key_line(key), join(path, key), f"unknown step kind or key.{hint}")
        if len(kinds) > 1:
            c.add(node.key_line(kinds[1]), path, f"a step has exactly one kind, this one has "
                  f"{' and '.join(repr(k) for k in kinds)}. Split it into one step per kind.")
            return None
        if not kinds:
            if not unknown:
                c.add(node.line, path, f"the step has no kind. Add one of: {', '.join(KINDS)}.")
            return None
        kind_name = kinds[0]
        kind = KINDS[kind_name]
        self.names = CONTEXT if kind.scope == "deployment" else REPO_CONTEXT
        self.where = {}
        argpath = join(path, kind_name)
        args_node = node.get(kind_name)
        if isinstance(args_node, LScalar) and args_node.value is None:
            args_node = LMap(node.key_line(kind_name), {})
        if not isinstance(args_node, LMap):
            assert args_node is not None
            c.add(node.key_line(kind_name), argpath, f"must be a mapping of arguments, got "
                  f"{args_node.kind}. Write it like '{EXAMPLES[kind_name]}'; see "
                  "docs/playbooks.md.")
            return None
        c.keys(args_node, [*kind.args, *(k for k in SHARED_KEYS if k not in kind.args)],
               argpath)
        given = self.shared(node, args_node, path, argpath, kind_name, kind)
        name = c.string(node, "name", path, default=kind_name) or kind_name
        when = None
        if "when" in given:
            when = self.when(*given["when"])
            self.where["when"] = given["when"][2], given["when"][1]
        retries = self.retries(kind_name, kind, *given["retries"]) if "retries" in given else 0
        args: dict[str, Any] = {}
        for key, spec in kind.args.items():
            entry = given.get(key) or (
                (args_node.get(key), args_node.key_line(key), join(argpath, key))
                if key in args_node else None)
            if entry is None:
                if spec.required:
                    c.add(args_node.line, join(argpath, key), "required argument is missing. "
                          "Add it; see docs/playbooks.md.")
                self.where.setdefault(key, (join(argpath, key), node.line))
                args[key] = spec.default
                continue
            value_node, line, full = entry
            assert value_node is not None
            args[key] = self.value(spec, value_node, full, line, key)
        self.cross_checks(kind_name, args, args_node, argpath)
        return Step(
            index=index, kind=kind_name, name=name, scope=kind.scope,
            args=_frozen(args), when=when, line=node.line,
            safe_to_repeat=kind.safe_to_repeat, retries=retries, file=self.file,
            where=MappingProxyType(dict(self.where)),
        )

    def shared(
        self, node: LMap, args_node: LMap, path: str, argpath: str, kind_name: str, kind: Kind
    ) -> dict[str, tuple[Located | None, int, str]]:
        """``when``/``retries``/``timeout`` from the step or its arguments (not both)."""
        found: dict[str, tuple[Located | None, int, str]] = {}
        for key in SHARED_KEYS:
            outer, inner = key in node, key in args_node
            if outer and inner:
                self.c.add(args_node.key_line(key), join(argpath, key), f"given twice: at the "
                           f"step (line {node.key_line(key)}) and in its arguments. Keep one.")
            if key == "timeout" and outer and key not in kind.args:
                self.c.add(node.key_line(key), join(path, key), f"{kind_name} has no timeout. "
                           "Remove it.")
                continue
            if outer:
                found[key] = (node.get(key), node.key_line(key), join(path, key))
            elif inner:
                found[key] = (args_node.get(key), args_node.key_line(key), join(argpath, key))
        return found

    def when(self, node: Located | None, line: int, path: str) -> str | None:
        value = node.value if isinstance(node, LScalar) else node
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int) and value in (0, 1):
            return str(value)
        if isinstance(value, str) and _is_template(value):
            return value if self.template(value, path, line, "when") else None
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return value.strip().lower()
        shown = node.kind if node is not None else "nothing"
        self.c.add(line, path, f"must be true or false, or a template that renders to one, got "
                   f"{shown}. Wrap an expression in braces: when: \"{{{{ vars.run_parse | "
                   "default(false) }}\".")
        return None

    def retries(
        self, kind_name: str, kind: Kind, node: Located | None, line: int, path: str
    ) -> int:
        if not kind.safe_to_repeat:
            self.c.add(line, path, f"{kind_name} is not safe to repeat, so it cannot have "
                       "retries (after a crash the executor inspects the Deployment instead). "
                       "Remove it.")
            return 0
        assert node is not None
        value = self.c.as_integer(node, path, line, minimum=0, maximum=MAX_RETRIES, default=0)
        return value or 0

    # -- values

    def value(self, spec: Arg, node: Located, path: str, line: int, rel: str) -> Any:
        """The stored form of one argument: a literal, a template string or a list/dict."""
        c = self.c
        self.where[rel] = (path, line)
        if spec.type == "argv":
            return self.argv(node, path, line, rel)
        if spec.type == "env":
            return self.env(node, path, line, rel)
        if spec.type == "strings":
            return self.strings(node, path, line, rel)
        if spec.type == "checks":
            return self.checks(node, path, line, rel)
        if not isinstance(node, LScalar) or node.value is None:
            c.add(line, path, f"must be {_want(spec)}, got {node.kind}.")
            return spec.default
        value = node.value
        if spec.type == "choice":
            if value not in spec.choices:
                hint = did_you_mean(str(value), spec.choices)
                c.add(line, path, f"must be one of {', '.join(spec.choices)}, got {node.kind}."
                      f"{hint}")
                return spec.default
            return value
        if isinstance(value, str) and _is_template(value):
            return value if self.template(value, path, line, rel) else spec.default
        problem = _check_literal(spec, value)
        if problem:
            c.add(line, path, f"{problem}.{_quote_hint(spec, value)}")
            return spec.default
        return value

    def argv(self, node: Located, path: str, line: int, rel: str) -> list[str]:
        c = self.c
        if isinstance(node, LScalar) and isinstance(node.value, str):
            c.add(line, path, "must be a list of strings, not one string: a command line is "
                  "never split or given to a shell. Use a list, e.g. argv: [\"astro\", \"dev\", "
                  "\"parse\"].")
            return []
        if not isinstance(node, LSeq) or not node.items:
            c.add(line, path, f"must be a non-empty list of strings, got {node.kind}. Use a "
                  "list, e.g. argv: [\"astro\", \"dev\", \"parse\"].")
            return []
        out: list[str] = []
        for i, item in enumerate(node.items):
            ipath, irel = f"{path}[{i}]", f"{rel}[{i}]"
            self.where[irel] = (ipath, item.line)
            value = item.value if isinstance(item, LScalar) else None
            if not isinstance(value, str) or (i == 0 and not value.strip()):
                quote = " Quote it." if isinstance(item, LScalar) and value is not None else ""
                want = "a non-empty string (the program)" if i == 0 else "a string"
                c.add(item.line, ipath, f"must be {want}, got {item.kind}.{quote}")
                continue
            if _is_template(value) and not self.template(value, ipath, item.line, irel):
                continue
            out.append(value)
        return out

    def env(self, node: Located, path: str, line: int, rel: str) -> dict[str, str]:
        c = self.c
        if isinstance(node, LScalar) and node.value is None:
            return {}
        if not c.expect(node, LMap, path, line):
            return {}
        assert isinstance(node, LMap)
        out: dict[str, str] = {}
        for key, item in node.items():
            kpath, krel = join(path, key), join(rel, key)
            kline = node.key_line(key)
            self.where[krel] = (kpath, kline)
            if not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
                c.add(kline, kpath, "is not an environment variable name (letters, digits "
                      "and '_', not starting with a digit). Rename it.")
                continue
            value = item.value if isinstance(item, LScalar) else None
            if not isinstance(value, str):
                quote = " Quote it." if isinstance(item, LScalar) and value is not None else ""
                c.add(kline, kpath, f"must be a string, got {item.kind}.{quote}")
                continue
            if _is_template(value) and not self.template(value, kpath, kline, krel):
                continue
            out[key] = value
        return out

    def strings(self, node: Located, path: str, line: int, rel: str) -> list[str]:
        if not isinstance(node, LSeq) or not node.items:
            self.c.add(line, path, f"must be a non-empty list of strings, got {node.kind}.")
            return []
        out: list[str] = []
        for i, item in enumerate(node.items):
            ipath, irel = f"{path}[{i}]", f"{rel}[{i}]"
            self.where[irel] = (ipath, item.line)
            value = self.c.as_string(item, ipath, item.line)
            if value is not None and (
                not _is_template(value) or self.template(value, ipath, item.line, irel)
            ):
                out.append(value)
        return out

    def checks(self, node: Located, path: str, line: int, rel: str) -> list[dict[str, Any]]:
        c = self.c
        if not isinstance(node, LSeq) or not node.items:
            c.add(line, path, f"must be a non-empty list of check names or mappings, got "
                  f"{node.kind}. For example: checks: [version, healthy].")
            return []
        out: list[dict[str, Any]] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(node.items):
            ipath, irel = f"{path}[{i}]", f"{rel}[{i}]"
            if isinstance(item, LScalar) and isinstance(item.value, str):
                name, settings = item.value, None
            elif isinstance(item, LMap):
                name = c.string(item, "name", ipath, required=True)
                settings = item
            else:
                c.add(item.line, ipath, f"must be a check name or a mapping with 'name', got "
                      f"{item.kind}.")
                continue
            if name is None:
                continue
            if name not in CHECKS:
                hint = did_you_mean(name, CHECKS) or f" Known checks: {', '.join(CHECKS)}."
                c.add(item.line, ipath, f"unknown check '{name}'.{hint}")
                continue
            if name in seen and name not in REPEATABLE_CHECKS:
                c.add(item.line, ipath, f"check '{name}' is listed twice (first at line "
                      f"{seen[name]}). Remove one.")
                continue
            seen.setdefault(name, item.line)
            out.append(self.check(name, settings, item, ipath, irel))
        return out

    def check(
        self, name: str, settings: LMap | None, item: Located, ipath: str, irel: str
    ) -> dict[str, Any]:
        spec = CHECKS[name]
        result: dict[str, Any] = {"name": name}
        if settings is not None:
            self.c.keys(settings, ["name", *spec], ipath)
        for key, arg in spec.items():
            if settings is not None and key in settings:
                result[key] = self.value(arg, settings.get(key), join(ipath, key),  # type: ignore[arg-type]
                                         settings.key_line(key), join(irel, key))
            elif arg.required:
                how = (" Add it." if settings is not None
                       else f" Write it as a mapping: {{name: {name}, {key}: ...}}.")
                self.c.add(item.line, join(ipath, key), f"check '{name}' needs '{key}'.{how}")
            elif arg.default is not None:
                result[key] = arg.default
        return result

    def template(self, source: str, path: str, line: int, rel: str) -> bool:
        """Check a template's syntax and the names it reads; record problems."""
        c = self.c
        try:
            ast = _ENV.parse(source)
            _compiled(source)
        except TemplateSyntaxError as exc:
            c.add(line, path, f"template syntax error: {exc.message}. Fix the template.")
            return False
        if any(True for _ in ast.find_all(_INCLUDES)):
            c.add(line, path, "a step argument cannot include, import or extend other "
                  "templates. Write the value inline.")
            return False
        known = {*self.names, *_ENV.globals}
        ok = True
        for name in sorted(meta.find_undeclared_variables(ast) - known):
            if name == "deployment":
                c.add(line, path, "'deployment' is not available in a repo step (it runs once "
                      "per repo, for all its Deployments). Use repo or vars, or move the work "
                      "to a verify check.")
            else:
                hint = did_you_mean(name, self.names) or (
                    f" Templates can read: {', '.join(self.names)}.")
                c.add(line, path, f"unknown template variable '{name}'.{hint}")
            ok = False
        return ok

    def cross_checks(self, kind: str, args: dict[str, Any], node: LMap, argpath: str) -> None:
        if kind == "verify":
            interval, timeout = args["poll_interval"], args["timeout"]
            if _is_number(interval) and _is_number(timeout) and interval > timeout:
                self.c.add(node.key_line("poll_interval"), join(argpath, "poll_interval"),
                           f"is longer than the timeout ({interval} > {timeout}). Lower it.")

    # -- the playbook as a whole

    def order(self, steps: list[Step]) -> None:
        first: dict[str, Step] = {}
        flagged: set[int] = set()  # one order problem per step is enough

        def flag(step: Step, message: str) -> None:
            flagged.add(step.index)
            self.c.add(step.line, step.path, message)

        for step in steps:
            earlier = first.get(step.kind)
            if earlier is not None and step.kind in ("render", "commit", "deploy"):
                flag(step, f"a playbook has at most one {step.kind} step; there is one already "
                     f"at {earlier.path} (line {earlier.line}). Remove one.")
                continue
            first.setdefault(step.kind, step)
        render, commit, deploy = first.get("render"), first.get("commit"), first.get("deploy")
        if render and commit and commit.index < render.index:
            flag(commit, f"commit comes before render ({render.path}), so it would commit "
                 "nothing new. Move it after the render step.")
        if commit and deploy and deploy.index < commit.index:
            flag(commit, f"commit comes after deploy ({deploy.path}), so what is deployed would "
                 "not be committed. Move it before the deploy step.")
        for step in steps:
            if step.kind == "verify" and (deploy is None or step.index < deploy.index):
                where = f"before deploy ({deploy.path})" if deploy else "without a deploy step"
                flag(step, f"verify checks a new deploy, but it comes {where}. Put it after "
                     "the deploy step, or remove it.")
        first_deployment = next((s for s in steps if s.scope == "deployment"), None)
        for step in steps:
            if step.index in flagged:
                continue
            if first_deployment and step.scope == "repo" and step.index > first_deployment.index:
                flag(step, f"{step.kind} runs once per repo, so it must come "
                     f"before every Deployment step ({first_deployment.kind} at "
                     f"{first_deployment.path}). Move it up, or use a verify check of kind "
                     "'command' to run something per Deployment after deploying.")

    def warnings(self, steps: list[Step]) -> list[str]:
        out: list[str] = []
        kinds = {step.kind for step in steps}
        if "deploy" not in kinds:
            out.append(f"{self.file}: no deploy step: this playbook renders and tests only; "
                       "nothing is deployed.")
        elif "render" not in kinds:
            out.append(f"{self.file}: no render step: Dockerfiles are not rewritten, so deploy "
                       "ships each repo as it is.")
        for step in steps:
            if step.kind == "verify" and not any(
                check["name"] == "version" for check in step.args["checks"]
            ):
                out.append(f"{self.file}:{step.line}: {step.path}.verify: no 'version' check, "
                           "so the gate cannot tell that the new Runtime is running.")
        return out


def _want(spec: Arg) -> str:
    return {
        "bool": "true or false",
        "number": "a number of seconds" if spec.maximum == DAY else "a number",
        "integer": "an integer",
        "choice": f"one of {', '.join(spec.choices)}",
        "url": "an http(s) URL",
        "path": "a relative path inside the repo",
        "ref": "a git name",
    }.get(spec.type, "a non-empty string")


def _bounds(spec: Arg) -> str:
    low = (f"> {spec.above:g}" if spec.above is not None else
           f">= {spec.minimum:g}" if spec.minimum is not None else "")
    high = f"<= {spec.maximum:g}" if spec.maximum is not None else ""
    return " and ".join(p for p in (low, high) if p)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    return LScalar(0, value, "", "").kind


def _check_literal(spec: Arg, value: Any) -> str | None:
    """Why ``value`` is not a valid literal of ``spec`` (None when it is)."""
    kind = spec.type
    if kind == "bool":
        return None if isinstance(value, bool) else f"must be true or false, got " \
            f"{_describe(value)}"
    if kind in ("number", "integer"):
        ok = _is_number(value) and (kind == "number" or isinstance(value, int))
        if ok and isinstance(value, float) and not math.isfinite(value):
            ok = False
        if ok and spec.above is not None and not value > spec.above:
            ok = False
        if ok and spec.minimum is not None and not value >= spec.minimum:
            ok = False
        if ok and spec.maximum is not None and not value <= spec.maximum:
            ok = False
        if ok:
            return None
        bounds = _bounds(spec)
        return f"must be {_want(spec)}{' ' + bounds if bounds else ''}, got {_describe(value)}"
    if not isinstance(value, str):
        return f"must be {_want(spec)}, got {_describe(value)}"
    return _text_problem(spec, value)


def _text_problem(spec: Arg, text: str) -> str | None:
    """Why the (rendered) text is not valid for a string-like ``spec``."""
    if not text.strip():
        return f"must be {_want(spec)}, got an empty string"
    if spec.type == "ref" and (
        text.startswith(("-", "/", ".")) or text.endswith(("/", ".", ".lock"))
        or _REF_BAD.search(text) or "/." in text
    ):
        return f"'{text}' is not a valid git name (no spaces, '..', '~^:?*[\\', or leading " \
            "'-'). Choose a name `git check-ref-format --branch` accepts"
    if spec.type == "path":
        pure = PurePosixPath(text)
        if text.startswith(("/", "~", "\\")) or re.match(r"^[A-Za-z]:", text) or "\x00" in text:
            return f"'{text}' is absolute; it must be a path relative to the repo. Drop the " \
                "leading part"
        if ".." in pure.parts or "\\" in text:
            return f"'{text}' leaves the repo; it must stay inside it. Remove '..'"
    if spec.type == "url" and not re.match(r"^https?://\S+$", text):
        return "must be an http(s) URL without spaces"
    return None


def _quote_hint(spec: Arg, value: Any) -> str:
    if spec.type in ("string", "ref", "url", "path") and isinstance(value, int | float | bool):
        return " Quote it."
    return ""


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
        if not _is_template(source):
            return source
        try:
            return _compiled(source).render(self.context)
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
            return self.boolean(value, rel) if _is_template(value) else value
        rendered = self.text(value, rel)
        if rendered is None:
            return None
        if kind in ("number", "integer"):
            return self.number(spec, rendered, rel)
        problem = _text_problem(spec, rendered)
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
            self.problem(rel, f"rendered to '{_short(rendered)}', which is not {_want(spec)} "
                         f"{at}. Make it render a number.")
            return None
        problem = _check_literal(spec, value)
        if problem:
            self.problem(rel, f"rendered to '{_short(rendered)}': it {problem} {at}.")
            return None
        return value

    def check(self, check: Mapping[str, Any], rel: str) -> dict[str, Any]:
        spec = CHECKS[check["name"]]
        out: dict[str, Any] = {"name": check["name"]}
        for key, value in check.items():
            if key != "name":
                out[key] = self.value(spec[key], value, join(rel, key))
        return out


def _short(text: str, limit: int = 60) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"
