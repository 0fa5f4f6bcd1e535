"""The one selection grammar: which Deployments a ``--limit`` or a ``waves.N.match`` names.

A selection is a list of patterns; one value may hold several, separated by commas or
colons (Ansible style: ``prod,staging:!billing-prod``). Each pattern names:

* a Deployment name or id,
* a group (every member, including members of its child groups),
* a repo (every Deployment it feeds),
* ``all`` (every Deployment), or
* a glob over Deployment names (``*``, ``?``, ``[...]``).

A leading ``&`` intersects and a leading ``!`` excludes. Whatever the order written,
plain patterns are unioned first, then each ``&`` intersects, then each ``!`` removes
(Ansible's order). With no plain pattern the start is every Deployment. A pattern that
matches nothing is an error, so a typo never silently selects less than meant.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from upgrade.config.checker import did_you_mean
from upgrade.errors import InputError

ALL = "all"
_SEPARATORS = re.compile(r"[,:]")
_GLOB = frozenset("*?[")
_LISTED = 12  # how many known names an error message lists before "and N more"


@dataclass(frozen=True)
class Term:
    """One pattern: ``op`` is ``+`` (union), ``&`` (intersect) or ``!`` (exclude)."""

    op: Literal["+", "&", "!"]
    text: str

    @property
    def is_glob(self) -> bool:
        """True when the pattern holds glob characters."""
        return not _GLOB.isdisjoint(self.text)

    def __str__(self) -> str:
        return self.text if self.op == "+" else f"{self.op}{self.text}"


def split(value: str) -> list[str]:
    """Split one ``--limit`` value on commas and colons; empty pieces are dropped."""
    return [piece.strip() for piece in _SEPARATORS.split(value) if piece.strip()]


def parse_term(text: str) -> Term:
    """Parse one pattern; raise InputError (without a ``--limit`` prefix) if malformed."""
    raw = text.strip()
    op: Literal["+", "&", "!"] = "+"
    body = raw
    if raw[:1] in ("!", "&"):
        op, body = raw[0], raw[1:].strip()  # type: ignore[assignment]
    if not body:
        example = f"'{op}prod-*'" if op != "+" else "'prod-*'"
        raise InputError(f"'{raw}' is an empty pattern. Write a name, group, repo or glob, "
                         f"e.g. {example}.")
    if body[0] in "!&":
        raise InputError(f"'{raw}': use one '!' or '&' per pattern, e.g. '!prod-*'.")
    if body[0] == "~":
        raise InputError(f"'{raw}': regular expressions are not supported. Use a glob such "
                         "as 'etl-*'.")
    if body[0] == "@":
        raise InputError(f"'{raw}': @file lists are not supported. List the names separated "
                         "by commas.")
    if "[" in body and "]" not in body[body.index("[") :]:
        raise InputError(f"'{raw}': '[' is not closed. Close it ('prod-[ab]') or drop it.")
    return Term(op, body)


def parse_terms(values: Iterable[str]) -> list[Term]:
    """Parse a list of values, each possibly holding several separated patterns."""
    terms = []
    for value in values:
        pieces = split(value)
        if not pieces:
            raise InputError(f"'{value}' holds no pattern. Write a name, group, repo or glob.")
        terms.extend(parse_term(piece) for piece in pieces)
    return terms


class Index:
    """What patterns can name, over Deployments numbered by their inventory position."""

    def __init__(
        self,
        names: Sequence[str | None],
        ids: Sequence[str | None],
        groups: Mapping[str, Collection[int]],
        repos: Mapping[str, Collection[int]],
    ) -> None:
        self.size = len(names)
        self._names = names
        self._by_name = {n: i for i, n in enumerate(names) if n is not None}
        self._by_id = {d: i for i, d in enumerate(ids) if d is not None}
        self._groups = groups
        self._repos = repos
        self._cache: dict[str, frozenset[int]] = {}

    def position(self, name_or_id: str) -> int | None:
        """Position of the Deployment with this name (or else this id), or None."""
        if name_or_id in self._by_name:
            return self._by_name[name_or_id]
        return self._by_id.get(name_or_id)

    def resolve(self, term: Term) -> frozenset[int]:
        """Positions ``term`` names (ignoring its op); InputError if it names nothing."""
        text = term.text
        hit = self._cache.get(text)
        if hit is None:
            hit = self._cache[text] = self._lookup(text, term.is_glob)
        if not hit:
            raise InputError(self._no_match(text, term.is_glob))
        return hit

    def _lookup(self, text: str, glob: bool) -> frozenset[int]:
        if text == ALL:
            return frozenset(range(self.size))
        if glob:
            match = re.compile(fnmatch.translate(text)).match
            return frozenset(i for i, n in enumerate(self._names) if n is not None and match(n))
        found: set[int] = set()
        for table in (self._by_name, self._by_id):
            if text in table:
                found.add(table[text])
        found.update(self._groups.get(text, ()))
        found.update(self._repos.get(text, ()))
        return frozenset(found)

    def _no_match(self, text: str, glob: bool) -> str:
        if glob:
            return f"'{text}' matches no Deployment name."
        if text in self._groups:
            return (f"'{text}' is a group with no Deployment in it (nor in its child groups). "
                    "Add Deployments to it (a Deployment's or repo's groups:), or leave it out.")
        if text in self._repos:
            return (f"'{text}' is a repo that feeds no Deployment. List its Deployments under "
                    "it, or leave it out.")
        known = [*self._by_name, *self._groups, *self._repos]
        hint = did_you_mean(text, known)
        return (
            f"'{text}' matches no Deployment, group or repo.{hint} "
            f"Known groups: {_listing(self._groups)}; repos: {_listing(self._repos)}."
        )

    def evaluate(self, terms: Sequence[Term]) -> set[int]:
        """Positions selected by ``terms``: union, then each ``&``, then each ``!``."""
        plain = [t for t in terms if t.op == "+"]
        chosen = set(range(self.size)) if not plain else set().union(
            *(self.resolve(t) for t in plain)
        )
        for term in terms:
            if term.op == "&":
                chosen &= self.resolve(term)
        for term in terms:
            if term.op == "!":
                chosen -= self.resolve(term)
        return chosen


def _listing(names: Collection[str]) -> str:
    if not names:
        return "(none)"
    ordered = sorted(names)
    shown = ", ".join(ordered[:_LISTED])
    more = len(ordered) - _LISTED
    return f"{shown} and {more} more" if more > 0 else shown
