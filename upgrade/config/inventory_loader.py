"""Load and validate ``inventory.yaml`` into the typed model of ``upgrade.config.inventory``.

One walk over the located tree, every problem collected by one ``Checker`` and raised at
once as an ``InventoryError`` (``inventory.yaml:LINE: key.path: problem. What to do.``).
Each settings section has its own module (runners, groups, waves, the control plane,
notifications, verification); this one holds the top level, repos and Deployments, and
names; what is derived from them all (membership, waves, merged variables) is settled by
``upgrade.config.settle``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from upgrade.config.checker import Checker
from upgrade.config.control_plane import read_control_plane
from upgrade.config.git import check_git, git_layers, merge_git, read_git_layer
from upgrade.config.groups import Group, read_groups
from upgrade.config.inventory import (
    ASTRO_ID,
    ASTRO_ID_RULE,
    DEFAULT_DOCKERFILE,
    Defaults,
    Inventory,
    Repo,
    TemplateRef,
)
from upgrade.config.located import LMap, Located, LScalar, join, load
from upgrade.config.notifications import read_notifications
from upgrade.config.repos import URL_KEYS, check_managed, read_managed, read_workdir
from upgrade.config.runners import LOCAL, Runner, read_runners
from upgrade.config.selection import ALL
from upgrade.config.settings import read_catalog, read_journal, read_playbook, read_templates
from upgrade.config.settle import Draft, VerifyVars, index_of, settle, wave_rules
from upgrade.config.targets import Target, TargetSource, read_target, single
from upgrade.config.waves import MatchLines, WaveSettings, read_waves
from upgrade.errors import InputError, InventoryError, Problem
from upgrade.model.redact import add_secrets, is_secret_name
from upgrade.model.versions import VersionSpec, parse_spec

TOP_KEYS = ("target", "catalog", "control_plane", "journal", "workdir", "playbook",
            "templates", "notifications", "runners", "defaults", "groups", "waves", "repos")
DEFAULTS_KEYS = ("vars", "runner", "dockerfile", "git")
REPO_KEYS = ("path", *URL_KEYS, "dockerfile", "template", "runner", "groups", "vars",
             "deployments", "target", "git")
TEMPLATE_KEYS = ("name", "vars")
DEPLOYMENT_KEYS = ("id", "name", "workspace_id", "wave", "groups", "vars", "target")
INVENTORY_ENV = "ASTRO_FLEET_INVENTORY"
DEFAULT_INVENTORY = "inventory.yaml"


def locate_inventory(flag: str | None, env: Mapping[str, str] | None = None) -> Path:
    """The inventory file: ``--inventory``, else ``$ASTRO_FLEET_INVENTORY``, else
    ``./inventory.yaml``. InputError naming the directory searched when it is not there."""
    env = os.environ if env is None else env
    if flag:
        given, how = flag, "--inventory"
    elif env.get(INVENTORY_ENV, "").strip():
        given, how = env[INVENTORY_ENV].strip(), f"${INVENTORY_ENV}"
    else:
        given, how = DEFAULT_INVENTORY, ""
    path = Path(os.path.expanduser(given))
    # os.path's tests, not Path's: a name too long for the filesystem is "not there" to
    # them, where Path.is_file raises.
    if os.path.isfile(path):
        return path
    where = os.path.abspath(path.parent)
    if not how:
        raise InputError(
            f"no {DEFAULT_INVENTORY} in {where}. Run astro-fleet in your fleet's directory, "
            f"pass --inventory PATH or set {INVENTORY_ENV}, or create one with "
            "`astro-fleet init`.")
    what = "is a directory" if os.path.isdir(path) else f"not found in {where}"
    raise InputError(f"{how} {given}: {path.name} {what}. Fix the path, or create an "
                     "inventory with `astro-fleet init`.")


def load_inventory(path: Path, *, target_override: str | None = None,
                   check_repos: bool = True) -> Inventory:
    """Load and validate an inventory file; raise InventoryError listing every problem.

    ``target_override`` (the ``--target`` flag) replaces the file's ``target``; an invalid
    one raises VersionError naming the flag. ``check_repos=False`` skips checking that the
    repos' directories and Dockerfiles exist (for commands that never read them).
    """
    override = None
    if target_override is not None:
        override = parse_spec(target_override, source=TargetSource.FLAG)
    path = Path(path)
    root = load(path, error=InventoryError)
    inventory = _Loader(path, root, check_repos).build(override)
    # Before anything can print, log, journal or report them.
    add_secrets(*configured_secrets(inventory))
    # --target replaces every layer's target, not only the top level's.
    return inventory if override is None else inventory.overridden(single(override))


def configured_secrets(inventory: Inventory) -> list[str]:
    """Every value the inventory names as secret, read from the environment now: the
    journal's database password (``password_env``, or in the URL of ``url_env``), the
    Airflow token (``control_plane.token_env``), secret-named ``extra_env`` values, each
    repo's forge token (``git.token_env``, else the forge's default variable), the git token
    of each repo given by url (``token_env``) and the webhook's URL. The variables' names
    need not say they hold a secret: the keys do."""
    cp = inventory.control_plane
    names = {cp.token_env}
    for repo in inventory.repos.values():
        settings = repo.git
        if settings.token_env or settings.forge:
            names.add(settings.token_env or settings.token_variable)
    found = [*inventory.journal.secrets(), *(os.environ.get(name) for name in sorted(names)),
             *(secret for repo in inventory.repos.values() if repo.managed
               for secret in repo.managed.secrets()),
             *(value for name, value in cp.extra_env.items() if is_secret_name(name))]
    if inventory.notifications is not None:
        found.append(inventory.notifications.url)
    return [value for value in found if value]


class _Loader:
    """Walks the located tree once, collecting every problem in a Checker."""

    def __init__(self, path: Path, root: Located, check_repos: bool = True) -> None:
        self.path = path
        self.check_repos = check_repos
        self.dir = os.path.abspath(path.parent)
        self.tree = root
        self.c = Checker(str(path))
        self.templates_dir = Path()  # set by build(), before repos are read
        self.workdir = Path()  # set by build(), before repos are read
        self.match_where: MatchLines = {}  # line and key path of each waves.N.match pattern
        # Each repo's own git layer and the line its problems are reported on.
        self.git_of: dict[str, tuple[tuple[dict[str, Any], int] | None, int]] = {}

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
        catalog = read_catalog(c, top, self.resolve)
        journal = read_journal(c, top, self.resolve)
        self.workdir = read_workdir(c, top, self.resolve, journal.dir)
        playbook = read_playbook(c, top, self.resolve)
        templates = read_templates(c, top, self.resolve)
        self.templates_dir = templates.path
        control_plane = read_control_plane(c, top)
        notifications = read_notifications(c, top)
        runners = read_runners(c, top, self.resolve, self.name_ok)
        defaults = self.defaults(top, runners)
        tree = read_groups(c, top, self.name_ok, self.check_group)
        groups = tree.groups
        waves, self.match_where = read_waves(c, top)
        repos, drafts = self.repos(top, defaults, runners, groups)
        self.check_names(groups, repos, drafts)
        closure = tree.closure()
        repos = self.with_git(repos, defaults, groups, closure)
        member_of = [closure(tuple(d.direct_groups)) for d in drafts]
        index = index_of(drafts, member_of, groups, repos)
        rules, broken_rules = wave_rules(c, waves, self.match_where, index)
        deployments = settle(c, drafts, member_of, rules, groups, defaults, repos,
                             VerifyVars(c, top), (target or Target(), "inventory"),
                             broken_rules=broken_rules)
        c.raise_if_any(InventoryError)
        # Every Deployment left out of the model was reported, so positions still line up.
        assert len(deployments) == index.size
        for d in deployments:
            waves.setdefault(d.wave, WaveSettings(d.wave))
        return Inventory(
            path=self.path,
            root=Path(self.dir),
            target=target,
            catalog=catalog,
            journal=journal,
            workdir=self.workdir,
            playbook=playbook,
            templates=templates,
            control_plane=control_plane,
            notifications=notifications,
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

    def target(self, top: LMap, override: VersionSpec | None) -> Target | None:
        """The top level's target; ``--target`` replaces it (the file's is still checked)."""
        written = read_target(self.c, top, "")
        if "target" not in top and override is None:
            self.c.add(top.key_line("target"), "target", 'required key is missing. Add e.g. '
                       'target: "13", or {airflow2: "13", airflow3: "3.1"}, or pass --target.')
        return written

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
            git=read_git_layer(c, m, "defaults"),
        )

    # -- repos and Deployments ----------------------------------------------------------

    def repos(
        self,
        top: LMap,
        defaults: Defaults,
        runners: Mapping[str, Runner],
        groups: Mapping[str, Group],
    ) -> tuple[dict[str, Repo], list[Draft]]:
        c = self.c
        m = c.mapping(top, "repos", "")
        repos: dict[str, Repo] = {}
        drafts: list[Draft] = []
        for name, node in (m.items() if m else ()):
            path, line = join("repos", name), m.key_line(name)  # type: ignore[union-attr]
            if not self.name_ok(name, path, line) or not c.expect(node, LMap, path, line):
                continue
            assert isinstance(node, LMap)
            c.keys(node, REPO_KEYS, path)
            runner = c.string(node, "runner", path, default=defaults.runner) or defaults.runner
            if "runner" in node:
                self.check_runner(runner, node.key_line("runner"), join(path, "runner"), runners)
            repo_groups = c.strings(node, "groups", path)
            bad_groups = not all(
                [self.check_group(g, ln, join(path, "groups"), groups) for g, ln in repo_groups])
            template = self.template(node, path)
            dockerfile = self.dockerfile(node, path, defaults.dockerfile)
            managed = read_managed(c, node, path, name, self.workdir, line)
            repo_path = managed.project if managed else self.repo_path(
                node, path, runners.get(runner), dockerfile, template)
            repos[name] = Repo(
                name=name,
                path=repo_path,
                dockerfile=dockerfile,
                template=template,
                runner=runner,
                groups=tuple(g for g, _ in repo_groups),
                vars=c.vars(node, "vars", path),
                line=line,
                target=read_target(c, node, path),
                managed=managed,
            )
            self.git_of[name] = (read_git_layer(c, node, path), node.key_line("git")
                                 if "git" in node else line)
            seq = c.sequence(node, "deployments", path)
            for i, item in enumerate(seq or ()):
                draft = self.deployment(item, f"{path}.deployments[{i}]", name, groups)
                if draft is not None:
                    draft.direct_groups[:0] = [g for g, _ in repo_groups]
                    draft.unknown_group |= bad_groups
                    drafts.append(draft)
        return repos, drafts

    def with_git(self, repos: dict[str, Repo], defaults: Defaults, groups: Mapping[str, Group],
                 closure: Callable[[tuple[str, ...]], frozenset[str]]) -> dict[str, Repo]:
        """Each repo with its layered ``git:`` setting (defaults → its groups → itself)."""
        out = {}
        for name, repo in repos.items():
            own, line = self.git_of.get(name, (None, repo.line or 0))
            member = sorted((g for g in closure(repo.groups) if g in groups),
                            key=lambda g: (groups[g].depth, g))
            settings = merge_git(git_layers(defaults.git, (groups[g].git for g in member), own))
            check_git(self.c, settings, line, join("repos", name))
            if repo.managed is not None:
                check_managed(self.c, repo.managed, join("repos", name), mode=settings.mode,
                              runner_local=repo.runner == LOCAL, check_env=self.check_repos)
            out[name] = replace(repo, git=settings)
        return out

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
        if not self.check_repos:
            return Path(self.resolve_str(text))
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
        elif self.check_repos and os.path.isdir(self.templates_dir) and not os.path.isfile(
                self.templates_dir / name):
            found = sorted(p.name for p in self.templates_dir.iterdir() if p.is_file())
            self.c.add(m.key_line("name"), join(full, "name"),
                       f"no template '{name}' in {self.templates_dir} (there: "
                       f"{', '.join(found) or 'none'}). Fix the name, or add the template.")
        where_line = m.key_line("vars") if "vars" in m else node.key_line("template")
        where_key = join(full, "vars") if "vars" in m else full
        return TemplateRef(name, self.c.vars(m, "vars", full),
                           where=f"{self.c.file}:{where_line}: {where_key}")

    def dockerfile(self, m: LMap, path: str, default: str) -> str:
        value = self.c.string(m, "dockerfile", path, default=default) or default
        if value.startswith("/"):
            self.c.add(m.key_line("dockerfile"), join(path, "dockerfile"),
                       f"'{value}' must be relative to the repo's path, e.g. 'Dockerfile'.")
        return value

    def deployment(
        self, item: Located, path: str, repo: str, groups: Mapping[str, Group]
    ) -> Draft | None:
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
        return Draft(
            id=self.astro_id(item, "id", path),
            name=c.string(item, "name", path),
            workspace_id=self.astro_id(item, "workspace_id", path),
            repo=repo,
            wave=c.integer(item, "wave", path, minimum=1),
            direct_groups=[g for g, _ in own_groups],
            vars=c.vars(item, "vars", path),
            line=item.line,
            path=path,
            node=item,
            unknown_group=not ok,
            target=read_target(c, item, path),
        )

    def astro_id(self, item: LMap, key: str, path: str) -> str | None:
        """An id as Astro writes it; anything else would be refused (or worse, read as a
        flag) only when a command reaches Astro."""
        value = self.c.string(item, key, path)
        if value is not None and not ASTRO_ID.fullmatch(value):
            self.c.add(item.key_line(key), join(path, key),
                       f"'{value[:40]}' is not an Astro id ({ASTRO_ID_RULE}). Copy it from "
                       "`astro deployment list` or the Astro UI.")
            return None
        return value

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
        self, groups: Mapping[str, Group], repos: Mapping[str, Repo], drafts: list[Draft]
    ) -> None:
        """One namespace for --limit: group, repo and Deployment names and ids never clash."""
        # Where a name was claimed: (line, key path), or (draft, key) worked out only when
        # there is a clash, so the 10,000-Deployment case does no formatting.
        owners: dict[str, tuple[str, object, tuple[Any, str]]] = {}

        def spot(where: tuple[Any, str]) -> tuple[int | None, str]:
            first, key = where
            if isinstance(first, Draft):
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
