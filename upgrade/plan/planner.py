"""Make the plan: pick each Deployment's target, decide, and write each repo's Dockerfile.

Pure: it takes the facts gathered beforehand (``upgrade.plan.facts``: Dockerfile texts,
deployed versions, the journal's high-water marks) as plain data and decides; it touches no
repo, host or API. The order matters and is the one a reader would follow by hand:

1. each repo's Dockerfile is read for its current Runtime (or why it cannot be);
2. each Deployment's line comes from what runs now (Astro's answer, else the Dockerfile),
   and its target is its target's spec for that line (``upgrade.config.targets``);
3. a repo is rewritten to the one target its Deployments share (two targets for one
   Dockerfile is an input error naming both);
4. the policy decides each Deployment (``upgrade.plan.policy``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from upgrade.config.inventory import Deployment, Inventory, Repo
from upgrade.config.targets import AIRFLOW2, AIRFLOW3, LINE_NAMES, Target, TargetSource, line_of
from upgrade.errors import DockerfileError, TemplateError, UnknownVersion
from upgrade.model.catalog import Catalog, Resolution
from upgrade.model.dockerfile import BaseImage, find_base_image, retarget
from upgrade.model.image import CANONICAL_REPOSITORY, ImageRef, parse_image
from upgrade.model.versions import RuntimeVersion, VersionSpec, parse_spec
from upgrade.plan.facts import DeployedFact, RepoFile
from upgrade.plan.plan import Plan, PlannedDeployment, PlanOptions, RepoChange
from upgrade.plan.policy import Facts, PolicyOptions, decide
from upgrade.plan.targets import Targets

# Templates (and jinja2) are imported when a template-managed repo is planned.
if TYPE_CHECKING:
    from upgrade.model.template import RuntimeContext


def resolve_targets(inventory: Inventory, catalog: Catalog) -> Targets:
    """Every target spec the inventory's Deployments use (or the command's ``--target``),
    resolved now: a rollout started with them pins this whole map."""
    specs: dict[str, tuple[VersionSpec, str]] = {}
    seen: set[int] = set()
    for dep in inventory.deployments:
        target, source = inventory.target_of(dep)
        if id(target) in seen:  # one Target object per layer that writes one
            continue
        seen.add(id(target))
        for spec in target.specs.values():
            specs.setdefault(str(spec), (spec, source))
    resolutions = {text: catalog.resolve(spec, source=target_where(inventory, source))
                   for text, (spec, source) in specs.items()}
    if inventory.override is None:
        return Targets(resolutions, TargetSource.INVENTORY)
    return Targets(resolutions, TargetSource.FLAG, inventory.override, TargetSource.FLAG)


def resolve_pinned(catalog: Catalog, pinned: Mapping[str, RuntimeVersion], *,
                   pinned_by: str) -> dict[str, Resolution]:
    """A rollout's pin map (spec → version) resolved, whatever the inventory says now: a
    spec it does not hold is left out, and the plan refuses its Deployments."""
    resolved: dict[str, Resolution] = {}
    for text, version in pinned.items():
        release = catalog.get(version)
        if release is None:
            raise UnknownVersion(
                f"{pinned_by} pinned '{text}' to {version}, which the catalog no longer lists. "
                "Use the feed the rollout started with, or abandon the rollout.")
        exact = catalog.resolve(str(version), source=f"{pinned_by} ('{text}')")
        resolved[text] = Resolution(parse_spec(text), release, exact.warnings)
    return resolved


def target_where(inventory: Inventory, source: str) -> str:
    """``inventory.yaml:LINE: groups.G.target`` for a target's source label."""
    if source == TargetSource.FLAG:
        return TargetSource.FLAG.value
    kind, _, name = source.partition(" ")
    keys: tuple = {"inventory": ("target",), "group": ("groups", name, "target"),
                   "repo": ("repos", name, "target")}.get(kind, ("repos",))
    path = ".".join(str(k) for k in keys) if kind != "deployment" else f"{name}: target"
    return f"{inventory.file}:{inventory.line_of(*keys)}: {path}"


