"""Fixtures: a project directory where tests write playbooks/upgrade.yaml."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from upgrade.config.playbook import Playbook
from upgrade.config.playbook_loader import load_playbook
from upgrade.config.settings import BESIDE_PLAYBOOK
from upgrade.errors import PlaybookError, Problem

SHOWN = "playbooks/upgrade.yaml"


class BookDir:
    """A temporary project root holding playbooks/upgrade.yaml."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / BESIDE_PLAYBOOK
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, text: str) -> Path:
        """Write the playbook; the first line of ``text`` after dedent is line 1."""
        self.path.write_text(textwrap.dedent(text).lstrip("\n"))
        return self.path

    def load(self, text: str) -> Playbook:
        """Write and load a playbook that must be valid."""
        return load_playbook(self.write(text), display=SHOWN)

    def error(self, text: str) -> PlaybookError:
        """Write and load a playbook that must be refused; the error."""
        with pytest.raises(PlaybookError) as caught:
            load_playbook(self.write(text), display=SHOWN)
        return caught.value

    def problems(self, text: str) -> list[Problem]:
        """Write and load a playbook that must be refused; its problems, sorted."""
        return self.error(text).problems


@pytest.fixture
def book(tmp_path: Path) -> BookDir:
    """An empty project directory with a playbooks/ folder."""
    return BookDir(tmp_path)


def context(**overrides: object) -> dict[str, object]:
    """A Deployment-step template context as the executor builds it."""
    base: dict[str, object] = {
        "target": "12.4.1",
        "rollout": "r-20260101-1",
        "wave": 1,
        "deployment": {"name": "billing-dev", "id": "cl1", "workspace_id": "ws1"},
        "repo": {"name": "billing", "path": "/srv/repos/billing"},
        "vars": {},
        "runtime": {"version": "12.4.1", "airflow": "2.10.5", "python": "3.12"},
    }
    base.update(overrides)
    return base
