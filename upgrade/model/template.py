"""Render template-managed Dockerfiles from Jinja2 templates in a sandbox; detect hand edits.

A template-managed repo's whole Dockerfile is ``templates/<name>`` rendered with the
target Runtime (``runtime``) and the repo's own variables. Templates run in Jinja2's
immutable sandbox with ``StrictUndefined``: a template can read plain values, never reach
Python internals (``__class__``, ``__globals__``, ``_private`` names), never mutate its
inputs, and a missing variable is an error instead of an empty string in a ``FROM`` line.

Every failure is a TemplateError worded ``templates/<name>:<line>: <problem>. <what to do>``.
"""

from __future__ import annotations

import difflib
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, Undefined
from jinja2.exceptions import (
    SecurityError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment

from upgrade.errors import TemplateError
from upgrade.model.image import ImageRef

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Debian package names (lower case, digits, + - . ; at least two characters) with an
# optional =version pin; nothing a shell reads.
_APT_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+(?:=[A-Za-z0-9.+~:-]+)?")
_URL = re.compile(r"https?://[^\s\"'`$\\]+")
_PYTHON_VARIANT = re.compile(r"python-(\d+\.\d+)")
_MAX_POWER = 64  # "9**9**9" would otherwise hang the renderer (and Jinja's constant folding)


@dataclass(frozen=True)
class RuntimeContext:
    """What a template sees as ``runtime``: the Runtime image it must build from."""

    version: str  # "12.4.0" or "3.1-12"
    image: str  # full reference: repository:tag
    repository: str
    tag: str  # version plus variant suffixes: "12.4.0-python-3.12-base"
    airflow: str | None  # Airflow version the Runtime ships, when the catalog knows it
    python: str | None  # Python version, when known

    @classmethod
    def from_image(
        cls, image: ImageRef, *, airflow: str | None = None, python: str | None = None
    ) -> RuntimeContext:
        """The context for a pinned Runtime image (e.g. ``base.image.retarget(target)``)."""
        if image.version is None or image.tag is None:
            raise TemplateError(f"{image} is not a pinned Runtime image; cannot render for it.")
        if python is None:
            match = next(filter(None, map(_PYTHON_VARIANT.fullmatch, image.variants)), None)
            python = match.group(1) if match else None
        return cls(
            version=str(image.version),
            image=str(image),
            repository=image.repository,
            tag=image.tag,
            airflow=airflow,
            python=python,
        )


class _VarsProblem(Exception):
    """A template helper refused a value; reported at the template line that used it."""


class Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus a cap on ``**`` so a template cannot hang the planner."""

    intercepted_binops = frozenset({"**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > _MAX_POWER:
            raise SecurityError(f"exponent {right} is larger than {_MAX_POWER}")
        return super().call_binop(context, operator, left, right)


class _ContainedLoader(FileSystemLoader):
    """A FileSystemLoader that also refuses symlinks leading out of the templates dir."""

    def __init__(self, root: Path):
        self._root = root.resolve()
        # An absolute search path makes template frames in tracebacks absolute, which is
        # how an error raised while rendering is traced back to its template line.
        super().__init__(str(self._root), followlinks=False)

    def get_source(self, environment: Any, template: str) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        if not Path(filename).resolve().is_relative_to(self._root):
            raise TemplateNotFound(template)
        return source, filename, uptodate


def render_template(
    templates_dir: Path, name: str, *, runtime: RuntimeContext, vars: Mapping[str, object]
) -> str:
    """Render ``templates_dir/name`` with ``runtime`` and the repo's ``vars``; TemplateError."""
    shown_dir = templates_dir.name or str(templates_dir)
    where = f"{shown_dir}/{name}"
    _check_name(name, where, shown_dir)
    for key in vars:
        if not isinstance(key, str) or not _ENV_NAME.fullmatch(key) or key == "runtime":
            raise TemplateError(
                f"{where}: template variable {key!r} cannot be passed: names must be "
                "identifiers and 'runtime' is reserved for the Runtime image. Rename it in "
                "the repo's template vars."
            )
    env = _environment(templates_dir)
    try:
        return env.get_template(name).render(runtime=runtime, **vars)
    except TemplateSyntaxError as exc:
        file = f"{shown_dir}/{exc.name or name}"
        raise TemplateError(
            f"{file}:{exc.lineno}: syntax error: {exc.message}. Fix the template, then run "
            "again."
        ) from None
    except TemplateNotFound as exc:
        if exc.name == name:
            available = ", ".join(env.list_templates()) or "none"
            raise TemplateError(
                f"{where}: no such template in {templates_dir} (available: {available}). "
                "Fix the template name in the inventory."
            ) from None
        raise TemplateError(
            f"{_located(templates_dir, where)}: includes '{exc.name}', which is not a "
            f"template inside {shown_dir}/. Include only templates from {shown_dir}/."
        ) from None
    except Exception as exc:  # anything raised while running template code is its fault
        raise TemplateError(_runtime_problem(exc, templates_dir, where)) from None


def template_drift(
    current_text: str, rendered_at_current_version: str, *, path: str = "Dockerfile"
) -> str | None:
    """A unified diff when the managed Dockerfile no longer matches its template, else None."""
    if current_text == rendered_at_current_version:
        return None
    return "".join(
        difflib.unified_diff(
            _diff_lines(current_text),
            _diff_lines(rendered_at_current_version),
            fromfile=f"{path} (in the repo)",
            tofile=f"{path} (template rendered at the current version)",
        )
    )


def _diff_lines(text: str) -> list[str]:
    # CR and a missing final newline are made visible, so an ending-only drift still shows.
    pieces = text.split("\n")
    lines = [(p[:-1] + "␍" if p.endswith("\r") else p) + "\n" for p in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1] + "\n\\ No newline at end of file\n")
    return lines