def build_plan(
    inventory: Inventory,
    selected: Iterable[Deployment],
    targets: Targets,
    catalog: Catalog,
    files: Mapping[str, RepoFile],
    deployed: Mapping[str, DeployedFact],
    high_water: Mapping[str, RuntimeVersion],
    options: PlanOptions,
    org_versions: frozenset[RuntimeVersion] = frozenset(),
) -> Plan:
    """Decide every selected Deployment from gathered facts; pure."""
    selected = list(selected)
    shown = {name: display_path(inventory, inventory.repos[name])
             for name in dict.fromkeys(d.repo for d in selected)}
    bases = {name: _base(inventory, inventory.repos[name], path, files.get(name))
             for name, path in shown.items()}
    chosen = {d.id: _choose(*targets.target_of(d), d, deployed.get(d.id, DeployedFact(None)),
                            bases[d.repo][0], targets.resolutions) for d in selected}
    by_repo: dict[str, list[Choice]] = {name: [] for name in bases}
    for d in selected:
        by_repo[d.repo].append(chosen[d.id])
    repos = {name: replace(_repo_change(inventory, inventory.repos[name], shown[name],
                                        files.get(name), base, error, by_repo[name], catalog,
                                        options), in_repo=inventory.repos[name].dockerfile)
             for name, (base, error) in bases.items()}
    planned = [_decide(d, repos[d.repo], deployed.get(d.id, DeployedFact(None)), chosen[d.id],
                       high_water, catalog, options, org_versions) for d in selected]
    return Plan(dict(targets.resolutions), tuple(planned), repos, options=options)


# (spec, resolution, line now) when targeted; (None, why not, line now) otherwise.
Choice = tuple[str | None, Resolution | str, str | None]


def _choose(target: Target, source: str, dep: Deployment, fact: DeployedFact,
            base: BaseImage | None, targets: Mapping[str, Resolution]) -> Choice:
    """The target spec that applies to ``dep`` on the line it is on now."""
    current = fact.version or (base.version if base is not None else None)
    line = line_of(current) if current is not None else None
    if line is None:  # the plan refuses it for the missing fact; any spec will do
        spec = target.for_line(AIRFLOW2) or target.for_line(AIRFLOW3)
    else:
        spec = target.for_line(line)
        if spec is None and line == AIRFLOW2 and _truthy(dep.vars.get("allow_airflow3")):
            spec = target.for_line(AIRFLOW3)  # a migration, if the policy allows it
    if spec is None and line is None:
        return None, "its target names no Runtime line", None
    if spec is None:
        assert line is not None
        named = ", ".join(f"{LINE_NAMES[ln]} {s}" for ln, s in target.specs.items()) or "none"
        hint = (" (set allow_airflow3: true to migrate it)"
                if line == AIRFLOW2 and target.for_line(AIRFLOW3) else "")
        return None, (f"on {LINE_NAMES[line]} (Runtime {current}), which its target "
                      f"({named}; from {source}) does not name{hint}"), line
    if str(spec) not in targets:  # only with an active rollout's pins
        pins = ", ".join(f"'{s}' → {r.version}" for s, r in targets.items())
        return str(spec), (f"its target '{spec}' (from {source}) is not one the active rollout "
                           f"pinned ({pins}). Finish or abandon that rollout to change "
                           "targets."), line
    return str(spec), targets[str(spec)], line


def _base(inventory: Inventory, repo: Repo, shown: str, file: RepoFile | None
          ) -> tuple[BaseImage | None, str | None]:
    """The Dockerfile's Astro base image, or why it cannot be read (``shown``: its path)."""
    if file is not None and file.in_inventory:
        where = f"{inventory.file}:{repo.line}: " if repo.line else ""
        return None, f"{where}repos.{repo.name}: {file.error}"
    if file is None or file.text is None:
        at = f"{shown}:{file.line}" if file is not None and file.line else shown
        return None, (file.error if file is not None and file.blocked
                      else f"{at}: {file.error if file is not None else 'not read'}")
    try:
        return find_base_image(file.text, path=shown), None
    except DockerfileError as exc:
        return None, str(exc)


