"""The fleet inventory: repos, the Deployments they feed, groups, runners, waves, settings.

``upgrade.config.inventory_loader.load_inventory`` reads ``inventory.yaml`` once, validates
all of it (every section, including control-plane, notification and verification
settings) and reports every problem at once; what it returns is this module's plain,
frozen data, and nothing here touches the disk. The schema, the variable layering and the
wave precedence are documented in docs/inventory.md; the short version:

* Variables, lowest to highest: ``defaults.vars`` → each group the Deployment is in
  (shallower groups first, so a parent before its children; alphabetical at the same
  depth) → the repo's ``vars`` → the Deployment's ``vars``. A later layer replaces a
  variable whole (no deep merge), as in Ansible.
* Wave: the Deployment's own ``wave``; else the first ``waves.N.match`` (ascending N)
  that selects it; else the lowest ``wave`` among its groups (ancestors included).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from upgrade.config.checker import did_you_mean
from upgrade.config.control_plane import ControlPlaneConfig
from upgrade.config.git import GitSettings
from upgrade.config.groups import Group, group_layers
from upgrade.config.located import LMap
from upgrade.config.notifications import WebhookSettings
from upgrade.config.repos import ManagedCheckout
from upgrade.config.runners import LOCAL, Runner
from upgrade.config.selection import Index, parse_terms
from upgrade.config.settings import CatalogSettings, JournalSettings, PathSetting
from upgrade.config.targets import Target, TargetSource
from upgrade.config.verify import VerifyLayer
from upgrade.config.waves import WaveSettings
from upgrade.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_DOCKERFILE = "Dockerfile"

# What a Deployment or Workspace id may look like (Astro's are CUIDs such as
# cm1mldev0000009): checked when the inventory is loaded and again before any id is put on
# an astro command line, where one starting with "-" would be read as a flag.
ASTRO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
ASTRO_ID_RULE = "letters, digits, '-', '_', '.', at most 100, not starting with '-'"

@dataclass(frozen=True)
class TemplateRef:
    """A template-managed repo's Dockerfile template (a file in templates/) and its vars."""

    name: str
    vars: Mapping[str, Any] = field(default_factory=dict, hash=False)
    # Where the inventory sets it (``inventory.yaml:LINE: repos.R.template``): a template
    # that fails for this repo's vars is reported here, not only at the template's line.
    where: str = field(default="", compare=False)


@dataclass(frozen=True)
class Repo:
    """An Astro project repository; ``path`` is absolute for the local runner (for a repo
    given by ``url``, the project's directory in the checkout the tool keeps: ``managed``)."""

    name: str
    path: Path
    dockerfile: str  # relative to path
    template: TemplateRef | None
    runner: str
    groups: tuple[str, ...]
    vars: Mapping[str, Any] = field(hash=False)
    line: int | None = None
    target: Target | None = None  # the repo's own ``target``, if it sets one
    git: GitSettings = field(default_factory=GitSettings, hash=False)
    managed: ManagedCheckout | None = field(default=None, hash=False)

    @property
    def dockerfile_path(self) -> Path:
        """The Dockerfile (on the repo's runner)."""
        return self.path / self.dockerfile


@dataclass(frozen=True)
class Deployment:
    """One Astro Deployment; ``vars`` are merged, ``groups`` include ancestors."""

    id: str
    name: str
    workspace_id: str
    repo: str
    wave: int
    groups: frozenset[str]
    vars: Mapping[str, Any] = field(hash=False)
    own_vars: Mapping[str, Any] = field(hash=False, repr=False)
    wave_source: str = "deployment"  # deployment | waves.N.match | group NAME
    line: int | None = None
    verify: VerifyLayer | None = field(default=None, hash=False, repr=False)  # vars.verify
    # The most specific ``target`` written above it (none: no line targeted), and where it
    # is written: inventory, group G, repo R, deployment D. Inventory.target_of applies
    # --target (or an active rollout's) over it.
    target: Target = field(default_factory=Target, hash=False)
    target_source: str = "inventory"


@dataclass(frozen=True)
class Defaults:
    """The ``defaults:`` section."""

    vars: Mapping[str, Any] = field(default_factory=dict, hash=False)
    runner: str = LOCAL
    dockerfile: str = DEFAULT_DOCKERFILE
    #: The keys ``defaults.git`` sets and that mapping's line (None: none).
    git: tuple[dict[str, Any], int] | None = field(default=None, hash=False)


