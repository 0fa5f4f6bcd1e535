"""Add Deployments to an inventory's YAML text, keeping everything already written there.

``discover`` proposes repo entries; this module merges them into the inventory. Nothing
already listed changes: a Deployment whose id the inventory has is left alone; a new one
joins the repo entry of the same path (or name), else a new repo entry is added.
Deployments nothing can place go into a commented ``unmapped:`` block at the end,
replaced on each run. What comes out is validated like any inventory before anyone
writes it (``upgrade.config.inventory_loader``).

The new lines are spliced into the text as it is, so every byte already there stays:
comments before ``---``, ``%YAML`` directives, the bare ``---``, CRLF line endings, and
comments after an ``&anchor`` or ``*alias``, which a round trip through ruamel.yaml moves
or drops. The document is still read with ruamel.yaml (round-trip) for where things are
and what the merge adds; the splice is kept only when it reads back as exactly that
merged document, else (a flow-style ``repos:``, say) the merge is written by ruamel.yaml
as before, with the line endings it found.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from upgrade.errors import InputError

UNMAPPED_START = "# --- unmapped: Deployments whose deploys carry no git metadata"
UNMAPPED_END = "# --- end of unmapped"
_UNMAPPED = re.compile(rf"\n*{re.escape(UNMAPPED_START)}.*?{re.escape(UNMAPPED_END)}[^\n]*\n?",
                       re.DOTALL)


@dataclass(frozen=True)
class NewDeployment:
    """A Deployment to add: its inventory keys and the comment written beside it."""

    id: str
    name: str
    workspace_id: str
    wave: int
    note: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class NewRepo:
    """A repo entry to add to (or extend in) ``repos:``."""

    name: str
    #: The keys written before ``deployments``: ``path`` (relative to the inventory's
    #: directory), or ``url`` (and ``directory``, ``git``) for a repo the tool clones.
    source: Mapping[str, Any]
    comment: str  # written above a new entry
    deployments: tuple[NewDeployment, ...]


@dataclass
class Merged:
    """The merged text and what changed."""

    text: str
    added: list[str] = field(default_factory=list)  # names of the Deployments added
    new_repos: list[str] = field(default_factory=list)
    kept: int = 0  # Deployments the inventory already had


def merge_inventory(text: str, root: str, repos: Sequence[NewRepo],
                    unmapped: Sequence[str]) -> Merged:
    """``text`` (an inventory in ``root``) with ``repos`` added and ``unmapped`` listed."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.error import YAMLError

    newline = "\r\n" if "\r\n" in text else "\n"
    body = _UNMAPPED.sub("\n", text.replace("\r\n", "\n"))
    yaml = _yaml()
    try:
        doc = yaml.load(body)
    except YAMLError as exc:
        raise InputError(f"the inventory is not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(doc, CommentedMap):
        raise InputError("the inventory's top level must be a mapping (target, repos, ...).")
    splice = _Splice(body, doc)
    listed = doc.get("repos")
    if listed is None or not isinstance(listed, CommentedMap):
        listed = CommentedMap()
        doc["repos"] = listed
    listed.fa.set_block_style()
    known_ids = {str(d.get("id")) for r in listed.values() if isinstance(r, Mapping)
                 for d in (r.get("deployments") or ()) if isinstance(d, Mapping)}
    by_path = {_resolved(root, r.get("path")): name for name, r in listed.items()
               if isinstance(r, Mapping) and isinstance(r.get("path"), str)}
    by_url = {r.get("url"): name for name, r in listed.items()
              if isinstance(r, Mapping) and isinstance(r.get("url"), str)}
    merged = Merged("")
    for repo in repos:
        fresh = [d for d in repo.deployments if d.id not in known_ids]
        merged.kept += len(repo.deployments) - len(fresh)
        if not fresh:
            continue
        path, url = repo.source.get("path"), repo.source.get("url")
        name = (by_path.get(_resolved(root, path)) if path else by_url.get(url)) or repo.name
        entry = listed.get(name)
        items = [_item(d) for d in fresh]
        if not isinstance(entry, CommentedMap):
            entry = CommentedMap([*((k, _flow(v)) for k, v in repo.source.items()),
                                  ("deployments", CommentedSeq())])
            listed[name] = entry
            listed.yaml_set_comment_before_after_key(name, before=repo.comment, indent=2)
            merged.new_repos.append(name)
            splice.new_repo(name, repo.comment, entry, items)
        else:
            splice.new_items(name, items)
        seq = entry.get("deployments")
        if not isinstance(seq, CommentedSeq):
            seq = CommentedSeq()
            entry["deployments"] = seq
        seq.fa.set_block_style()
        for d, (item, note) in zip(fresh, items, strict=True):
            seq.append(item)
            if note:
                seq.yaml_add_eol_comment(note, len(seq) - 1)
            merged.added.append(d.name)
            known_ids.add(d.id)
    spliced = splice.text(doc)
    if spliced is None:  # a shape the splice does not reach: ruamel.yaml writes it all
        out = io.StringIO()
        yaml.dump(doc, out)
        spliced = out.getvalue()
    merged.text = (spliced.rstrip("\n") + "\n" + _unmapped_block(unmapped)).replace("\n",
                                                                                    newline)
    return merged


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _item(d: NewDeployment) -> tuple[Any, str]:
    """A new Deployment as the flow mapping written for it, and its end-of-line comment."""
    from ruamel.yaml.comments import CommentedMap

    item = CommentedMap([("id", d.id), ("name", d.name), ("workspace_id", d.workspace_id),
                         ("wave", d.wave)])
    if d.groups:
        item["groups"] = list(d.groups)
    item.fa.set_flow_style()
    return item, d.note


class _Splice:
    """The merge as lines inserted into the text, placed by where ruamel.yaml read each
    node (``.lc``); ``text()`` is None when a shape is out of its reach."""

    def __init__(self, body: str, doc: Any):
        self.lines = body.split("\n")
        self.doc = doc
        from ruamel.yaml.comments import CommentedMap, CommentedSeq

        # ``repos:`` as read, before the merge adds to it: its first entry's position, or
        # None when it has none (``repos:``, ``repos: {}``, no key), or False when it is
        # out of reach (a flow mapping with entries, not a mapping).
        listed = doc.get("repos")
        self.first: tuple[int, int] | bool | None = None
        if isinstance(listed, CommentedMap) and len(listed) and not listed.fa.flow_style():
            self.first = tuple(listed.lc.key(next(iter(listed))))  # type: ignore[assignment]
        elif isinstance(listed, CommentedMap) and not len(listed):
            line, column = doc.lc.value("repos")
            if self.lines[line][column:column + 2] != "{}":
                self.first = False
            else:  # `repos: {}` becomes `repos:`, its entries below it
                self.lines[line] = (self.lines[line][:column].rstrip()
                                    + self.lines[line][column + 2:])
        elif listed is not None:
            self.first = False
        # Where each listed repo's block sequence of Deployments ends, and its dashes' column.
        self.seq_end: dict[str, tuple[int, int]] = {}
        for name, entry in (listed.items() if isinstance(self.first, tuple) else ()):
            seq = entry.get("deployments") if isinstance(entry, CommentedMap) else None
            if isinstance(seq, CommentedSeq) and len(seq) and not seq.fa.flow_style():
                last = seq.lc.item(len(seq) - 1)[0]
                dash = _indent(self.lines[last])
                self.seq_end[name] = (self._end(last, dash, sequence=True), dash)
        # Before line n: the new Deployments of a listed repo, then new repo entries (both
        # may go where the last repo's block ends, the Deployments first).
        self.items: dict[int, list[str]] = {}
        self.repos: dict[int, list[str]] = {}
        self.ok = True

    def new_items(self, repo: str, items: list[tuple[Any, str]]) -> None:
        """``items`` appended to the block sequence ``repos.<repo>.deployments``."""
        if repo not in self.seq_end:  # none yet, a flow sequence, or a repo added now
            self.ok = False
            return
        at, dash = self.seq_end[repo]
        self.items.setdefault(at, []).extend(" " * dash + line for line in _flow_items(items))

    def new_repo(self, name: str, comment: str, entry: Any, items: list[tuple[Any, str]]) -> None:
        """A new entry at the end of the block mapping ``repos`` (made when missing)."""
        text = [f"# {line}" if line else "#" for line in comment.splitlines()]
        text += [f"{_scalar(name)}:"]
        text += [f"  {key}: {_scalar(value)}" for key, value in entry.items()
                 if key != "deployments"]
        text += ["  deployments:"]
        text += ["    " + line for line in _flow_items(items)]
        if self.first is False:
            self.ok = False
            return
        if isinstance(self.first, tuple):
            column = self.first[1]
            top = self.doc.lc.key("repos")
            at = self._end(top[0], top[1], sequence=False)
        elif "repos" in self.doc.lc.data:  # `repos:` without entries
            top = self.doc.lc.key("repos")
            column, at = top[1] + 2, top[0] + 1
        else:  # no `repos:` yet
            column, at = 2, self._last_content() + 1
            self.repos.setdefault(at, ["repos:"])
        self.repos.setdefault(at, []).extend(" " * column + line for line in text)

    def text(self, merged: Any) -> str | None:
        """The spliced text, when it reads back as ``merged``; else None."""
        if not self.ok:
            return None
        out: list[str] = []
        for n, line in enumerate([*self.lines, None]):
            out += self.items.get(n, []) + self.repos.get(n, [])
            if line is not None:
                out.append(line)
        text = "\n".join(out)
        from ruamel.yaml import YAML
        from ruamel.yaml.error import YAMLError

        try:
            back = YAML(typ="safe", pure=True).load(text)
        except YAMLError:
            return None
        return text if back == merged else None

    def _end(self, start: int, column: int, *, sequence: bool) -> int:
        """The line after the last content line of the block that starts on line
        ``start``, whose own lines are at ``column`` (a sequence's dashes) or deeper."""
        end = start
        for n in range(start + 1, len(self.lines)):
            line = self.lines[n]
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue  # blank lines and comments do not end a block, nor belong to it
            indent = _indent(line)
            if indent < column or (indent == column and not (
                    sequence and (stripped == "-" or stripped.startswith("- ")))):
                break
            end = n
        return end + 1

    def _last_content(self) -> int:
        for n in range(len(self.lines) - 1, -1, -1):
            stripped = self.lines[n].strip()
            if stripped and not stripped.startswith("#") and stripped != "...":
                return n
        return -1


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _flow_items(items: list[tuple[Any, str]]) -> list[str]:
    """``- {id: …, …}  # note`` for each item, as ruamel.yaml writes a flow mapping."""
    return [f"- {_scalar(item)}" + (f"  # {note}" if note else "") for item, note in items]


def _flow(value: Any) -> Any:
    """A mapping as a one-line flow mapping (``git: {mode: direct}``); anything else as is."""
    if not isinstance(value, Mapping):
        return value
    from ruamel.yaml.comments import CommentedMap

    flow = CommentedMap(value)
    flow.fa.set_flow_style()
    return flow


def _scalar(value: Any) -> str:
    """``value`` as one line of YAML (a flow mapping keeps its flow style)."""
    out = io.StringIO()
    yaml = _yaml()
    yaml.dump(value, out)
    text = out.getvalue()
    return text.removesuffix("\n...\n").strip()


def _unmapped_block(lines: Sequence[str]) -> str:
    if not lines:
        return ""
    body = "\n".join(f"#   - {line}" for line in lines)
    return (f"\n{UNMAPPED_START}, so nothing says which repo\n"
            "# builds them. Add each under its repo in repos: above (discover leaves them out).\n"
            f"# unmapped:\n{body}\n{UNMAPPED_END}\n")


def _resolved(root: str, path: Any) -> str:
    if not isinstance(path, str):
        return ""
    return os.path.normpath(os.path.join(root, os.path.expanduser(path)))
