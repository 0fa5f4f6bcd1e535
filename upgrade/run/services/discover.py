"""``discover``: read every Deployment and its latest deploy's git metadata from Astro, find
the repos' checkouts here, and merge what is new into an inventory (written only when
everything was read and the result validates).

A new inventory starts as the commented one ``init`` writes (without naming a playbook or
templates it does not have); ``--merge`` starts from the existing file, whose
``control_plane:`` says which Astro (or stand-in for it) to read.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from upgrade.config.control_plane import ControlPlaneConfig
from upgrade.config.inventory_loader import load_inventory
from upgrade.config.inventory_writer import Merged, NewDeployment, NewRepo, merge_inventory
from upgrade.config.scaffold import default_target, inventory_text
from upgrade.controlplane.deploy_record import latest_with_git, normalise_remote, remote_problem
from upgrade.controlplane.platform import TOKEN_ENV, PlatformReader
from upgrade.errors import AstroAuthError, InputError, InventoryError, PlatformError
from upgrade.hosts import git
from upgrade.hosts.host import LocalHost
from upgrade.model.catalog import load_catalog
from upgrade.plan.discover import DiscoveredDeployment, Discovery, Found, discover

READERS = 8  # deploy-record reads at once
SCAN_DEPTH = 2  # checkouts are looked for in DIR, DIR/*, DIR/*/*


@dataclass(frozen=True)
class Written:
    """What ``discover`` proposed, what it merged, and where it wrote it."""

    discovery: Discovery
    merged: Merged
    url: str  # the platform API read
    output: str  # the file written, or "-" (the caller prints ``merged.text``)
    root: Path  # the directory the inventory's relative paths start at


def discover_inventory(inventory: Path, *, merge: bool, output: str | None,
                       workspaces: Sequence[str], repos_dir: str | None) -> Written:
    """``discover``: refuse what cannot work before reading anything, read, merge, validate,
    then write ``output`` (default: ``inventory``; ``-``: nothing is written)."""
    exists = inventory.is_file()
    if exists and not merge and output is None:
        raise InputError(f"{inventory} exists: --merge adds the Deployments it lacks (keeping "
                         "everything written there), or --output PATH writes a new inventory "
                         "elsewhere ('-' prints it). Nothing was read or written.")
    if merge and not exists:
        raise InputError(f"--merge: there is no {inventory} to merge into (in "
                         f"{inventory.resolve().parent}). Leave --merge out to create it.")
    output = output or str(inventory)
    root = (inventory if output == "-" else Path(output)).resolve().parent
    config, waves, production, base = ControlPlaneConfig(), (1, 2, 3), True, None
    shared = False
    if exists:
        inv = load_inventory(inventory, check_repos=False)
        config, waves, production = inv.control_plane, tuple(inv.waves) or (1,), \
            "production" in inv.groups
        shared = (inv.defaults.git or ({}, 0))[0].get("mode", "local") != "local"
        if merge:
            base = inventory.read_bytes().decode("utf-8")  # as it is: CRLF kept
    if base is None:
        base = inventory_text(default_target(load_catalog(None)), config, own_files=False)
    discovery, url = read_fleet(config, workspaces, Path(repos_dir) if repos_dir else root,
                                waves)
    merged = merge_into(discovery, base, root, production, shared)
    validate(merged.text, root)
    if output != "-":
        Path(output).write_text(merged.text, "utf-8")
    return Written(discovery, merged, url, output, root)


def read_fleet(config: ControlPlaneConfig, workspaces: Sequence[str], repos_dir: Path,
               waves: Sequence[int]) -> tuple[Discovery, str]:
    """Every Deployment (of ``workspaces``, or all) with its git; checkouts under ``repos_dir``."""
    base, token, _ = PlatformReader.endpoint(config)
    reader = PlatformReader.for_config(config)
    if reader is None:
        why = ("no token" if not token else "it would travel without https")
        raise AstroAuthError(
            f"cannot read {base} ({why}): set ${TOKEN_ENV} to an Astro API token that can "
            "read Deployments (an Organization token, or a Workspace token with --workspace), "
            "then run again. Nothing was written.")
    with reader:
        try:
            infos = reader.deployments(tuple(workspaces))
        except PlatformError as exc:
            raise PlatformError(f"{exc} Check the network (and ASTRO_DOMAIN), then run "
                                "again. Nothing was written.") from None

        def one(deployment_id: str) -> Found:
            latest = latest_with_git(reader.deploys(deployment_id))
            return Found(infos[deployment_id], latest.git if latest else None,
                         latest.created_at if latest else None)

        with ThreadPoolExecutor(READERS) as pool:
            found = list(pool.map(one, sorted(infos)))
    blind: dict[str, str] = {}
    discovery = discover(found, find_checkouts(repos_dir, blind=blind), waves)
    return replace(discovery, blind=blind), base


def find_checkouts(root: Path, *, blind: dict[str, str] | None = None) -> dict[str, str]:
    """Repository identity (normalised ``origin``) -> checkout directory, under ``root``.

    ``blind`` collects each checkout the astro CLI would deploy without git metadata, with
    why (see :func:`no_metadata`): their Deployments are the ones discover cannot map.
    """
    host = LocalHost()
    found: dict[str, str] = {}
    level = [Path(root).resolve()]
    for depth in range(SCAN_DEPTH + 1):
        below = []
        for directory in level:
            if (directory / ".git").exists():
                url = git.remote_url(host, str(directory))
                if url:
                    found.setdefault(normalise_remote(url), str(directory))
                why = no_metadata(host, directory, url) if blind is not None else None
                if why and blind is not None:
                    blind[str(directory)] = why
                continue
            if depth < SCAN_DEPTH:
                try:
                    below += sorted(p for p in directory.iterdir()
                                    if p.is_dir() and not p.name.startswith("."))
                except OSError:
                    continue
        level = below
    return found


def no_metadata(host: LocalHost, directory: Path, origin: str | None) -> str | None:
    """Why ``astro deploy`` from this checkout would carry no git metadata (the astro CLI's
    own checks, in its order: reference astro-deploy-git.md), or None."""
    if not git.committed(host, str(directory)):
        return "it has no commits"
    if git.tracked_changes(host, str(directory)):
        return "it has uncommitted changes to tracked files (the CLI skips git metadata then)"
    if origin is None:
        return "it has no 'origin' remote"
    problem = remote_problem(origin)
    if problem:
        return problem
    if _metadata_off(directory / ".astro" / "config.yaml"):
        return "deploy.git_metadata is false in its .astro/config.yaml"
    return None


def _metadata_off(config: Path) -> bool:
    import yaml

    try:
        doc = yaml.safe_load(config.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    deploy = doc.get("deploy") if isinstance(doc, dict) else None
    value = deploy.get("git_metadata") if isinstance(deploy, dict) else None
    return str(value).strip().lower() == "false"


def merge_into(discovery: Discovery, base_text: str, root: Path,
               production_group: bool, shared_default: bool = False) -> Merged:
    """``base_text`` with the discovered Deployments added (see inventory_writer). A repo
    with no checkout here is written by ``url`` with ``git: {mode: direct}`` (a checkout the
    tool keeps must share its commits), unless ``shared_default``: the inventory's
    ``defaults.git.mode`` already says direct or pull-request."""
    repos = []
    for r in discovery.repos:
        source: dict[str, object] = dict(r.source(str(root)))
        if "url" in source and not shared_default:
            source["git"] = {"mode": "direct"}
        comment = (f"discovered: {r.repository}" + (f" ({r.project_dir})" if r.project_dir
                                                   else ""))
        if not r.checkout:
            comment += ("\nno checkout here: cloned by the tool; a private repo over https "
                        "needs token_env: VAR (or git's credential helper)")
        repos.append(NewRepo(name=r.name, source=source, comment=comment,
                             deployments=tuple(_new(d, production_group)
                                               for d in r.deployments)))
    unmapped = [f"{{id: {d.id}, name: {d.name}, workspace_id: {d.workspace_id}, "
                f"wave: {d.wave}}}  # {d.note()}" for d in discovery.unmapped]
    return merge_inventory(base_text, str(root), repos, unmapped)


def _new(d: DiscoveredDeployment, production_group: bool) -> NewDeployment:
    prod = production_group and "prod" in d.wave_reason
    return NewDeployment(d.id, d.name, d.workspace_id, d.wave, d.note(),
                         ("production",) if prod else ())


def validate(text: str, where: Path) -> None:
    """Load ``text`` as an inventory in ``where`` (InventoryError naming the problems)."""
    fd, name = tempfile.mkstemp(prefix=".discover-", suffix=".yaml", dir=where)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        try:
            load_inventory(Path(name), check_repos=False)
        except InventoryError as exc:
            shown = "the inventory discover would write"
            raise InventoryError([replace(p, file=shown) for p in exc.problems]) from None
    finally:
        os.unlink(name)
