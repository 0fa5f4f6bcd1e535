"""The fleet inventory: repos, the Deployments they feed, groups, runners and waves.

``load_inventory`` reads ``inventory.yaml`` once, validates all of it and reports every
problem at once (``InventoryError``); after that the model is plain frozen data and
nothing here touches the disk again. The schema, the variable layering and the wave
precedence are documented in docs/inventory.md; the short version:

* Variables, lowest to highest: ``defaults.vars`` → each group the Deployment is in
  (shallower groups first, so a parent before its children; alphabetical at the same
  depth) → the repo's ``vars`` → the Deployment's ``vars``. A later layer replaces a
  variable whole (no deep merge), as in Ansible.
* Wave: the Deployment's own ``wave``; else the first ``waves.N.match`` (ascending N)
  that selects it; else the lowest ``wave`` among its groups (ancestors included).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any

from upgrade.config.checker import Checker, did_you_mean
from upgrade.config.located import (
    FLOAT,
    INT,
    STR,
    LMap,
    Located,
    LScalar,
    LSeq,
    join,
    load,
    paused_gc,
)
from upgrade.config.selection import ALL, Index, parse_terms
from upgrade.errors import InputError, InventoryError, Problem, VersionError
from upgrade.model.versions import VersionSpec, parse_spec

log = logging.getLogger(__name__)

LOCAL = "local"  # the implicit runner: this machine
DEFAULT_JOURNAL = ".upgrade"
DEFAULT_DOCKERFILE = "Dockerfile"
DEFAULT_PARALLEL = 4  # builds at once per runner when the inventory does not say
KNOWN_HOSTS = ("strict", "accept-new", "ignore")
CATALOG_MODES = ("extend", "replace")

TOP_KEYS = ("target", "catalog", "control_plane", "journal", "notifications", "runners",
            "defaults", "groups", "waves", "repos")
CATALOG_KEYS = ("feed", "mode")
RUNNER_KEYS = ("host", "port", "user", "key_file", "known_hosts", "known_hosts_file", "parallel")
DEFAULTS_KEYS = ("vars", "runner", "dockerfile")
GROUP_KEYS = ("children", "vars", "wave")
WAVE_KEYS = ("match", "parallel", "batch", "max_fail_percentage", "max_failures", "soak",
             "approval", "verify")
REPO_KEYS = ("path", "dockerfile", "template", "runner", "groups", "vars", "deployments")
TEMPLATE_KEYS = ("name", "vars")
DEPLOYMENT_KEYS = ("id", "name", "workspace_id", "wave", "groups", "vars")

_PERCENT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%\s*")
_URL = re.compile(r"^https?://", re.IGNORECASE)


@dataclass(frozen=True)
class CatalogSettings:
    """Where the runtime catalog comes from: the packaged snapshot, extended or replaced."""

    feed: str | None = None  # absolute file path or http(s) URL
    mode: str = "extend"  # extend | replace

    @property
    def is_url(self) -> bool:
        """True when the feed is fetched over HTTP(S)."""
        return bool(self.feed and _URL.match(self.feed))


@dataclass(frozen=True)
class Runner:
    """Where a repo's image is built: this machine, or a build host over SSH."""

    name: str
    host: str | None = None  # None for the local runner
    port: int = 22
    user: str | None = None
    key_file: Path | None = None
    known_hosts: str = "strict"
    known_hosts_file: Path | None = None  # None: ~/.ssh/known_hosts
    parallel: int = DEFAULT_PARALLEL

    @property
    def is_local(self) -> bool:
        """True for the implicit ``local`` runner."""
        return self.host is None


@dataclass(frozen=True)
class Group:
    """A named set of Deployments; ``children`` nest, ``depth`` is 0 for top-level groups."""

    name: str
    children: tuple[str, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=dict, hash=False)
    wave: int | None = None
    depth: int = 0
    line: int | None = None


@dataclass(frozen=True)
class WaveSettings:
    """How one wave rolls out; defaults apply to waves used but not listed in ``waves:``."""

    number: int
    match: tuple[str, ...] = ()
    parallel: int | None = None  # None: only the runners' limits apply
    batch: tuple[int | str, ...] = ()  # Ansible serial: ints and "N%"; () = one batch
    max_fail_percentage: float | None = None
    max_failures: int | None = None
    soak_seconds: int = 0
    approval: bool = False
    verify: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def batch_sizes(self, total: int) -> list[int]:
        """Successive batch sizes for ``total`` Deployments (Ansible ``serial`` semantics).

        A percentage is of the whole wave, rounded down, at least 1; the last entry of a
        list repeats until the wave is exhausted.
        """
        if not self.batch:
            return [total] if total > 0 else []
        sizes: list[int] = []
        left, i = total, 0
        while left > 0:
            spec = self.batch[i]
            size = spec if isinstance(spec, int) else max(1, int(Decimal(spec[:-1]) * total / 100))
            sizes.append(min(size, left))
            left -= sizes[-1]
            i = min(i + 1, len(self.batch) - 1)
        return sizes


