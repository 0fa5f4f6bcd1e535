"""Add Deployments to an inventory's YAML text, keeping everything already written there.

``discover`` proposes repo entries; this module merges them into the inventory as a
round-trip YAML document (ruamel.yaml), so hand-written keys, their order, quoting and
comments survive. Nothing already listed changes: a Deployment whose id the inventory
has is left alone; a new one joins the repo entry of the same path (or name), else a new
repo entry is added. Deployments nothing can place go into a commented ``unmapped:``
block at the end, replaced on each run. What comes out is validated like any inventory
before anyone writes it (``upgrade.config.inventory_loader``).
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
    path: str  # relative to the inventory's directory
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
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.error import YAMLError

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    try:
        doc = yaml.load(_UNMAPPED.sub("\n", text))
    except YAMLError as exc:
        raise InputError(f"the inventory is not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(doc, CommentedMap):
        raise InputError("the inventory's top level must be a mapping (target, repos, ...).")
    listed = doc.get("repos")
    if listed is None or not isinstance(listed, CommentedMap):
        listed = CommentedMap()
        doc["repos"] = listed
    listed.fa.set_block_style()
    known_ids = {str(d.get("id")) for r in listed.values() if isinstance(r, Mapping)
                 for d in (r.get("deployments") or ()) if isinstance(d, Mapping)}
    by_path = {_resolved(root, r.get("path")): name for name, r in listed.items()
               if isinstance(r, Mapping) and isinstance(r.get("path"), str)}
    merged = Merged("")
    for repo in repos:
        fresh = [d for d in repo.deployments if d.id not in known_ids]
        merged.kept += len(repo.deployments) - len(fresh)
        if not fresh:
            continue
        name = by_path.get(_resolved(root, repo.path)) or repo.name
        entry = listed.get(name)
        if not isinstance(entry, CommentedMap):
            entry = CommentedMap([("path", repo.path), ("deployments", CommentedSeq())])
            listed[name] = entry
            listed.yaml_set_comment_before_after_key(name, before=repo.comment, indent=2)
            merged.new_repos.append(name)
        seq = entry.get("deployments")
        if not isinstance(seq, CommentedSeq):
            seq = CommentedSeq()
            entry["deployments"] = seq
        seq.fa.set_block_style()
        for d in fresh:
            item = CommentedMap([("id", d.id), ("name", d.name), ("workspace_id", d.workspace_id),
                                 ("wave", d.wave)])
            if d.groups:
                item["groups"] = list(d.groups)
            item.fa.set_flow_style()
            seq.append(item)
            if d.note:
                seq.yaml_add_eol_comment(d.note, len(seq) - 1)
            merged.added.append(d.name)
            known_ids.add(d.id)
    out = io.StringIO()
    yaml.dump(doc, out)
    merged.text = out.getvalue().rstrip("\n") + "\n" + _unmapped_block(unmapped)
    return merged


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