def _repo_change(
    inventory: Inventory,
    repo: Repo,
    shown: str,
    file: RepoFile | None,
    base: BaseImage | None,
    error: str | None,
    choices: list[Choice],
    catalog: Catalog,
    options: PlanOptions,
) -> RepoChange:
    text = file.text if file is not None else None
    if base is None:
        return RepoChange(repo.name, shown, None, text, None, error=error or "not read",
                          blocked=file.blocked if file is not None else None)  # type: ignore[arg-type]
    line = base.edit_line
    wanted = {r.version: spec for spec, r, _ in choices if spec is not None
              and not isinstance(r, str)}
    if len(wanted) > 1:
        both = ", ".join(f"{spec} → {v}" for v, spec in sorted(wanted.items()))
        return RepoChange(repo.name, shown, base.version, text, None, line=line, error=(
            f"{shown}:{line}: its Deployments have different targets ({both}), but one Dockerfile "
            "holds one Runtime. Give the repo's Deployments one target."))
    if not wanted:
        return RepoChange(repo.name, shown, base.version, text, None, line=line)
    target = next(iter(wanted))
    assert text is not None
    if base.version > target:
        # The policy refuses each Deployment with the reason; nothing to write.
        return RepoChange(repo.name, shown, base.version, text, None, target=target, line=line)
    try:
        new_text = _rewrite(inventory, repo, shown, text, base, target, catalog, options)
    except (DockerfileError, TemplateError) as exc:
        return RepoChange(repo.name, shown, None, text, None, error=str(exc))
    return RepoChange(repo.name, shown, base.version, text, new_text, target=target, line=line)


def _rewrite(inventory: Inventory, repo: Repo, shown: str, text: str, base: BaseImage,
             target: RuntimeVersion, catalog: Catalog, options: PlanOptions) -> str:
    if repo.template is None:
        return retarget(text, target, path=shown, base=base)
    return _render_managed(inventory, repo, text, base, target, catalog, options, shown)


def rewrite(inventory: Inventory, repo: Repo, text: str, target: RuntimeVersion,
            catalog: Catalog, options: PlanOptions) -> str | None:
    """What a run writes over ``text`` to pin ``target`` (None when it would not write:
    unreadable, hand-edited, or already past the target); pure."""
    try:
        return rewrite_or_refuse(inventory, repo, text, target, catalog, options)
    except (DockerfileError, TemplateError):
        return None


def rewrite_or_refuse(inventory: Inventory, repo: Repo, text: str, target: RuntimeVersion,
                      catalog: Catalog, options: PlanOptions) -> str:
    """What a run writes over ``text`` to pin ``target`` (``text`` itself when it is there
    already); DockerfileError or TemplateError saying why it would not write; pure."""
    shown = display_path(inventory, repo)
    base = find_base_image(text, path=shown)
    if base.version > target:
        raise DockerfileError(f"{shown}:{base.edit_line}: it holds {base.version}, newer than "
                              f"the target {target}; rewriting it would lower it.")
    return _rewrite(inventory, repo, shown, text, base, target, catalog, options)


