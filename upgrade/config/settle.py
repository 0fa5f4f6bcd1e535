"""Settle the Deployments of an inventory being loaded: what is derived from the names.

``upgrade.config.inventory_loader`` reads each Deployment as a :class:`Draft`; this module
works out what follows from all of them together: group and repo membership (the
``--limit`` index), each Deployment's wave (its own, else the first ``waves.N.match`` that
selects it, else its groups'), its merged variables and validated ``vars.verify``, and the
most specific target above it. Problems go to the loader's ``Checker``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from upgrade.config.checker import Checker
from upgrade.config.groups import Group, group_layers
from upgrade.config.inventory import Defaults, Deployment, Repo, layer_order, merge
from upgrade.config.located import LMap, Located
from upgrade.config.selection import Index, parse_terms
from upgrade.config.targets import Target
from upgrade.config.verify import VerifyLayer, read_verify_layer
from upgrade.config.waves import MatchLines, WaveSettings
from upgrade.errors import InputError


@dataclass(slots=True)
class Draft:
    """A Deployment while loading: before waves, groups and vars are settled."""

    id: str | None
    name: str | None
    workspace_id: str | None
    repo: str
    wave: int | None
    direct_groups: list[str]
    vars: dict[str, Any]
    line: int
    path: str
    node: LMap
    unknown_group: bool
    target: Target | None = None


def index_of(
    drafts: list[Draft],
    member_of: list[frozenset[str]],
    groups: Mapping[str, Group],
    repos: Mapping[str, Repo],
) -> Index:
    """The ``--limit`` index: names and ids by position, the members of every group and
    repo (``member_of``: each Draft's groups, closed over their parents)."""
    group_members: dict[str, list[int]] = {g: [] for g in groups}
    repo_members: dict[str, list[int]] = {}
    for i, (d, member) in enumerate(zip(drafts, member_of, strict=True)):
        for g in member:
            group_members[g].append(i)
        repo_members.setdefault(d.repo, []).append(i)
    for repo in repos:
        repo_members.setdefault(repo, [])
    return Index([d.name for d in drafts], [d.id for d in drafts], group_members, repo_members)



def wave_rules(
    c: Checker, waves: Mapping[int, WaveSettings], match_where: MatchLines, index: Index
) -> tuple[list[tuple[int, set[int]]], bool]:
    """Each wave's ``match`` as the Deployments it selects, in wave order; and whether a
    pattern was broken (then "no wave" problems may be its echo)."""
    rules, broken = [], False
    for number in sorted(waves):
        settings, ok, terms = waves[number], True, []
        where = match_where.get(number, [])
        for text, (line, key) in zip(settings.match, where, strict=True):
            try:
                parsed = parse_terms([text])
                for term in parsed:
                    index.resolve(term)
                terms.extend(parsed)
            except InputError as exc:
                c.add(line, key, str(exc))
                ok = False
                broken = True
        if ok and terms:
            rules.append((number, index.evaluate(terms)))
    return rules, broken



def settle(
    c: Checker,
    drafts: list[Draft],
    member_of: list[frozenset[str]],
    rules: list[tuple[int, set[int]]],
    groups: Mapping[str, Group],
    defaults: Defaults,
    repos: Mapping[str, Repo],
    verify: VerifyVars,
    top_target: tuple[Target, str],
    *,
    broken_rules: bool,
) -> list[Deployment]:
    """The Deployments, each with its wave, merged variables, verify layer and target; a
    Draft with no wave (or a missing key, already reported) is reported and left out."""
    by_rule: dict[int, int] = {}
    for number, chosen in rules:  # ascending: the first rule that matches wins
        for i in chosen:
            by_rule.setdefault(i, number)
    by_groups: dict[frozenset[str], tuple[int | None, str]] = {}
    layers_of: dict[frozenset[str], list[tuple[str, Mapping[str, Any]]]] = {}
    targets_of: dict[tuple[frozenset[str], str], tuple[Target, str]] = {}
    deployments = []
    for i, (d, member) in enumerate(zip(drafts, member_of, strict=True)):
        wave, source = d.wave, "deployment"
        if wave is None and i in by_rule:
            wave = by_rule[i]
            source = f"waves.{wave}.match"
        if wave is None:
            if member not in by_groups:
                found = sorted((groups[g].wave, g) for g in member if groups[g].wave)
                by_groups[member] = (found[0][0], f"group {found[0][1]}") if found else (
                    None, "")
            wave, source = by_groups[member]
        if wave is None:
            if not d.unknown_group and "wave" not in d.node and not broken_rules:
                c.add(d.line, d.path, f"Deployment '{d.name}' has no wave. Give it one: "
                           "set 'wave: N' on it, match it in waves.N.match, or put it in a "
                           "group that has a 'wave'.")
            continue
        if d.id is None or d.name is None or d.workspace_id is None:
            continue
        if member not in layers_of:
            layers_of[member] = group_layers(groups, member)
        layers = layer_order(defaults.vars, layers_of[member], repos[d.repo], d.name, d.vars)
        values, sources = merge(layers)
        if d.target is not None:
            target, target_source = d.target, f"deployment {d.name}"
        else:
            if (member, d.repo) not in targets_of:
                targets_of[member, d.repo] = _layered_target(
                    top_target, groups, member, repos[d.repo])
            target, target_source = targets_of[member, d.repo]
        deployments.append(Deployment(
            id=d.id, name=d.name, workspace_id=d.workspace_id, repo=d.repo, wave=wave,
            groups=member, vars=values, own_vars=d.vars, wave_source=source, line=d.line,
            verify=verify.of(d, sources["verify"]) if "verify" in values else None,
            target=target, target_source=target_source,
        ))
    return deployments




def _layered_target(top: tuple[Target, str], groups: Mapping[str, Group],
                    member: frozenset[str], repo: Repo) -> tuple[Target, str]:
    """The most specific target above a Deployment: its repo's, its deepest group's (by name
    at one depth, as for variables), else the top level's; with where it came from."""
    if repo.target is not None:
        return repo.target, f"repo {repo.name}"
    found = top
    for g in sorted(member, key=lambda g: (groups[g].depth, g)):
        if groups[g].target is not None:
            found = (groups[g].target, f"group {g}")
    return found


class VerifyVars:
    """Every ``vars.verify`` of the inventory, validated where it is written.

    Those of defaults, groups and repos are read once, up front (so one that every
    Deployment overrides is still checked); a Deployment's own when it is settled.
    """

    def __init__(self, c: Checker, top: LMap) -> None:
        self.c = c
        self.layers: dict[str, VerifyLayer | None] = {}
        self.read("defaults", _at(top, "defaults", "vars", "verify"), "defaults.vars.verify")
        for section, kind in (("groups", "group"), ("repos", "repo")):
            found = top.get(section)
            for name in (found if isinstance(found, LMap) else ()):
                self.read(f"{kind} {name}", _at(found, name, "vars", "verify"),
                          f"{section}.{name}.vars.verify")

    def read(self, label: str, node: Located | None, path: str) -> VerifyLayer | None:
        if node is not None:
            self.layers[label] = read_verify_layer(node.plain(), path,
                                                   self.c.locator(node, path))
        return self.layers.get(label)

    def of(self, draft: Draft, label: str) -> VerifyLayer | None:
        """The layer of the variable ``label`` set for this Deployment."""
        if label.startswith("deployment "):
            return self.read(label, _at(draft.node, "vars", "verify"), f"{draft.path}.vars.verify")
        return self.layers.get(label)


def _at(node: Located | None, *keys: Any) -> Located | None:
    for key in keys:
        node = node.get(key) if isinstance(node, LMap) else None
    return node
