"""Playbooks: the ordered steps every Deployment of a wave goes through.

A playbook (``playbooks/upgrade.yaml``) is Ansible-style YAML: a ``name`` and a list of
``steps``, each with exactly one kind key (``render``, ``commit``, ``run``, ``deploy``,
``verify``, ``wait``) holding its arguments. ``load_playbook`` validates the whole file
and reports every problem at once (``PlaybookError``), each as
``playbooks/upgrade.yaml:LINE: steps[2].run.argv: problem. What to do.``

String arguments are Jinja2 templates, checked at load time
(``upgrade.config.playbook_loader``) and rendered per repo or Deployment at execution time
(``upgrade.config.step``).

Steps run in file order, and every repo step (``render``, ``commit``, ``run``: once per
repo) comes before every Deployment step (``deploy``, ``verify``, ``wait``: once per
Deployment). The schema is documented in docs/playbooks.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from upgrade.config.step import Step


@dataclass(frozen=True)
class Playbook:
    """A validated playbook: its steps in order and any warnings to show the user."""

    path: Path
    name: str
    steps: tuple[Step, ...]
    warnings: tuple[str, ...] = ()

    @property
    def deploys(self) -> bool:
        """True when the playbook has a deploy step (else it only renders and tests)."""
        return any(step.kind == "deploy" for step in self.steps)


def step_context(
    *,
    target: str,
    rollout: str,
    wave: int,
    repo: Any,
    vars: Mapping[str, Any],
    runtime: Any,
    deployment: Any | None = None,
) -> dict[str, Any]:
    """The template context for one repo (``deployment=None``) or one Deployment.

    ``repo`` and ``deployment`` are inventory objects (or anything with the same fields);
    ``runtime`` has ``version``, ``airflow`` and ``python`` (e.g. template.RuntimeContext).
    """
    context: dict[str, Any] = {
        "target": str(target),
        "rollout": str(rollout),
        "wave": int(wave),
        "repo": {"name": repo.name, "path": str(repo.path)},
        "vars": dict(vars),
        "runtime": {key: _field(runtime, key) for key in ("version", "airflow", "python")},
    }
    if deployment is not None:
        context["deployment"] = {
            "name": deployment.name, "id": deployment.id, "workspace_id": deployment.workspace_id,
        }
    return context


def shared_vars(deployments: Iterable[Any]) -> dict[str, Any]:
    """The merged vars every one of ``deployments`` agrees on: what a repo step sees.

    A repo step runs once for all of the repo's Deployments in the wave, so a variable
    that differs between them (or that only some set) is undefined there.
    """
    merged: dict[str, Any] | None = None
    for deployment in deployments:
        own = deployment.vars
        if merged is None:
            merged = dict(own)
        else:
            merged = {k: v for k, v in merged.items() if k in own and own[k] == v}
    return merged or {}


def _field(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def _display(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return str(path)


