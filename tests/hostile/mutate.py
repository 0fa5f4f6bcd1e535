"""Hypothesis strategies that mutate a valid inventory or Dockerfile into hostile ones.

Structural mutations work on the parsed document (delete, duplicate or retype a key, a
wrong type, a huge, negative, unicode or empty value, a bad version spec, shared subtrees
that dump as YAML aliases up to a "billion laughs"); textual ones on the bytes (tabs,
duplicate keys, invalid UTF-8, NUL and other control characters, deep nesting, long lines,
truncation, byte-order marks).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import strategies as st

# Values that have broken parsers and checkers somewhere.
WEIRD = [
    None, True, False, 0, -1, -(10**6), 10**30, 1.5, -0.0, 1e308, float("inf"), float("nan"),
    "", " ", "\t", "-", "--help", "-rf", "latest", "all", "*", "!x", "&x", "..", "../../etc",
    "/etc/passwd", "~root", "$(id)", "`id`", "a;b", "a|b", "{{ 7 * 7 }}", "{% raw %}",
    "${HOME}", "%s%s%s", "\u202eevil", "日本語", "💥" * 20, "é" * 300, "x" * 5000,
    "9" * 5000, "\x7f", "a\nb", "a\rb", "ws-evil;x", "cm1mldev0000009", "12.4.0", "3.1-12",
    "https://user:pw@hooks.example.invalid/x", "null", "~", "yes", "no", "0x1F", "1_000",
    "2026-12-03", "=", "<<", [], {}, [1, [2, [3]]], {"a": {"b": {"c": None}}},
]
BAD_SPECS = [
    "13.x.y", "latest-1", "v13", "12.4.0.1", "3.1-", "3.1-x", "999999999999", "-1",
    "12.4-rc", "1e3", "12..4", "12.4.0-", "12.4.0-rc1.extra", "3", "3.0", "2.1.1", "99.0.0",
    "0.0.0", "13.99", "4.0-1", "12.4.x", " 12.4 ", "１２.４", "12.4\u00000", "0" * 80,
    "1" * 4400, {"airflow2": "13", "airflow4": "1"}, {"airflow3": "13"}, {}, [], 12.4, 13,
]


def _paths(doc: Any, prefix: tuple = (), seen: set[int] | None = None) -> list[tuple]:
    """Every key path into ``doc`` (mapping keys and list indexes), entering a shared
    subtree (a YAML alias once dumped) only once: a "billion laughs" has few paths."""
    seen = set() if seen is None else seen
    found = [prefix]
    if isinstance(doc, dict | list):
        if id(doc) in seen:
            return found
        seen.add(id(doc))
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key), seen)
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*prefix, index), seen)
    return found


def _parent(doc: Any, path: tuple) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


def laughs(levels: int) -> list:
    """Nested shared lists: dumped, the last one is ``levels`` levels of aliases."""
    node: list = ["lol"] * 9
    for _ in range(levels - 1):
        node = [node] * 9
    return node


@st.composite
def structural(draw: st.DrawFn, base: dict) -> Any:
    """``base`` with 0-4 structural mutations."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(0, 4))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(doc, path), path[-1]
        kind = draw(st.sampled_from(["delete", "duplicate", "retype", "weird", "spec",
                                     "aliases", "add"]))
        if kind == "delete":
            del parent[key]
        elif kind == "duplicate" and isinstance(parent, dict):
            parent[f"{key}_copy" if draw(st.booleans()) else "extra"] = copy.deepcopy(parent[key])
        elif kind == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        elif kind == "retype":
            value = parent[key]
            parent[key] = draw(st.sampled_from([
                [value], {"value": value}, str(value), None, 1, True]))
        elif kind == "weird":
            parent[key] = copy.deepcopy(draw(st.sampled_from(WEIRD)))
        elif kind == "spec":
            holder = draw(st.sampled_from([doc, parent]))
            if isinstance(holder, dict):
                holder["target"] = copy.deepcopy(draw(st.sampled_from(BAD_SPECS)))
        elif kind == "aliases":
            parent[key] = laughs(draw(st.integers(1, 9)))
        elif kind == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["colour", "wave", "groups", "vars", "target",
                                         "template", "runner", "dockerfile", 7, None]))] = \
                copy.deepcopy(draw(st.sampled_from(WEIRD)))
    return doc


def dump(doc: Any, flow: bool) -> bytes:
    return yaml.dump(doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False,
                     allow_unicode=True, default_flow_style=flow, width=4096).encode("utf-8")