@dataclass(frozen=True, eq=False)
class Inventory:
    """The whole validated fleet; plain data, no I/O."""

    path: Path
    root: Path  # directory relative paths are resolved against
    target: Target | None  # the top level's as written (None: only --target gives one)
    catalog: CatalogSettings
    journal: JournalSettings
    workdir: Path  # where the checkouts of repos given by url are kept
    playbook: PathSetting  # the default playbook of `upgrade` (--playbook overrides it)
    templates: PathSetting  # the directory of Dockerfile templates
    control_plane: ControlPlaneConfig
    notifications: WebhookSettings | None
    runners: Mapping[str, Runner]
    defaults: Defaults
    groups: Mapping[str, Group]
    waves: Mapping[int, WaveSettings]
    repos: Mapping[str, Repo]
    deployments: tuple[Deployment, ...]
    index: Index = field(repr=False)
    source: LMap = field(repr=False)
    override: Target | None = None  # the command's --target: replaces every layer's

    @property
    def file(self) -> str:
        """The inventory file as named in problems."""
        return str(self.path)

    def deployment(self, name_or_id: str) -> Deployment:
        """The Deployment with this name or id; InputError with a did-you-mean otherwise."""
        position = self.index.position(name_or_id)
        if position is None:
            hint = did_you_mean(name_or_id, [d.name for d in self.deployments])
            raise InputError(f"no Deployment is named '{name_or_id}' or has that id.{hint} "
                             f"'astro-fleet inventory' lists them.")
        return self.deployments[position]

    def runner_of(self, deployment: Deployment) -> Runner:
        """The runner that builds this Deployment's image."""
        return self.runners[self.repos[deployment.repo].runner]

    def layers(self, deployment: Deployment) -> list[tuple[str, Mapping[str, Any]]]:
        """The variable layers of a Deployment, lowest precedence first."""
        return layer_order(self.defaults.vars, group_layers(self.groups, deployment.groups),
                           self.repos[deployment.repo], deployment.name, deployment.own_vars)

    def merged_view(self, name_or_id: str) -> dict[str, Any]:
        """Everything the tool knows about one Deployment, and which layer set each var."""
        d = self.deployment(name_or_id)
        repo = self.repos[d.repo]
        found = self.layers(d)
        values, sources = merge(found)
        target, target_source = self.target_of(d)
        return {
            "name": d.name,
            "id": d.id,
            "workspace_id": d.workspace_id,
            "repo": repo.name,
            "runner": repo.runner,
            "path": str(repo.path),
            "url": repo.managed.url if repo.managed else None,
            "dockerfile": repo.dockerfile,
            "template": {"name": repo.template.name, "vars": dict(repo.template.vars)}
            if repo.template else None,
            "wave": d.wave,
            "wave_source": d.wave_source,
            "target": str(target),
            "target_source": target_source,
            "groups": sorted(d.groups, key=lambda g: (self.groups[g].depth, g)),
            "layers": [label for label, _ in found],
            "vars": values,
            "var_sources": sources,
        }

    def target_of(self, deployment: Deployment) -> tuple[Target, str]:
        """The target that applies to ``deployment``, and where it comes from."""
        if self.override is not None:
            return self.override, TargetSource.FLAG
        return deployment.target, deployment.target_source

    def overridden(self, target: Target) -> Inventory:
        """This inventory with the command's ``--target`` replacing every layer's."""
        return replace(self, override=target)

    def line_of(self, *keys: Any) -> int | None:
        """Line of the deepest existing key of a path, e.g. ``line_of("control_plane", "url")``."""
        return self.source.line_of(*keys)

    def wave(self, number: int) -> WaveSettings:
        """The settings of wave ``number``; InputError naming the waves there are."""
        if number not in self.waves:
            known = ", ".join(str(n) for n in sorted(self.waves)) or "(none)"
            raise InputError(f"--wave {number}: the inventory has no wave {number}. Its waves "
                             f"are: {known}.")
        return self.waves[number]

    def select(self, wave: int | None = None, limits: Sequence[str] = ()) -> list[Deployment]:
        """Deployments in ``wave`` (all waves if None) chosen by ``limits``, in inventory order.

        Raises InputError for a malformed pattern, a pattern that matches nothing, or a
        wave the inventory does not have. An empty result is returned as an empty list.
        """
        problems = []
        terms = []
        for value in limits:
            try:
                terms.extend(parse_terms([value]))
            except InputError as exc:
                problems.append(f"--limit {exc}")
        for term in terms:
            try:
                self.index.resolve(term)
            except InputError as exc:
                problems.append(f"--limit {exc}")
        if wave is not None:
            try:
                self.wave(wave)
            except InputError as exc:
                problems.append(str(exc))
        if problems:
            raise InputError("\n".join(dict.fromkeys(problems)))
        chosen = self.index.evaluate(terms) if terms else None
        return [
            d
            for i, d in enumerate(self.deployments)
            if (chosen is None or i in chosen) and (wave is None or d.wave == wave)
        ]


def merge(layers: Iterable[tuple[str, Mapping[str, Any]]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Apply variable layers lowest first; return (values, label of the layer that set each).

    A later layer replaces a variable whole: nested mappings are not merged.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    debug = log.isEnabledFor(logging.DEBUG)
    for label, layer in layers:
        if debug and layer:
            log.debug("vars from %s: %s", label, ", ".join(map(str, layer)))
        for key, value in layer.items():
            values[key] = value
            sources[key] = label
    return values, sources


def layer_order(
    defaults: Mapping[str, Any],
    groups: list[tuple[str, Mapping[str, Any]]],
    repo: Repo,
    name: str,
    own: Mapping[str, Any],
) -> list[tuple[str, Mapping[str, Any]]]:
    """The one layer order, lowest first: defaults, groups, repo, Deployment."""
    return [("defaults", defaults), *groups, (f"repo {repo.name}", repo.vars),
            (f"deployment {name}", own)]