@dataclass(frozen=True)
class TemplateRef:
    """A template-managed repo's Dockerfile template (a file in templates/) and its vars."""

    name: str
    vars: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Repo:
    """An Astro project repository; ``path`` is absolute for the local runner."""

    name: str
    path: Path
    dockerfile: str  # relative to path
    template: TemplateRef | None
    runner: str
    groups: tuple[str, ...]
    vars: Mapping[str, Any] = field(hash=False)
    line: int | None = None

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


@dataclass(frozen=True)
class Defaults:
    """The ``defaults:`` section."""

    vars: Mapping[str, Any] = field(default_factory=dict, hash=False)
    runner: str = LOCAL
    dockerfile: str = DEFAULT_DOCKERFILE


@dataclass(frozen=True, eq=False)
class Inventory:
    """The whole validated fleet; plain data, no I/O."""

    path: Path
    root: Path  # directory relative paths are resolved against
    target: VersionSpec
    target_source: str  # "inventory" or "--target"
    catalog: CatalogSettings
    journal: Path
    control_plane: Mapping[str, Any]
    notifications: Mapping[str, Any]
    runners: Mapping[str, Runner]
    defaults: Defaults
    groups: Mapping[str, Group]
    waves: Mapping[int, WaveSettings]
    repos: Mapping[str, Repo]
    deployments: tuple[Deployment, ...]
    index: Index = field(repr=False)
    source: LMap = field(repr=False)

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
                             f"'invoke inventory' lists them.")
        return self.deployments[position]

    def runner_of(self, deployment: Deployment) -> Runner:
        """The runner that builds this Deployment's image."""
        return self.runners[self.repos[deployment.repo].runner]

    def layers(self, deployment: Deployment) -> list[tuple[str, Mapping[str, Any]]]:
        """The variable layers of a Deployment, lowest precedence first."""
        return _layers(self.defaults.vars, _group_layers(self.groups, deployment.groups),
                       self.repos[deployment.repo], deployment.name, deployment.own_vars)

    def merged_view(self, name_or_id: str) -> dict[str, Any]:
        """Everything the tool knows about one Deployment, and which layer set each var."""
        d = self.deployment(name_or_id)
        repo = self.repos[d.repo]
        layers = self.layers(d)
        values, sources = merge(layers)
        return {
            "name": d.name,
            "id": d.id,
            "workspace_id": d.workspace_id,
            "repo": repo.name,
            "runner": repo.runner,
            "path": str(repo.path),
            "dockerfile": repo.dockerfile,
            "template": {"name": repo.template.name, "vars": dict(repo.template.vars)}
            if repo.template else None,
            "wave": d.wave,
            "wave_source": d.wave_source,
            "groups": sorted(d.groups, key=lambda g: (self.groups[g].depth, g)),
            "layers": [label for label, _ in layers],
            "vars": values,
            "var_sources": sources,
        }

    @property
    def control_plane_lines(self) -> dict[str, int]:
        """Line of each key of ``control_plane:`` (for ControlPlaneConfig.from_mapping)."""
        return self.key_lines("control_plane")

    def key_lines(self, *keys: Any) -> dict[str, int]:
        """Line of each key of the mapping at a key path; empty if there is none."""
        node: Located | None = self.source
        for key in keys:
            node = node.get(key) if isinstance(node, LMap) else None
        if not isinstance(node, LMap):
            return {}
        return {str(k): node.key_line(k) for k in node}

    def line_of(self, *keys: Any) -> int | None:
        """Line of the deepest existing key of a path, e.g. ``line_of("control_plane", "url")``."""
        return self.source.line_of(*keys)

    def problem(self, keys: Iterable[Any], message: str) -> Problem:
        """A Problem located at a key path, for sections validated by other modules."""
        keys = tuple(keys)
        path, node = "", self.source
        for key in keys:
            if isinstance(node, LSeq):
                path = f"{path}[{key}]"
                ok = isinstance(key, int) and 0 <= key < len(node)
                node = node.items[key] if ok else None
            else:
                path = join(path, key)
                node = node.get(key) if isinstance(node, LMap) else None
        return Problem(self.file, self.line_of(*keys), path, message)


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


