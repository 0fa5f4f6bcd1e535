"""Shared fixtures. The simulators' fixtures (``sim``, ``forge``) are in tests/simulators.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support import ROOT, SampleFleet

pytest_plugins = ["simulators", "pg_server"]


@pytest.fixture(scope="session")
def _sample_fleet_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample fleet built once per worker: inventory.yaml, templates/ and playbooks/,
    and the repos (checkouts and their bare origins) created by ``demo.sample_fleet``. About
    seventy git commands; each test gets a copy (``sample_fleet``)."""
    from demo import sample_fleet as creator

    root = tmp_path_factory.mktemp("sample-fleet-template")
    for name in ("templates", "playbooks"):
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, root / name)
    shutil.copy(ROOT / "inventory.yaml", root / "inventory.yaml")
    creator.create(root / "inventory.yaml", ROOT / "examples" / "sample-fleet")
    return root


@pytest.fixture
def sample_fleet(_sample_fleet_template: Path, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> SampleFleet:
    """inventory.yaml, templates/ and playbooks/ copied to tmp, with the repos created: a
    copy of the worker's template, each checkout's ``origin`` pointed at its own copy of the
    bare repository (the only absolute path the creation writes)."""
    template = _sample_fleet_template
    # git's sample hooks are inert files; not copying them saves a third of the files.
    shutil.copytree(template, tmp_path, symlinks=True, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.sample"))
    old, new = template.resolve().as_uri(), tmp_path.resolve().as_uri()
    for config in (tmp_path / "demo-fleet").glob("*/.git/config"):
        text = config.read_text("utf-8")
        assert old in text, config
        config.write_text(text.replace(old + "/", new + "/"), "utf-8")
    for var, value in (("GIT_AUTHOR_NAME", "Test"), ("GIT_AUTHOR_EMAIL", "test@example.invalid"),
                       ("GIT_COMMITTER_NAME", "Test"), ("GIT_COMMITTER_EMAIL", "test@example.invalid")):
        monkeypatch.setenv(var, value)
    return SampleFleet(tmp_path)


# The story suites: each test drives whole waves through the real commands (astro-fleet,
# astro-sim, git remotes, sshd, PostgreSQL), a few seconds to half a minute each. They are
# `make test-e2e` (CI runs it after `make test`), so that `make test` stays a few minutes.
E2E_SUITES = ("rollout", "git_modes", "team", "ssh", "gate")
TESTS = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the story suites ``e2e``; then the slow tests first, in their collection order,
    then the rest: the workers get two tests at a time (--maxschedchunk 2), so a long test
    never starts last while the other worker has nothing left to do."""
    for item in items:
        suite = item.path.resolve().relative_to(TESTS).parts[0]
        if suite in E2E_SUITES:
            item.add_marker(pytest.mark.e2e)
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
