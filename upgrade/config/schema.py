"""Argument schemas shared by playbook steps and verification settings.

An :class:`Arg` says what one setting holds (its type, default and bounds). The playbook
loader checks step arguments against it (literals now, templates once rendered) and the
inventory loader checks ``verify`` blocks against the same schemas, so a check setting
means the same thing wherever it is written.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from upgrade.config.checker import http_url_problem, parse_duration
from upgrade.config.located import LScalar
from upgrade.errors import InputError

DAY = 86_400.0

_REF_BAD = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")
# Airflow's rule for DAG ids (airflow.utils.helpers.KEY_REGEX, at most 250 characters).
_DAG_ID = re.compile(r"[A-Za-z0-9_.-]{1,250}")


@dataclass(frozen=True)
class Arg:
    """The schema of one argument: its type, default and bounds.

    Types: ``bool``, ``number`` (float; a duration such as ``90s`` where ``durations`` is
    allowed), ``integer``, ``string``, ``ref`` (a git branch or remote name), ``url``,
    ``path`` (relative, inside the repo), ``dag_id`` (an Airflow DAG id), ``choice``
    (literal), ``argv``, ``env``, ``mapping`` (literal JSON values under string keys),
    ``strings`` (with ``choices``: each one of them) and ``checks``.
    """

    type: str
    default: Any = None
    required: bool = False
    above: float | None = None  # exclusive lower bound
    minimum: float | None = None  # inclusive lower bound
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    seconds: bool = False  # a number of seconds (named so in messages)


def timeout_arg(default: float | None, maximum: float = DAY) -> Arg:
    """A number of seconds, more than 0."""
    return Arg("number", default, above=0, maximum=maximum, seconds=True)


def is_number(value: Any) -> bool:
    """True for ints and floats, not booleans."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def describe(value: Any) -> str:
    """How a plain value reads in a message: "the number 3", "the string 'x'"."""
    return LScalar(0, value, "", "").kind


def want(spec: Arg) -> str:
    """What ``spec`` expects, in words."""
    return {
        "bool": "true or false",
        "number": "a number of seconds" if spec.seconds else "a number",
        "integer": "an integer",
        "choice": f"one of {', '.join(spec.choices)}",
        "url": "an http(s) URL",
        "path": "a relative path inside the repo",
        "ref": "a git name",
        "argv": "a non-empty list of strings",
        "env": "a mapping of variable names to strings",
        "mapping": "a mapping",
        "dag_id": "a DAG id",
        "strings": "a non-empty list of strings",
    }.get(spec.type, "a non-empty string")


def bounds(spec: Arg) -> str:
    """``spec``'s bounds in words: "> 0 and <= 86400"."""
    low = (f"> {spec.above:g}" if spec.above is not None else
           f">= {spec.minimum:g}" if spec.minimum is not None else "")
    high = f"<= {spec.maximum:g}" if spec.maximum is not None else ""
    return " and ".join(p for p in (low, high) if p)


def quote_hint(spec: Arg, value: Any) -> str:
    """`` Quote it.`` when a number or boolean was given for a string."""
    if spec.type in ("string", "ref", "url", "path") and isinstance(value, int | float | bool):
        return " Quote it."
    return ""


def literal_problem(spec: Arg, value: Any, *, durations: bool = False) -> str | None:
    """Why ``value`` is not a valid literal of ``spec`` (None when it is).

    With ``durations``, a ``number`` may also be written as a duration (``90s``, ``2m``).
    """
    kind = spec.type
    if kind == "bool":
        return None if isinstance(value, bool) else f"must be true or false, got {describe(value)}"
    if kind in ("number", "integer"):
        shown = describe(value)
        if durations and kind == "number" and isinstance(value, str):
            try:
                value = float(parse_duration(value))
            except InputError:
                return f"must be {want(spec)} or a duration such as 90s or 2m, got {shown}"
            shown = f"{shown} ({value:g} s)"
        ok = is_number(value) and (kind == "number" or isinstance(value, int))
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
        limits = bounds(spec)
        return f"must be {want(spec)}{' ' + limits if limits else ''}, got {shown}"
    if kind == "choice":
        return None if value in spec.choices else f"must be {want(spec)}, got {describe(value)}"
    if kind == "argv":
        if isinstance(value, str):
            return (f"must be a list of arguments, not one string: write {value.split()!r}, "
                    "nothing is split or given to a shell")
        if not isinstance(value, list | tuple) or not value or not all(
                isinstance(a, str) for a in value) or not value[0].strip():
            return f"must be {want(spec)}, the program first"
        return None
    if kind == "env":
        if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return "must map variable names to string values (quote numbers)"
        return None
    if kind == "mapping":
        if not isinstance(value, dict):
            shown = "a list" if isinstance(value, list | tuple) else describe(value)
            return f"must be a mapping, got {shown}"
        return _json_problem(value)
    if kind == "strings":
        if not isinstance(value, list | tuple) or not value:
            return f"must be {want(spec)}" + (
                f" of {', '.join(spec.choices)}" if spec.choices else "")
        for item in value:
            if not isinstance(item, str) or not item.strip():
                return f"must be {want(spec)}, got {describe(item)} in it"
            if spec.choices and item not in spec.choices:
                return f"'{item}' is not one of {', '.join(spec.choices)}"
        return None
    if not isinstance(value, str):
        return f"must be {want(spec)}, got {describe(value)}"
    return text_problem(spec, value)


def _json_problem(value: Any, where: str = "") -> str | None:
    """Why ``value`` cannot be sent as JSON as it is (None when it can)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"has the key {describe(key)}{where}; keys must be strings (quote it)"
            problem = _json_problem(item, f" under '{key}'")
            if problem:
                return problem
        return None
    if isinstance(value, list | tuple):
        return next((p for p in (_json_problem(v, where) for v in value) if p), None)
    if value is None or isinstance(value, str | bool | int) or (
            isinstance(value, float) and math.isfinite(value)):
        return None
    return f"holds {describe(value)}{where}, which is not a JSON value (quote it)"


def text_problem(spec: Arg, text: str) -> str | None:
    """Why the (rendered) text is not valid for a string-like ``spec``."""
    if not text.strip():
        return f"must be {want(spec)}, got an empty string"
    if spec.type == "ref" and (
        text.startswith(("-", "/", ".")) or text.endswith(("/", ".", ".lock"))
        or _REF_BAD.search(text) or "/." in text
    ):
        return f"'{text}' is not a valid git name (no spaces, '..', '~^:?*[\\', or leading " \
            "'-'). Choose a name `git check-ref-format --branch` accepts"
    if spec.type == "dag_id" and not _DAG_ID.fullmatch(text):
        return f"'{text}' is not a DAG id: Airflow allows letters, digits, '_', '.' and '-' " \
            "(at most 250)"
    if spec.type == "path":
        pure = PurePosixPath(text)
        if text.startswith(("/", "~", "\\")) or re.match(r"^[A-Za-z]:", text) or "\x00" in text:
            return f"'{text}' is absolute; it must be a path relative to the repo. Drop the " \
                "leading part"
        if ".." in pure.parts or "\\" in text:
            return f"'{text}' leaves the repo; it must stay inside it. Remove '..'"
    if spec.type == "url" and http_url_problem(text):
        return "must be an http:// or https:// URL with a host, without spaces"
    return None