def _layers(
    defaults: Mapping[str, Any],
    group_layers: list[tuple[str, Mapping[str, Any]]],
    repo: Repo,
    name: str,
    own: Mapping[str, Any],
) -> list[tuple[str, Mapping[str, Any]]]:
    """The one layer order, lowest first: defaults, groups, repo, Deployment."""
    return [("defaults", defaults), *group_layers, (f"repo {repo.name}", repo.vars),
            (f"deployment {name}", own)]


def _group_layers(
    groups: Mapping[str, Group], member_of: Iterable[str]
) -> list[tuple[str, Mapping[str, Any]]]:
    """Group layers in precedence order: shallower first, then by name."""
    ordered = sorted(member_of, key=lambda g: (groups[g].depth, g))
    return [(f"group {g}", groups[g].vars) for g in ordered]


def load_inventory(path: Path, *, target_override: str | None = None) -> Inventory:
    """Load and validate an inventory file; raise InventoryError listing every problem.

    ``target_override`` (the ``--target`` flag) replaces the file's ``target``; an invalid
    one raises VersionError naming the flag.
    """
    override = None
    if target_override is not None:
        override = parse_spec(target_override, source="--target")
    path = Path(path)
    with paused_gc():
        root = load(path, error=InventoryError)
        return _Loader(path, root).build(override)


@dataclass(slots=True)
class _Draft:
    """A Deployment while loading: before waves, groups and vars are settled."""

    id: str | None
    name: str | None
    workspace_id: str | None
    repo: str
    wave: int | None
    direct_groups: list[str]
    vars: dict[str, Any]
    line: int
    path: str
    node: LMap
    unknown_group: bool