def _decide(
    dep: Deployment,
    change: RepoChange,
    fact: DeployedFact,
    choice: Choice,
    high_water: Mapping[str, RuntimeVersion],
    catalog: Catalog,
    options: PlanOptions,
    org_versions: frozenset[RuntimeVersion],
) -> PlannedDeployment:
    spec, found, line = choice
    resolution = found if not isinstance(found, str) else None
    target = resolution.version if resolution is not None else None
    common = dict(spec=spec, line=line, deployed=fact.version)
    if change.error is not None:
        return PlannedDeployment(dep, change, target, "blocked" if change.blocked else "refuse",
                                 change.error, refusal=change.blocked or "input",
                                 **common)  # type: ignore[arg-type]
    if fact.error is not None:
        return PlannedDeployment(dep, change, target, "refuse", fact.error, current=change.current,
                                 refusal="input", **common)  # type: ignore[arg-type]
    facts = Facts(deployed=fact.version, dockerfile=change.current,
                  high_water=high_water.get(dep.id),
                  dockerfile_at=f"{change.dockerfile}:{change.line}" if change.line else None)
    if target is None:
        assert isinstance(found, str)
        if spec is not None:  # a target the active rollout did not pin
            return PlannedDeployment(dep, change, None, "refuse", found, current=facts.current,
                                     refusal="policy", **common)  # type: ignore[arg-type]
        return PlannedDeployment(dep, change, None, "not_targeted", found,
                                 current=facts.current, **common)  # type: ignore[arg-type]
    decision = decide(facts, target, catalog, _policy_options(dep, options, org_versions))
    return PlannedDeployment(
        dep, change, target, decision.action, decision.reason, current=facts.current,
        refusal="policy" if decision.action == "refuse" else None,
        warnings=decision.warnings, **common,  # type: ignore[arg-type]
    )


def _policy_options(
    dep: Deployment, options: PlanOptions, org_versions: frozenset[RuntimeVersion]
) -> PolicyOptions:
    return PolicyOptions(
        today=options.today,
        allow_airflow3=_truthy(dep.vars.get("allow_airflow3")),
        allow_end_of_maintenance=_truthy(dep.vars.get("allow_end_of_maintenance")),
        org_versions=org_versions,
    )


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "yes", "1"))


def _render_managed(
    inventory: Inventory,
    repo: Repo,
    text: str,
    base: BaseImage,
    target: RuntimeVersion,
    catalog: Catalog,
    options: PlanOptions,
    shown: str,
) -> str:
    from upgrade.model.template import render_template, template_drift

    assert repo.template is not None
    template = repo.template

    def render(version: RuntimeVersion) -> str:
        try:
            return render_template(
                inventory.templates.path,
                template.name,
                runtime=runtime_context(version, catalog, base.image),
                vars=dict(template.vars),
            )
        except TemplateError as exc:
            # The inventory line that chose the template and its vars comes first: that is
            # where a wrong var is fixed; the template's own line follows.
            if not template.where:
                raise
            raise TemplateError(f"{template.where}: rendering this repo's template failed: "
                                f"{exc}") from None

    current = base.version
    at_current = render(current)
    drift = template_drift(text, at_current, path=shown)
    if drift and not options.adopt:
        raise DockerfileError(
            f"{shown}:{_first_difference(text, at_current)}: hand-edited: from this line "
            f"on it no longer matches what templates/{template.name} "
            f"renders at {current}. Move the edit into the template or its vars, or run with "
            f"--adopt to overwrite it.\n{drift}"
        )
    return render(target)


def _first_difference(one: str, other: str) -> int:
    """The 1-based line where two texts first differ."""
    ones, others = one.split("\n"), other.split("\n")
    return next((i + 1 for i, (a, b) in enumerate(zip(ones, others, strict=False)) if a != b),
                min(len(ones), len(others)) + 1)


def runtime_context(
    version: RuntimeVersion, catalog: Catalog, current: ImageRef | None = None
) -> RuntimeContext:
    """What a template sees as ``runtime``: ``current``'s image (variants kept) at ``version``."""
    from upgrade.model.template import RuntimeContext

    release = catalog.get(version)
    image = (
        current.retarget(version)
        if current is not None
        else parse_image(f"{CANONICAL_REPOSITORY[version.scheme]}:{version}")
    )
    return RuntimeContext.from_image(
        image,
        airflow=release.airflow if release else None,
        python=release.python if release else None,
    )


def display_path(inventory: Inventory, repo: Repo) -> str:
    """The repo's Dockerfile as messages show it: relative to the inventory when inside."""
    path = repo.path / repo.dockerfile
    try:
        return str(path.relative_to(inventory.root))
    except ValueError:
        return str(path)
