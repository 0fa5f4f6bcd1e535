"""One command's session with the fleet: inventory, catalog, hosts, control plane, opened once.

A :class:`Session` is a context manager: the inventory is loaded and validated on entry
(every problem at once), the catalog, the runners' hosts and the control plane are opened
on first use, and every connection it opened is closed on exit. A control plane or a host
pool passed in (an in-process stand-in in a test) is used as given and left to its owner.
Nothing in it changes once made but the connections it caches: the targets a command
follows are a value it is given (``upgrade.plan.targets``), never a state of the session.
Everything that plans goes through :meth:`Session.decide` and :meth:`Session.preflight`, so
``plan``, ``render`` and ``upgrade`` decide with the same facts and the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from upgrade.config.inventory import Deployment, Inventory, Repo
from upgrade.config.inventory_loader import load_inventory
from upgrade.hosts.host import Host
from upgrade.model.catalog import Catalog, load_catalog
from upgrade.model.versions import RuntimeVersion
from upgrade.plan.facts import (
    DeployedFact,
    cli_problems,
    deployed_versions,
    forge_problems,
    migration_findings,
    org_airflow3_versions,
    read_dockerfiles,
    repo_problems,
)
from upgrade.plan.plan import Plan, PlanOptions, Preflight
from upgrade.plan.planner import build_plan, resolve_targets, rewrite, rewrite_or_refuse
from upgrade.plan.targets import Targets

if TYPE_CHECKING:
    from upgrade.controlplane.control_plane import ControlPlane
    from upgrade.hosts.pool import HostPool


class Session:
    """The loaded inventory plus what commands need around it (catalog, hosts, Astro)."""

    def __init__(self, inventory: Inventory, feed_override: str | None = None, *,
                 control_plane: ControlPlane | None = None, hosts: HostPool | None = None):
        self.inventory = inventory
        self.feed_override = feed_override
        # Given connections take the place of the ones opened on first use (the cached
        # properties below); their owner closes them.
        given = {"control_plane": control_plane, "hosts": hosts}
        self._given = frozenset(name for name, value in given.items() if value is not None)
        self.__dict__.update({name: given[name] for name in self._given})

    @classmethod
    def load(cls, path: str | Path, *, target: str | None = None,
             feed: str | None = None) -> Session:
        """Load and validate the inventory (every problem at once) and nothing else yet."""
        return cls(load_inventory(Path(path), target_override=target), feed)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @cached_property
    def catalog(self) -> Catalog:
        """The snapshot with the inventory's (or --feed's) runtime feed applied."""
        settings = self.inventory.catalog
        feed = self.feed_override or settings.feed
        return load_catalog(feed, mode=settings.mode, base_dir=self.inventory.root)  # type: ignore[arg-type]

    @cached_property
    def control_plane(self) -> ControlPlane:
        """The Astro control plane (or its stand-in) configured in the inventory."""
        # Imported here: httpx is needed only by commands that talk to Astro (not --offline).
        from upgrade.controlplane.control_plane import ControlPlane

        return ControlPlane(self.inventory.control_plane)

    @cached_property
    def hosts(self) -> HostPool:
        """One Host per runner: this machine, or a pooled SSH connection (opened lazily)."""
        from upgrade.hosts.pool import HostPool

        return HostPool(self.inventory)

    def host_for(self, repo: Repo) -> Host:
        """The host a repo lives on (its runner)."""
        return self.hosts.host_for(repo)

    def targets(self) -> Targets:
        """Every target spec of the inventory (or the command's --target) resolved now."""
        return resolve_targets(self.inventory, self.catalog)

    def select(self, wave: int | None, limits: Sequence[str]) -> list[Deployment]:
        """Deployments of ``wave`` chosen by ``--limit`` (same grammar everywhere)."""
        return self.inventory.select(wave, limits)

    def plan(
        self,
        deployments: Sequence[Deployment],
        *,
        targets: Targets | None = None,
        offline: bool = False,
        adopt: bool = False,
        high_water: Mapping[str, RuntimeVersion] | None = None,
    ) -> Plan:
        """:meth:`decide`, then (unless ``offline``) :meth:`preflight`."""
        plan = self.decide(deployments, targets=targets, offline=offline, adopt=adopt,
                           high_water=high_water)
        return plan if offline else self.preflight(plan)

    def decide(
        self,
        deployments: Sequence[Deployment],
        *,
        targets: Targets | None = None,
        offline: bool = False,
        adopt: bool = False,
        high_water: Mapping[str, RuntimeVersion] | None = None,
    ) -> Plan:
        """Gather the facts for ``deployments`` and decide each one.

        ``targets`` defaults to every spec resolved now (an active rollout passes its pins).
        ``offline`` asks no system anything: the Dockerfiles alone decide.
        """
        targets = targets if targets is not None else self.targets()
        # Repos given by url: cloned or fetched (all at once) before anything is read.
        self.hosts.prepare(self.inventory.repos[d.repo] for d in deployments)
        files = read_dockerfiles(self.inventory, deployments, self.host_for)
        deployed: dict[str, DeployedFact] = (
            {} if offline else deployed_versions(self.control_plane, deployments)
        )
        return build_plan(
            self.inventory,
            deployments,
            targets,
            self.catalog,
            files,
            deployed,
            high_water or {},
            PlanOptions(today=datetime.now(UTC).date(), adopt=adopt),
            org_versions=org_airflow3_versions(deployed),
        )

    def preflight(self, plan: Plan, *, gate: Sequence[str] = (),
                  accept_findings: bool = False) -> Plan:
        """``plan`` with what a run would check first (git state of each repo deployed from,
        its forge's access in pull-request mode, the astro CLI's release where a git mode
        needs the commit on its deploys, the Airflow 3 migration lint of each migrating repo,
        ``gate``: the gate's reasons) applied: a Deployment a run could not carry out now is
        ``blocked``."""
        inv = self.inventory
        deploying = plan.deploying_repos()
        repos = repo_problems(inv, deploying, self.host_for, self.planned(plan))
        # A repo whose checkout cannot be used says so first; the others' forges are asked,
        # then the CLI that deploys them.
        repos.update(forge_problems(inv, [r for r in deploying if r not in repos],
                                    self.host_for))
        repos.update(cli_problems(inv, [r for r in deploying if r not in repos],
                                  self.host_for, self._cli_version))
        return plan.with_preflight(Preflight(
            repos=repos,
            findings=migration_findings(inv, plan.migrating_repos(), self.host_for),
            gate=tuple(gate),
            accept_findings=accept_findings,
        ))

    def _cli_version(self, host: Host | None) -> tuple[int, int, int]:
        """``astro version`` of the CLI that deploys on ``host`` (None: this machine)."""
        found = self.control_plane.astro.version(host=host)
        return (found.major, found.minor, found.patch)

    def planned(self, plan: Plan) -> Callable[[Repo, str], str | None]:
        """The rewrite ``plan``'s run makes of a repo's Dockerfile text (how a killed run's
        own uncommitted write is told from a person's edit)."""
        options = plan.options or PlanOptions(today=datetime.now(UTC).date())

        def planned(repo: Repo, text: str) -> str | None:
            change = plan.repos.get(repo.name)
            if change is None or change.target is None:
                return None
            return rewrite(self.inventory, repo, text, change.target, self.catalog, options)

        return planned

    def rewriter(self, plan: Plan, repo: Repo) -> Callable[[str], str]:
        """The rewrite ``plan``'s run makes of ``repo``'s Dockerfile text (the text itself
        when it is at the target), raising DockerfileError or TemplateError when it would
        not write one: for a text read from the remote during the run, not planned from."""
        options = plan.options or PlanOptions(today=datetime.now(UTC).date())
        change = plan.repos.get(repo.name)
        target = change.target if change is not None else None

        def rewritten(text: str) -> str:
            if target is None:
                return text
            return rewrite_or_refuse(self.inventory, repo, text, target, self.catalog, options)

        return rewritten

    def close(self) -> None:
        """Release the pooled connections it opened (HTTP to Airflow, SSH to runners)."""
        if "control_plane" in self.__dict__ and "control_plane" not in self._given:
            self.control_plane.close()
        if "hosts" in self.__dict__ and "hosts" not in self._given:
            self.hosts.close()