class _Loader:
    """Walks the located tree once, collecting every problem in a Checker."""

    def __init__(self, path: Path, root: Located) -> None:
        self.path = path
        self.dir = os.path.abspath(path.parent)
        self.tree = root
        self.c = Checker(str(path))
        self.children: dict[str, list[tuple[str, int]]] = {}
        self.parents: dict[str, list[str]] = {}
        self.match_where: dict[int, list[tuple[int, str]]] = {}  # line, key path per pattern
        self.broken_rules = False  # a bad waves.N.match: "no wave" problems may be its echo

    def resolve(self, text: str) -> Path:
        """A local path: ``~`` expanded, relative ones against the inventory's directory."""
        return Path(self.resolve_str(text))

    def resolve_str(self, text: str) -> str:
        """``resolve`` as a string."""
        return os.path.normpath(os.path.join(self.dir, os.path.expanduser(text)))

    def build(self, override: VersionSpec | None) -> Inventory:
        c, top = self.c, self.tree
        if not isinstance(top, LMap):
            if isinstance(top, LScalar) and top.value is None:
                message = ("the file is empty. An inventory needs at least 'target' and 'repos'; "
                           "see docs/inventory.md.")
            else:
                message = f"the top level must be a mapping (target, repos, ...), got {top.kind}."
            raise InventoryError([Problem(c.file, top.line, "", message)])
        c.keys(top, TOP_KEYS, "", required=("repos",))
        target = self.target(top, override)
        catalog = self.catalog(top)
        journal = self.resolve(c.string(top, "journal", "", default=DEFAULT_JOURNAL) or "")
        control_plane = c.mapping(top, "control_plane", "")
        notifications = c.mapping(top, "notifications", "")
        runners = self.runners(top)
        defaults = self.defaults(top, runners)
        groups = self.groups(top)
        waves = self.waves(top)
        repos, drafts = self.repos(top, defaults, runners, groups)
        self.check_names(groups, repos, drafts)
        closure = self.closure_of(groups)
        member_of = [closure(tuple(d.direct_groups)) for d in drafts]
        index = self.index(drafts, member_of, groups, repos)
        rules = self.rules(waves, index)
        deployments = self.settle(drafts, member_of, rules, groups, defaults, repos)
        c.raise_if_any(InventoryError)
        # Every Deployment left out of the model was reported, so positions still line up.
        assert len(deployments) == index.size
        for d in deployments:
            waves.setdefault(d.wave, WaveSettings(d.wave))
        assert target is not None  # a missing target is a recorded problem
        return Inventory(
            path=self.path,
            root=Path(self.dir),
            target=target,
            target_source="--target" if override else "inventory",
            catalog=catalog,
            journal=journal,
            control_plane=control_plane.plain() if control_plane else {},
            notifications=notifications.plain() if notifications else {},
            runners=runners,
            defaults=defaults,
            groups=groups,
            waves=dict(sorted(waves.items())),
            repos=repos,
            deployments=tuple(deployments),
            index=index,
            source=top,
        )

    # -- top-level settings -------------------------------------------------------------

    def target(self, top: LMap, override: VersionSpec | None) -> VersionSpec | None:
        node, line = top.get("target"), top.key_line("target")
        if node is None:
            if override is None:
                self.c.add(line, "target", 'required key is missing. Add e.g. target: "12.4", '
                           "or pass --target.")
            return override
        text = None
        if isinstance(node, LScalar) and node.value is not None and node.tag in (STR, INT, FLOAT):
            # The text as written: unquoted 12.10 would otherwise read as the float 12.1.
            text = node.value if node.tag == STR else node.text
        if text is None:
            self.c.add(line, "target", f'must be a version spec such as "12.4", got {node.kind}.')
            return override
        try:
            spec = parse_spec(text)
        except VersionError as exc:
            self.c.add(line, "target", str(exc))
            return override
        return override or spec

    def catalog(self, top: LMap) -> CatalogSettings:
        c = self.c
        m = c.mapping(top, "catalog", "")
        if m is None:
            return CatalogSettings()
        c.keys(m, CATALOG_KEYS, "catalog")
        feed = c.string(m, "feed", "catalog")
        mode = c.string(m, "mode", "catalog", default="extend") or "extend"
        if mode not in CATALOG_MODES:
            hint = did_you_mean(mode, CATALOG_MODES)
            c.add(m.key_line("mode"), "catalog.mode",
                  f"must be 'extend' or 'replace', got '{mode}'.{hint}")
        if feed is None:
            if mode == "replace":
                c.add(m.key_line("mode"), "catalog.mode",
                      "'replace' needs a feed to replace the packaged catalog with. "
                      "Set catalog.feed or use mode: extend.")
            return CatalogSettings(None, mode)
        if _URL.match(feed):
            return CatalogSettings(feed, mode)
        if "://" in feed:
            c.add(m.key_line("feed"), "catalog.feed",
                  f"'{feed}' is not supported. Use an http(s) URL or a file path.")
            return CatalogSettings(None, mode)
        local = self.resolve(feed)
        if not local.is_file():
            c.add(m.key_line("feed"), "catalog.feed",
                  f"file '{local}' does not exist. Fix the path (relative paths start at the "
                  "inventory's directory) or use an http(s) URL.")
        return CatalogSettings(str(local), mode)

    def runners(self, top: LMap) -> dict[str, Runner]:
        c = self.c
        runners = {LOCAL: Runner(LOCAL)}
        m = c.mapping(top, "runners", "")
        for name, node in (m.items() if m else ()):
            path, line = join("runners", name), m.key_line(name)  # type: ignore[union-attr]
            if not self.name_ok(name, path, line) or not c.expect(node, LMap, path, line):
                continue
            assert isinstance(node, LMap)
            if name == LOCAL:
                # The local runner is this machine; only its parallelism can be tuned.
                c.keys(node, ("parallel",), path)
                parallel = c.integer(node, "parallel", path, default=DEFAULT_PARALLEL, minimum=1)
                runners[LOCAL] = Runner(LOCAL, parallel=parallel or DEFAULT_PARALLEL)
                continue
            c.keys(node, RUNNER_KEYS, path, required=("host",))
            known = c.string(node, "known_hosts", path, default="strict") or "strict"
            if known not in KNOWN_HOSTS:
                c.add(node.key_line("known_hosts"), join(path, "known_hosts"),
                      f"must be one of {', '.join(KNOWN_HOSTS)}, got '{known}'.")
            key_file = c.string(node, "key_file", path)
            known_file = c.string(node, "known_hosts_file", path)
            runners[name] = Runner(
                name=name,
                host=c.string(node, "host", path) or "",
                port=c.integer(node, "port", path, default=22, minimum=1, maximum=65535) or 22,
                user=c.string(node, "user", path),
                key_file=self.resolve(key_file) if key_file else None,
                known_hosts=known,
                known_hosts_file=self.resolve(known_file) if known_file else None,
                parallel=c.integer(node, "parallel", path, default=DEFAULT_PARALLEL, minimum=1)
                or DEFAULT_PARALLEL,
            )
        return runners

    def defaults(self, top: LMap, runners: Mapping[str, Runner]) -> Defaults:
        c = self.c
        m = c.mapping(top, "defaults", "")
        if m is None:
            return Defaults()
        c.keys(m, DEFAULTS_KEYS, "defaults")
        runner = c.string(m, "runner", "defaults", default=LOCAL) or LOCAL
        self.check_runner(runner, m.key_line("runner"), "defaults.runner", runners)
        return Defaults(
            vars=c.vars(m, "vars", "defaults"),
            runner=runner,
            dockerfile=self.dockerfile(m, "defaults", DEFAULT_DOCKERFILE),
        )

    def groups(self, top: LMap) -> dict[str, Group]:
        c = self.c
        m = c.mapping(top, "groups", "")
        groups: dict[str, Group] = {}
        for name, node in (m.items() if m else ()):
            path, line = join("groups", name), m.key_line(name)  # type: ignore[union-attr]
            if not self.name_ok(name, path, line):
                continue
            if isinstance(node, LScalar) and node.value is None:
                groups[name] = Group(name, line=line)  # declared, no settings
                self.children[name] = []
                continue
            if not c.expect(node, LMap, path, line):
                continue
            assert isinstance(node, LMap)
            c.keys(node, GROUP_KEYS, path)
            children = c.strings(node, "children", path)
            self.children[name] = children
            groups[name] = Group(
                name=name,
                children=tuple(child for child, _ in children),
                vars=c.vars(node, "vars", path),
                wave=c.integer(node, "wave", path, minimum=1),
                line=line,
            )
        for name, children in self.children.items():
            for child, line in children:
                self.check_group(child, line, f"groups.{name}.children", groups)
        return self.with_depths(groups, m)

    def with_depths(self, groups: dict[str, Group], m: LMap | None) -> dict[str, Group]:
        """Report group cycles; return the groups with their depth (longest parent chain)."""
        kids = {g: [ch for ch in groups[g].children if ch in groups] for g in groups}
        parents: dict[str, list[str]] = {g: [] for g in groups}
        for g, chs in kids.items():
            for ch in chs:
                parents[ch].append(g)
        self.parents = parents
        cycles: set[tuple[str, ...]] = set()
        state: dict[str, int] = {}  # 1 visiting, 2 done
        stack: list[str] = []

        def visit(g: str) -> None:
            state[g] = 1
            stack.append(g)
            for ch in kids[g]:
                if state.get(ch) == 1:
                    cycle = stack[stack.index(ch):]
                    start = cycle.index(min(cycle))
                    cycles.add(tuple(cycle[start:] + cycle[:start]))
                elif ch not in state:
                    visit(ch)
            stack.pop()
            state[g] = 2

        for g in sorted(groups):
            if g not in state:
                visit(g)
        for cycle in sorted(cycles):
            first = cycle[0]
            line = m.get(first).key_line("children") if m else None  # type: ignore[union-attr]
            self.c.add(line, f"groups.{first}.children",
                       f"groups form a cycle: {' -> '.join((*cycle, first))}. "
                       "Remove one of these children.")
        depth: dict[str, int] = {}

        def depth_of(g: str, active: frozenset[str]) -> int:
            if g not in depth:
                depth[g] = max((depth_of(p, active | {g}) + 1 for p in parents[g]
                                if p not in active and p != g), default=0)
            return depth[g]

        return {g: replace(group, depth=depth_of(g, frozenset())) for g, group in groups.items()}

    def waves(self, top: LMap) -> dict[int, WaveSettings]:
        c = self.c
        m = c.mapping(top, "waves", "")
        waves: dict[int, WaveSettings] = {}
        for number, node in (m.items() if m else ()):
            path, line = join("waves", number), m.key_line(number)  # type: ignore[union-attr]
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                c.add(line, path, "wave numbers must be positive integers (1, 2, 3, ...). "
                      "Renumber this wave.")
                continue
            if isinstance(node, LScalar) and node.value is None:
                waves[number] = WaveSettings(number)
                continue
            if not c.expect(node, LMap, path, line):
                continue
            assert isinstance(node, LMap)
            c.keys(node, WAVE_KEYS, path)
            match = self.match(node, path)
            self.match_where[number] = [(ln, where) for _, ln, where in match]
            verify = c.mapping(node, "verify", path)
            waves[number] = WaveSettings(
                number=number,
                match=tuple(text for text, _, _ in match),
                parallel=c.integer(node, "parallel", path, minimum=1),
                batch=self.batch(node, path),
                max_fail_percentage=c.number(node, "max_fail_percentage", path,
                                             minimum=0, maximum=100),
                max_failures=c.integer(node, "max_failures", path, minimum=0),
                soak_seconds=c.duration(node, "soak", path),
                approval=c.boolean(node, "approval", path, default=False),
                verify=verify.plain() if verify else {},
            )
        return waves

    def match(self, m: LMap, path: str) -> list[tuple[str, int, str]]:
        """Patterns of ``waves.N.match`` with their line and key path."""
        node, full = m.get("match"), join(path, "match")
        if isinstance(node, LScalar) and isinstance(node.value, str):
            return [(node.value, m.key_line("match"), full)]  # one value, like a --limit
        return [(text, line, f"{full}[{i}]")
                for i, (text, line) in enumerate(self.c.strings(m, "match", path))]

    def batch(self, m: LMap, path: str) -> tuple[int | str, ...]:
        node = m.get("batch")
        if node is None:
            return ()
        full = join(path, "batch")
        if isinstance(node, LSeq) and not node.items:
            self.c.add(m.key_line("batch"), full, "must list at least one batch size.")
        items = [(n, f"{full}[{i}]", n.line) for i, n in enumerate(node)] if isinstance(
            node, LSeq) else [(node, full, m.key_line("batch"))]
        sizes: list[int | str] = []
        for item, where, line in items:
            value = item.value if isinstance(item, LScalar) else None
            if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
                sizes.append(value)
                continue
            pct = _PERCENT.fullmatch(value) if isinstance(value, str) else None
            if pct and 0 < Decimal(pct.group(1)) <= 100:
                sizes.append(f"{pct.group(1)}%")
                continue
            self.c.add(line, where, "must be a positive integer, a percentage such as '25%', or a "
                       f"list of those (a ramp, e.g. [1, 5, '20%']), got {item.kind}.")
        return tuple(sizes)

    # -- repos and Deployments ----------------------------------------------------------

    def repos(
        self,
        top: LMap,
        defaults: Defaults,
        runners: Mapping[str, Runner],
        groups: Mapping[str, Group],
    ) -> tuple[dict[str, Repo], list[_Draft]]:
        c = self.c
        m = c.mapping(top, "repos", "")
        repos: dict[str, Repo] = {}
        drafts: list[_Draft] = []
        for name, node in (m.items() if m else ()):
            path, line = join("repos", name), m.key_line(name)  # type: ignore[union-attr]
            if not self.name_ok(name, path, line) or not c.expect(node, LMap, path, line):
                continue
            assert isinstance(node, LMap)
            c.keys(node, REPO_KEYS, path, required=("path",))
            runner = c.string(node, "runner", path, default=defaults.runner) or defaults.runner
            if "runner" in node:
                self.check_runner(runner, node.key_line("runner"), join(path, "runner"), runners)
            repo_groups = c.strings(node, "groups", path)
            bad_groups = not all(
                [self.check_group(g, ln, join(path, "groups"), groups) for g, ln in repo_groups])
            template = self.template(node, path)
            dockerfile = self.dockerfile(node, path, defaults.dockerfile)
            repo_path = self.repo_path(node, path, runners.get(runner), dockerfile, template)
            repos[name] = Repo(
                name=name,
                path=repo_path,
                dockerfile=dockerfile,
                template=template,
                runner=runner,
                groups=tuple(g for g, _ in repo_groups),
                vars=c.vars(node, "vars", path),
                line=line,
            )
            seq = c.sequence(node, "deployments", path)
            for i, item in enumerate(seq or ()):
                draft = self.deployment(item, f"{path}.deployments[{i}]", name, groups)
                if draft is not None:
                    draft.direct_groups[:0] = [g for g, _ in repo_groups]
                    draft.unknown_group |= bad_groups
                    drafts.append(draft)
        return repos, drafts

    def repo_path(
        self,
        node: LMap,
        path: str,
        runner: Runner | None,
        dockerfile: str,
        template: TemplateRef | None,
    ) -> Path:
        text = self.c.string(node, "path", path)
        if text is None:
            return Path()
        if runner is None or not runner.is_local:
            return Path(text)  # lives on the build host: nothing to check from here
        # os.path on strings: a third of pathlib's cost, which shows at 2,000 repos.
        local = self.resolve_str(text)
        if not os.path.isdir(local):
            self.c.add(node.key_line("path"), join(path, "path"),
                       f"directory '{local}' does not exist. Fix the path (relative paths start "
                       "at the inventory's directory).")
        elif template is None and not os.path.isfile(os.path.join(local, dockerfile)):
            key = "dockerfile" if "dockerfile" in node else "path"
            self.c.add(node.key_line(key), join(path, "dockerfile"),
                       f"'{os.path.join(local, dockerfile)}' does not exist. Add the Dockerfile, "
                       "set 'dockerfile' to its path in the repo, or make the repo "
                       "template-managed.")
        return Path(local)

    def template(self, node: LMap, path: str) -> TemplateRef | None:
        m = self.c.mapping(node, "template", path)
        if m is None:
            return None
        full = join(path, "template")
        self.c.keys(m, TEMPLATE_KEYS, full, required=("name",))
        name = self.c.string(m, "name", full)
        if name is None:
            return None
        if PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
            self.c.add(m.key_line("name"), join(full, "name"),
                       f"'{name}' must be a file name inside templates/, not a path outside it.")
        return TemplateRef(name, self.c.vars(m, "vars", full))

    def dockerfile(self, m: LMap, path: str, default: str) -> str:
        value = self.c.string(m, "dockerfile", path, default=default) or default
        if value.startswith("/"):
            self.c.add(m.key_line("dockerfile"), join(path, "dockerfile"),
                       f"'{value}' must be relative to the repo's path, e.g. 'Dockerfile'.")
        return value

    def deployment(
        self, item: Located, path: str, repo: str, groups: Mapping[str, Group]
    ) -> _Draft | None:
        c = self.c
        if item.__class__ is not LMap and not c.expect(item, LMap, path):
            return None
        assert isinstance(item, LMap)
        c.keys(item, DEPLOYMENT_KEYS, path, required=("id", "name", "workspace_id"))
        own_groups = c.strings(item, "groups", path)
        ok = True
        if any(g not in groups for g, _ in own_groups):
            ok = all([self.check_group(g, ln, join(path, "groups"), groups)
                      for g, ln in own_groups])
        return _Draft(
            id=c.string(item, "id", path),
            name=c.string(item, "name", path),
            workspace_id=c.string(item, "workspace_id", path),
            repo=repo,
            wave=c.integer(item, "wave", path, minimum=1),
            direct_groups=[g for g, _ in own_groups],
            vars=c.vars(item, "vars", path),
            line=item.line,
            path=path,
            node=item,
            unknown_group=not ok,
        )

    # -- cross-references ---------------------------------------------------------------

    def name_ok(self, name: Any, path: str, line: int) -> bool:
        if isinstance(name, str) and name.strip():
            return True
        self.c.add(line, path, "names must be non-empty strings. Quote or rename it.")
        return False

    def check_runner(self, name: str, line: int, path: str, runners: Mapping[str, Runner]) -> None:
        self.c.reference(name, line, path, runners, "runner",
                         "Define it under runners: or use 'local'.")

    def check_group(self, name: str, line: int, path: str, groups: Mapping[str, Any]) -> bool:
        return self.c.reference(name, line, path, groups, "group",
                                "Define it under groups: or fix the name.")

    def check_names(
        self, groups: Mapping[str, Group], repos: Mapping[str, Repo], drafts: list[_Draft]
    ) -> None:
        """One namespace for --limit: group, repo and Deployment names and ids never clash."""
        # Where a name was claimed: (line, key path), or (draft, key) worked out only when
        # there is a clash, so the 10,000-Deployment case does no formatting.
        owners: dict[str, tuple[str, object, tuple[Any, str]]] = {}

        def spot(where: tuple[Any, str]) -> tuple[int | None, str]:
            first, key = where
            if isinstance(first, _Draft):
                return first.node.key_line(key), f"{first.path}.{key}"
            return first, key

        def claim(name: str | None, kind: str, owner: object, where: tuple[Any, str]) -> None:
            if name is None:
                return
            previous = owners.setdefault(name, (kind, owner, where))
            if previous[1] is owner and name != ALL:
                return
            line, path = spot(where)
            if name == ALL:
                self.c.add(line, path, "'all' is reserved: it selects every Deployment. "
                           "Choose another name.")
                return
            was, _, was_where = previous
            was_line, was_path = spot(was_where)
            if (was_line or 0) > (line or 0):  # report the clash where it comes second
                kind, was = was, kind
                line, path, was_line, was_path = was_line, was_path, line, path
            at = f"line {was_line} ({was_path})"
            if kind == was == "Deployment id":
                message = (f"Deployment id '{name}' is already used at {at}. Each Deployment "
                           "must appear once; remove the duplicate or fix the id.")
            elif kind == was == "Deployment name":
                message = (f"Deployment name '{name}' is already used at {at}. "
                           "Names must be unique; rename one.")
            else:
                message = (f"'{name}' is both a {kind} and a {was} at {at}, so --limit "
                           f"'{name}' would be ambiguous. Rename one.")
            self.c.add(line, path, message)

        for g in groups.values():
            claim(g.name, "group", g, (g.line, f"groups.{g.name}"))
        for r in repos.values():
            claim(r.name, "repo", r, (r.line, f"repos.{r.name}"))
        for d in drafts:
            claim(d.name, "Deployment name", d, (d, "name"))
        for d in drafts:
            claim(d.id, "Deployment id", d, (d, "id"))

    # -- derived: membership, waves, vars -----------------------------------------------

    def closure_of(self, groups: Mapping[str, Group]) -> Any:
        """A memoised function: direct groups -> those groups plus all their ancestors."""
        ancestors: dict[str, frozenset[str]] = {}
        memo: dict[tuple[str, ...], frozenset[str]] = {}

        def up(g: str) -> frozenset[str]:
            if g not in ancestors:
                seen, todo = {g}, [g]
                while todo:
                    for p in self.parents.get(todo.pop(), ()):
                        if p not in seen:
                            seen.add(p)
                            todo.append(p)
                ancestors[g] = frozenset(seen)
            return ancestors[g]

        def closure(direct: tuple[str, ...]) -> frozenset[str]:
            if direct not in memo:
                memo[direct] = frozenset().union(*(up(g) for g in direct if g in groups))
            return memo[direct]

        return closure

    def index(
        self,
        drafts: list[_Draft],
        member_of: list[frozenset[str]],
        groups: Mapping[str, Group],
        repos: Mapping[str, Repo],
    ) -> Index:
        group_members: dict[str, list[int]] = {g: [] for g in groups}
        repo_members: dict[str, list[int]] = {}
        for i, (d, member) in enumerate(zip(drafts, member_of, strict=True)):
            for g in member:
                group_members[g].append(i)
            repo_members.setdefault(d.repo, []).append(i)
        for repo in repos:
            repo_members.setdefault(repo, [])
        return Index([d.name for d in drafts], [d.id for d in drafts], group_members, repo_members)

    def rules(self, waves: Mapping[int, WaveSettings], index: Index) -> list[tuple[int, set[int]]]:
        rules = []
        for number in sorted(waves):
            settings, ok, terms = waves[number], True, []
            where = self.match_where.get(number, [])
            for text, (line, key) in zip(settings.match, where, strict=True):
                try:
                    parsed = parse_terms([text])
                    for term in parsed:
                        index.resolve(term)
                    terms.extend(parsed)
                except InputError as exc:
                    self.c.add(line, key, str(exc))
                    ok = False
                    self.broken_rules = True
            if ok and terms:
                rules.append((number, index.evaluate(terms)))
        return rules

    def settle(
        self,
        drafts: list[_Draft],
        member_of: list[frozenset[str]],
        rules: list[tuple[int, set[int]]],
        groups: Mapping[str, Group],
        defaults: Defaults,
        repos: Mapping[str, Repo],
    ) -> list[Deployment]:
        by_rule: dict[int, int] = {}
        for number, chosen in rules:  # ascending: the first rule that matches wins
            for i in chosen:
                by_rule.setdefault(i, number)
        by_groups: dict[frozenset[str], tuple[int | None, str]] = {}
        group_layers: dict[frozenset[str], list[tuple[str, Mapping[str, Any]]]] = {}
        deployments = []
        for i, (d, member) in enumerate(zip(drafts, member_of, strict=True)):
            wave, source = d.wave, "deployment"
            if wave is None and i in by_rule:
                wave = by_rule[i]
                source = f"waves.{wave}.match"
            if wave is None:
                if member not in by_groups:
                    found = sorted((groups[g].wave, g) for g in member if groups[g].wave)
                    by_groups[member] = (found[0][0], f"group {found[0][1]}") if found else (
                        None, "")
                wave, source = by_groups[member]
            if wave is None:
                if not d.unknown_group and "wave" not in d.node and not self.broken_rules:
                    self.c.add(d.line, d.path, f"Deployment '{d.name}' has no wave. Give it one: "
                               "set 'wave: N' on it, match it in waves.N.match, or put it in a "
                               "group that has a 'wave'.")
                continue
            if d.id is None or d.name is None or d.workspace_id is None:
                continue
            if member not in group_layers:
                group_layers[member] = _group_layers(groups, member)
            layers = _layers(defaults.vars, group_layers[member], repos[d.repo], d.name, d.vars)
            values, _ = merge(layers)
            deployments.append(Deployment(
                id=d.id, name=d.name, workspace_id=d.workspace_id, repo=d.repo, wave=wave,
                groups=member, vars=values, own_vars=d.vars, wave_source=source, line=d.line,
            ))
        return deployments
