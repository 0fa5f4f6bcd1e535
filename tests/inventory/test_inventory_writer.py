"""`discover --merge` keeps every byte of the inventory it merges into: what it adds are
whole new lines, and the file without them is the file as it was (comments before `---`,
`%YAML` directives, the bare `---`, CRLF line endings, comments after `&anchor`/`*alias`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from upgrade.config.inventory_loader import load_inventory
from upgrade.config.inventory_writer import NewDeployment, NewRepo, merge_inventory

HAND_WRITTEN = """\
# The payments fleet: owned by the platform team.
# Review changes in #platform before merging.
%YAML 1.2
---
target: "12.4"   # pinned by CAB-12
defaults: &defaults   # every repo's settings
  dockerfile: Dockerfile
groups:
  production: {}   # filled below
repos:
  app:
    path: repos/app
    vars: &app_vars   # shared by its Deployments
      team: payments
    deployments:
      - id: cl1   # the first one
        name: app-dev
        workspace_id: ws1
        wave: 1
        vars: *app_vars   # the same as the repo's
      - {id: cl2, name: app-prod, workspace_id: ws1, wave: 2}  # inline
    # app's Deployments end here
  # other repos follow
  billing:
    path: repos/billing
    deployments:
    - id: cl3
      name: billing-dev
      workspace_id: ws1
      wave: 1
# --- the end of what people wrote
"""
NEW_APP = NewRepo("app", {"path": "repos/app"}, "unused: app is listed",
                  (NewDeployment("cl4", "app-staging", "ws1", 2, "wave suggested by -staging"),))
NEW_BILLING = NewRepo("billing", {"path": "repos/billing"}, "unused",
                      (NewDeployment("cl5", "billing-prod", "ws1", 3, "", ("production",)),))
NEW_REPO = NewRepo("ledger", {"path": "repos/ledger"}, "discovered: github.com/acme/ledger",
                   (NewDeployment("cl6", "ledger-dev", "ws2", 1, "no suffix: wave 1"),))
UNMAPPED = ["{id: cl7, name: lost, workspace_id: ws9, wave: 1}  # no git metadata"]


def _without(merged: str, original: str) -> list[str]:
    """The lines ``merged`` adds to ``original`` (each original line kept, in order)."""
    added, rest = [], original.splitlines(keepends=True)
    for line in merged.splitlines(keepends=True):
        if rest and line == rest[0]:
            rest.pop(0)
        else:
            added.append(line)
    assert rest == [], f"lines changed or dropped: {rest}"
    return added


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_merge_adds_whole_lines_and_changes_no_byte(tmp_path: Path, newline: str) -> None:
    original = HAND_WRITTEN.replace("\n", newline)
    merged = merge_inventory(original, str(tmp_path), [NEW_APP, NEW_BILLING, NEW_REPO],
                             UNMAPPED)

    added = _without(merged.text, original)
    assert all(line.endswith(newline) and not line.endswith("\r\r\n") for line in added)
    assert "\n" not in merged.text.replace(newline, "")  # one line ending throughout
    assert [line.rstrip("\r\n") for line in added][:8] == [
        "      - {id: cl4, name: app-staging, workspace_id: ws1, wave: 2}  # wave suggested "
        "by -staging",
        "    - {id: cl5, name: billing-prod, workspace_id: ws1, wave: 3, groups: [production]}",
        "  # discovered: github.com/acme/ledger",
        "  ledger:",
        "    path: repos/ledger",
        "    deployments:",
        "      - {id: cl6, name: ledger-dev, workspace_id: ws2, wave: 1}  # no suffix: wave 1",
        newline.rstrip("\r\n"),  # the unmapped block, as before
    ]
    assert (merged.added, merged.new_repos) == (["app-staging", "billing-prod", "ledger-dev"],
                                                ["ledger"])
    for repo in ("app", "billing", "ledger"):
        (tmp_path / "repos" / repo).mkdir(parents=True)
        (tmp_path / "repos" / repo / "Dockerfile").write_text(
            "FROM quay.io/astronomer/astro-runtime:12.1.0\n")
    path = tmp_path / "inventory.yaml"
    path.write_bytes(merged.text.encode())
    inventory = load_inventory(path)
    assert [(d.name, d.repo, d.wave) for d in inventory.deployments] == [
        ("app-dev", "app", 1), ("app-prod", "app", 2), ("app-staging", "app", 2),
        ("billing-dev", "billing", 1), ("billing-prod", "billing", 3),
        ("ledger-dev", "ledger", 1)]
    assert inventory.deployment("app-dev").vars["team"] == "payments"  # the alias still is
    assert "production" in inventory.deployment("billing-prod").groups

    again = merge_inventory(merged.text, str(tmp_path), [NEW_APP, NEW_BILLING, NEW_REPO],
                            UNMAPPED)
    assert again.text == merged.text and again.added == [] and again.kept == 3
    # The new repo goes after billing's new Deployment, whichever discover lists first.
    reordered = merge_inventory(original, str(tmp_path), [NEW_REPO, NEW_BILLING, NEW_APP],
                                UNMAPPED)
    assert reordered.text == merged.text


def test_a_flow_style_repos_mapping_is_still_merged(tmp_path: Path) -> None:
    """Out of the splice's reach: ruamel.yaml writes the merge, with the file's endings."""
    original = 'target: "12.4"\r\nrepos: {app: {path: repos/app, deployments: []}}\r\n'
    merged = merge_inventory(original, str(tmp_path), [NEW_APP], [])
    assert "\n" not in merged.text.replace("\r\n", "")
    assert "{id: cl4, name: app-staging" in merged.text and merged.added == ["app-staging"]