def _check_name(name: str, where: str, shown_dir: str) -> None:
    parts = PurePosixPath(name).parts
    if (
        not name
        or name.startswith(("/", "~"))
        or "\\" in name
        or "\x00" in name
        or re.match(r"^[A-Za-z]:", name)
        or ".." in parts
    ):
        raise TemplateError(
            f"{where}: a template name must be a relative path inside {shown_dir}/, without "
            "'..', '\\' or a leading '/'. Fix the template name in the inventory."
        )


def _environment(templates_dir: Path) -> Sandbox:
    env = Sandbox(
        loader=_ContainedLoader(templates_dir),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        env_name=_env_name,
        dockerfile_quote=_dockerfile_quote,
        apt_packages=_apt_packages,
        url_without_credentials=_url_without_credentials,
    )
    env.globals["require"] = _require
    return env


def _runtime_problem(exc: BaseException, templates_dir: Path, where: str) -> str:
    located = _located(templates_dir, where, exc)
    if isinstance(exc, UndefinedError):
        match = re.match(r"^'([^']+)' is undefined$", str(exc))
        what = f"undefined variable '{match.group(1)}'" if match else f"undefined value: {exc}"
        return (
            f"{located}: {what}. Add it to the repo's template vars (or give it a default in "
            "the template with '| default(...)'), then run again."
        )
    if isinstance(exc, SecurityError):
        return (
            f"{located}: the template sandbox refused an unsafe operation ({exc}). Templates "
            "may only read 'runtime', the repo's vars and their public fields; remove it."
        )
    if isinstance(exc, _VarsProblem):
        return f"{located}: {exc}"
    return (
        f"{located}: {type(exc).__name__}: {exc}. Fix the template or the repo's template "
        "vars, then run again."
    )


def _located(templates_dir: Path, where: str, exc: BaseException | None = None) -> str:
    """``templates/<name>:<line>`` of the innermost template frame of the running error."""
    root = templates_dir.resolve()
    shown_dir = templates_dir.name or str(templates_dir)
    error = exc if exc is not None else sys.exc_info()[1]
    frames = traceback.extract_tb(error.__traceback__) if error is not None else []
    for frame in reversed(frames):
        path = Path(frame.filename)
        if path.is_absolute() and path.resolve().is_relative_to(root):
            return f"{shown_dir}/{path.resolve().relative_to(root).as_posix()}:{frame.lineno}"
    return where


# --- helpers templates may call ------------------------------------------------------


def _require(condition: object, message: str) -> str:
    """``{% set ok = require(cond, "problem. what to do") %}``: stop rendering when false."""
    if not condition:
        raise _VarsProblem(message if message.endswith(".") else f"{message}.")
    return ""


def _defined(value: object) -> None:
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises UndefinedError naming the variable


def _env_name(value: object) -> str:
    _defined(value)
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        raise _VarsProblem(
            f"{value!r} is not a valid ENV name (letters, digits and '_', not starting with a "
            "digit). Rename it in the repo's template vars."
        )
    return value


def _dockerfile_quote(value: object) -> str:
    """A double-quoted Dockerfile word whose value is exactly ``value`` (no $ expansion)."""
    _defined(value)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _VarsProblem(
            f"{value!r} is not a plain string or number. Use a string in the repo's "
            "template vars."
        )
    text = str(value)
    if any(ord(c) < 32 and c != "\t" for c in text):
        raise _VarsProblem(
            f"{text!r} contains a newline or control character, which would break the "
            "Dockerfile. Remove it from the repo's template vars."
        )
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def _apt_packages(value: object) -> str:
    _defined(value)
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise _VarsProblem(
            f"{value!r} is not a list of OS package names. Write a YAML list in the repo's "
            "template vars."
        )
    names = list(value)
    if not names:
        raise _VarsProblem(
            "the list of OS packages is empty. List at least one in the repo's template vars."
        )
    for package in names:
        if not isinstance(package, str) or not _APT_PACKAGE.fullmatch(package):
            raise _VarsProblem(
                f"{package!r} is not a Debian package name (optionally name=version). Fix "
                "it in the repo's template vars."
            )
    return " ".join(names)


def _url_without_credentials(value: object) -> str:
    _defined(value)
    if not isinstance(value, str) or not _URL.fullmatch(value):
        # The value is not echoed: a malformed URL may still hold a token.
        raise _VarsProblem(
            "the index URL is not an http(s) URL without spaces or quotes. Fix it in the "
            "repo's template vars."
        )
    authority = value.split("://", 1)[1].split("/", 1)[0]
    if "@" in authority:
        raise _VarsProblem(
            "the index URL carries credentials (user:password@ or token@), which would be "
            "committed to the repository and baked into the image. Put the bare URL in the "
            "template vars and supply credentials at build time (e.g. a build secret)."
        )
    return value
