"""Load and validate a playbook file into :class:`~upgrade.config.playbook.Playbook`.

Every problem of the file is reported at once (``PlaybookError``), each as
``playbooks/upgrade.yaml:LINE: steps[2].run.argv: problem. What to do.``: unknown kinds and
keys, argument types and bounds, template syntax and the names templates read, step order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jinja2 import meta
from jinja2.exceptions import TemplateSyntaxError

from upgrade.config.checker import Checker, did_you_mean
from upgrade.config.located import LMap, Located, LScalar, LSeq, join, load
from upgrade.config.playbook import Playbook
from upgrade.config.schema import Arg, is_number, literal_problem, quote_hint, want
from upgrade.config.step import (
    CONTEXT,
    EXAMPLES,
    FALSE_WORDS,
    INCLUDES,
    KINDS,
    REPO_CONTEXT,
    SANDBOX,
    TRUE_WORDS,
    Kind,
    Step,
    compiled,
    is_template,
)
from upgrade.config.verify import CHECK_ARGS, REPEATABLE
from upgrade.errors import PlaybookError

TOP_KEYS = ("name", "steps")
STEP_KEYS = ("name", "when", "timeout", "retries")
# Keys a step may also give inside its arguments (the brief's example puts `when` there).
SHARED_KEYS = ("when", "retries", "timeout")
MAX_RETRIES = 10

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def load_playbook(path: Path, *, display: str | None = None) -> Playbook:
    """Load and validate a playbook; raise PlaybookError listing every problem.

    ``display`` names the file in problems (default: the path relative to the current
    directory when it is inside it).
    """
    path = Path(path)
    file = display or _display(path)
    root = load(path, error=PlaybookError, display=file)
    return _Loader(path, file).build(root)


def _display(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return str(path)


def _frozen(value: Any) -> Any:
    """A read-only copy: a Step is shared by every worker thread of a wave."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


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
        if isinstance(value, str) and is_template(value):
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
            return self.strings(spec, node, path, line, rel)
        if spec.type == "checks":
            return self.checks(node, path, line, rel)
        if spec.type == "mapping":
            return self.mapping(spec, node, path, line)
        if not isinstance(node, LScalar) or node.value is None:
            c.add(line, path, f"must be {want(spec)}, got {node.kind}.")
            return spec.default
        value = node.value
        if spec.type == "choice":
            if value not in spec.choices:
                hint = did_you_mean(str(value), spec.choices)
                c.add(line, path, f"must be one of {', '.join(spec.choices)}, got {node.kind}."
                      f"{hint}")
                return spec.default
            return value
        if isinstance(value, str) and is_template(value):
            return value if self.template(value, path, line, rel) else spec.default
        problem = literal_problem(spec, value)
        if problem:
            c.add(line, path, f"{problem}.{quote_hint(spec, value)}")
            return spec.default
        return value

    def mapping(self, spec: Arg, node: Located, path: str, line: int) -> dict[str, Any]:
        """A literal mapping of JSON values (templates inside it are not rendered)."""
        if isinstance(node, LScalar) and node.value is None:
            return {}
        value = node.plain()
        problem = literal_problem(spec, value)
        if problem:
            self.c.add(line, path, f"{problem}.")
            return {}
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
            if is_template(value) and not self.template(value, ipath, item.line, irel):
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
            if is_template(value) and not self.template(value, kpath, kline, krel):
                continue
            out[key] = value
        return out

    def strings(self, spec: Arg, node: Located, path: str, line: int, rel: str) -> list[str]:
        if not isinstance(node, LSeq) or not node.items:
            self.c.add(line, path, f"must be a non-empty list of strings, got {node.kind}.")
            return []
        out: list[str] = []
        for i, item in enumerate(node.items):
            ipath, irel = f"{path}[{i}]", f"{rel}[{i}]"
            self.where[irel] = (ipath, item.line)
            value = self.c.as_string(item, ipath, item.line)
            if value is None:
                continue
            if is_template(value):
                if self.template(value, ipath, item.line, irel):
                    out.append(value)
            elif spec.choices and value not in spec.choices:
                hint = did_you_mean(value, spec.choices) or f" Known: {', '.join(spec.choices)}."
                self.c.add(item.line, ipath, f"unknown value '{value}'.{hint}")
            else:
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
            if name not in CHECK_ARGS:
                hint = did_you_mean(name, CHECK_ARGS) or f" Known checks: {', '.join(CHECK_ARGS)}."
                c.add(item.line, ipath, f"unknown check '{name}'.{hint}")
                continue
            if name in seen and name not in REPEATABLE:
                c.add(item.line, ipath, f"check '{name}' is listed twice (first at line "
                      f"{seen[name]}). Remove one.")
                continue
            seen.setdefault(name, item.line)
            out.append(self.check(name, settings, item, ipath, irel))
        return out

    def check(
        self, name: str, settings: LMap | None, item: Located, ipath: str, irel: str
    ) -> dict[str, Any]:
        spec = CHECK_ARGS[name]
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
            ast = SANDBOX.parse(source)
            compiled(source)
        except TemplateSyntaxError as exc:
            c.add(line, path, f"template syntax error: {exc.message}. Fix the template.")
            return False
        if any(True for _ in ast.find_all(INCLUDES)):
            c.add(line, path, "a step argument cannot include, import or extend other "
                  "templates. Write the value inline.")
            return False
        known = {*self.names, *SANDBOX.globals}
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
            if is_number(interval) and is_number(timeout) and interval > timeout:
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