@st.composite
def textual(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with 0-3 byte-level mutations."""
    for _ in range(draw(st.integers(0, 3))):
        lines = data.split(b"\n")
        at = draw(st.integers(0, max(0, len(lines) - 1)))
        kind = draw(st.sampled_from([
            "tab", "dup_line", "bad_utf8", "nul", "control", "long_line", "truncate",
            "deep", "bom", "self_alias", "unicode", "swap", "delete_line", "indent",
        ]))
        line = lines[at]
        if kind == "tab":
            lines[at] = b"\t" + line
        elif kind == "dup_line":
            lines.insert(at, line)
        elif kind == "bad_utf8":
            cut = draw(st.integers(0, len(line)))
            lines[at] = line[:cut] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80",
                                                           b"\xf0\x28\x8c\xbc"])) + line[cut:]
        elif kind == "nul":
            lines[at] = line + b"\x00"
        elif kind == "control":
            lines[at] = line + draw(st.sampled_from([b"\x1b[31m", b"\x08", b"\x85", b"\r"]))
        elif kind == "long_line":
            lines.insert(at, b"# " + b"y" * draw(st.integers(1000, 200_000)))
        elif kind == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
            continue
        elif kind == "deep":
            depth = draw(st.sampled_from([10, 63, 64, 65, 200, 500, 999, 1000, 1001, 3000]))
            lines.append(b"deep: " + b"[" * depth + b"]" * depth)
        elif kind == "bom":
            lines[at] = "\ufeff".encode() + line
        elif kind == "self_alias":
            lines.append(b"loop: &loop [*loop]")
        elif kind == "unicode":
            lines[at] = line + draw(st.text(min_size=1, max_size=8)).encode("utf-8", "replace")
        elif kind == "swap" and len(lines) > 1:
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif kind == "delete_line":
            del lines[at]
        elif kind == "indent":
            lines[at] = b" " * draw(st.integers(1, 3)) + line
        data = b"\n".join(lines)
    return data


@st.composite
def inventories(draw: st.DrawFn, base: dict) -> bytes:
    """A mutated inventory, as the bytes of the file."""
    doc = draw(structural(base))
    try:
        data = dump(doc, draw(st.booleans()))
    except (yaml.YAMLError, RecursionError):
        data = dump(base, False)
    return draw(textual(data))


# Pieces a Dockerfile mutation inserts: shapes that are valid, tricky, or hostile.
DOCKER_LINES = [
    "ARG V=12.4.0", "ARG IMAGE=quay.io/astronomer/astro-runtime", "ARG X", "ARG A=$A$A",
    "FROM ${IMAGE}:${V}", "FROM quay.io/astronomer/astro-runtime:12.1.0 AS base",
    "FROM base", "FROM --platform=$BUILDPLATFORM python:3.12", "FROM scratch",
    "FROM quay.io/astronomer/astro-runtime:latest", "FROM quay.io/astronomer/ap-airflow:2.5.0",
    "FROM quay.io/astronomer/astro-runtime:12.4.0@sha256:" + "a" * 64,
    "FROM astrocrpublic.azurecr.io/runtime:3.1-12", "FROM quay.io/astronomer/astro-runtime:13.99999999999999999999.0",
    "FROM quay.io/astronomer/astro-runtime:" + "1" * 5000 + ".0.0",
    "RUN <<EOF", "EOF", "RUN echo \\", "  hi", "# escape=`", "# syntax=docker/dockerfile:1",
    "COPY --from=base / /", "USER root", "ENV A=1 B=2", "ONBUILD RUN x", "LABEL a=\"b\"",
    "FROM", "FROM \"quay.io/astronomer/astro-runtime:12.4.0\"", "from QUAY.IO/ASTRONOMER/ASTRO-RUNTIME:12.4.0",
    "FROM quay.io/astronomer/astro-runtime:12.4.0 # comment", "\ufeffFROM x", "\x00",
]


@st.composite
def dockerfiles(draw: st.DrawFn, bases: list[str]) -> bytes:
    """A mutated Dockerfile (from the cases' inputs), as the bytes of the file."""
    text = draw(st.sampled_from(bases))
    lines = text.split("\n")
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(lines)))
        kind = draw(st.sampled_from(["insert", "delete", "duplicate", "chars", "version",
                                     "arg_chain", "crlf"]))
        if kind == "insert":
            lines.insert(at, draw(st.sampled_from(DOCKER_LINES)))
        elif kind == "delete" and lines:
            del lines[min(at, len(lines) - 1)]
        elif kind == "duplicate" and lines:
            lines.insert(at, lines[min(at, len(lines) - 1)])
        elif kind == "chars" and lines:
            index = min(at, len(lines) - 1)
            line = lines[index]
            cut = draw(st.integers(0, len(line)))
            piece = draw(st.one_of(st.text(max_size=4), st.sampled_from(
                ["\x00", "\ufeff", "\t", "\\", "`", "$", "${", "\"", "'", ":", "@", "-", "\r"])))
            lines[index] = line[:cut] + piece + line[cut + draw(st.integers(0, 2)):]
        elif kind == "version":
            digits = draw(st.sampled_from(["0", "99", "9" * 30, "9" * 4400, "01", "-1"]))
            lines = [ln.replace("12.", f"{digits}.", 1) for ln in lines]
        elif kind == "arg_chain":
            depth = draw(st.integers(2, 45))
            chain = ["ARG C0=12.4.0"] + [f"ARG C{i}=${{C{i - 1}}}${{C{i - 1}}}"
                                         for i in range(1, depth)]
            lines[0:0] = [*chain, f"FROM quay.io/astronomer/astro-runtime:${{C{depth - 1}}}"]
        elif kind == "crlf":
            lines = [ln + "\r" for ln in lines]
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:  # now and then, bytes that are not UTF-8
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + b"\xff\xfe" + data[cut:]
    return data
