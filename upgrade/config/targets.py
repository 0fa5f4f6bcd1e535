"""Targets: which Runtime each Deployment goes to, per Runtime line and per layer.

Two Runtime lines coexist: ``airflow2`` (``X.Y.Z``, Runtime 4 to 13) and ``airflow3``
(``A.B-N``). A ``target`` is one spec (``"13"``, ``"3.1"``, ``"12.4.2"``, ``latest``), which
is the target of its own line, or a mapping by line (``{airflow2: "13", airflow3: "3.1"}``).
It may be set at the top of the inventory, on a group, on a repo or on a Deployment, and
layers like a variable (lowest first: top level, groups shallow to deep, the repo, the
Deployment): the most specific one replaces the others whole.

A Deployment goes to the spec of its own line; an Airflow 2 Deployment with
``allow_airflow3: true`` whose target has an Airflow 3 spec (and no Airflow 2 one) migrates
to it. A Deployment whose line has no spec is *not targeted*: shown, never refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from upgrade.config.checker import Checker, did_you_mean
from upgrade.config.located import FLOAT, INT, STR, LMap, Located, LScalar, join
from upgrade.errors import VersionError
from upgrade.model.versions import RuntimeVersion, Scheme, VersionSpec, parse_spec

AIRFLOW2, AIRFLOW3 = "airflow2", "airflow3"
LINES = (AIRFLOW2, AIRFLOW3)
SCHEME_OF: Mapping[str, Scheme] = {AIRFLOW2: "af2", AIRFLOW3: "af3"}
LINE_OF: Mapping[str, str] = {"af2": AIRFLOW2, "af3": AIRFLOW3}
LINE_NAMES: Mapping[str, str] = {AIRFLOW2: "Airflow 2", AIRFLOW3: "Airflow 3"}


class TargetSource(StrEnum):
    """Where the targets a decision works to come from. A rollout records the first two
    (its ``target_source``); a command that follows a rollout works to ``PINNED``."""

    INVENTORY = "inventory"  # each Deployment's own layer of the inventory
    FLAG = "--target"  # the command's --target, replacing every layer's
    PINNED = "pinned"  # a rollout's pins, whichever of the two it started from


def line_of(version: RuntimeVersion | VersionSpec) -> str:
    """The Runtime line of a version or a spec (``latest`` alone is Airflow 3's newest)."""
    return LINE_OF[version.scheme or "af3"]


@dataclass(frozen=True)
class Target:
    """A ``target`` as written at one layer: one spec per Runtime line it names."""

    specs: Mapping[str, VersionSpec] = field(default_factory=dict, hash=False)
    mapping: bool = False  # written as {airflow2: ..., airflow3: ...}

    def for_line(self, line: str) -> VersionSpec | None:
        """The spec this target gives a Deployment of ``line``, if any."""
        return self.specs.get(line)

    def __str__(self) -> str:
        if not self.mapping and len(self.specs) == 1:
            return str(next(iter(self.specs.values())))
        return ", ".join(f"{line}: {spec}" for line, spec in self.specs.items())


def single(spec: VersionSpec) -> Target:
    """A target of one spec (``--target``), for the spec's own line."""
    return Target({line_of(spec): spec})


def read_target(c: Checker, m: LMap, path: str) -> Target | None:
    """The ``target`` key of mapping ``m`` (at key path ``path``), or None when absent."""
    node = m.get("target")
    if node is None:
        return None
    full, line = join(path, "target"), m.key_line("target")
    if isinstance(node, LMap):
        specs: dict[str, VersionSpec] = {}
        for key, item in node.items():
            where = join(full, key)
            if key not in LINES:
                hint = did_you_mean(str(key), LINES) or f" The lines are {', '.join(LINES)}."
                c.add(node.key_line(key), where, f"unknown Runtime line.{hint}")
                continue
            spec = _spec(c, item, where, node.key_line(key), SCHEME_OF[key])
            if spec is not None:
                specs[key] = spec
        if not node.entries:
            c.add(line, full, f"names no line. Give {AIRFLOW2} and/or {AIRFLOW3}, e.g. "
                  f'{{{AIRFLOW2}: "13", {AIRFLOW3}: "3.1"}}.')
        return Target(specs, mapping=True)
    spec = _spec(c, node, full, line, None)
    return None if spec is None else single(spec)


def _spec(c: Checker, node: Located, path: str, line: int, scheme: Scheme | None
          ) -> VersionSpec | None:
    text = None
    if isinstance(node, LScalar) and node.value is not None and node.tag in (STR, INT, FLOAT):
        # The text as written: unquoted 12.10 would otherwise read as the float 12.1.
        text = node.value if node.tag == STR else node.text
    if text is None:
        c.add(line, path, f'must be a version spec such as "13", "3.1" or "12.4.2", or a '
              f'mapping by line such as {{{AIRFLOW2}: "13", {AIRFLOW3}: "3.1"}}, got '
              f"{node.kind}.")
        return None
    try:
        spec = parse_spec(text, scheme=scheme)
    except VersionError as exc:
        c.add(line, path, str(exc))
        return None
    if scheme is not None and spec.scheme is not None and spec.scheme != scheme:
        other, here = LINE_OF[spec.scheme], LINE_OF[scheme]
        c.add(line, path, f"'{text}' is an {LINE_NAMES[other]} Runtime, not an "
              f"{LINE_NAMES[here]} one. Put it under {other}.")
        return None
    return spec
