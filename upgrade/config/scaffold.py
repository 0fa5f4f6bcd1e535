"""``astro-fleet init``: the files of a new fleet repository, never over existing ones.

A fleet repository holds the inventory (commented and valid as written), a two-line
``tasks.py`` (so ``invoke plan`` works there too), the default playbook and templates to
customise (copies of the packaged ones, named by the inventory's ``playbook:`` and
``templates:``), a ``.gitignore`` for the journal and, with ``--ci github|gitlab``, a
CI pipeline: the plan on pull (merge) requests, one wave per manual run behind an
environment's approval, one run at a time, the reports as artifacts, team state in the
PostgreSQL journal whose URL is a CI secret (the inventory names its variable).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from upgrade import __version__
from upgrade.config.control_plane import ControlPlaneConfig, api_url_problem
from upgrade.config.settings import PACKAGED, PACKAGED_PLAYBOOK, PACKAGED_TEMPLATES
from upgrade.errors import InputError
from upgrade.model.catalog import Release
from upgrade.model.versions import RuntimeVersion

INIT = PACKAGED / "init"
PRODUCTION = """\
# Astro itself: the astro CLI on PATH, ASTRO_API_TOKEN in the environment. Or the local
# simulator instead (docs/simulator.md): astro-fleet init --simulator URL.
control_plane:
  status_via: auto                 # Astro's API when the token allows it, else astro inspect"""
SIMULATOR_NOTE = """\
# The local simulator of Astro (pip install ./simulator from astro-fleet-upgrade's checkout;
# fleet-sim start; export ASTRO_API_TOKEN="$(fleet-sim token)"). Drop this section to use
# Astro itself."""
OWN_FILES = """\
playbook: playbooks/upgrade.yaml   # the steps of a wave: a copy of the packaged one, to change
templates: templates               # Dockerfile templates of template-managed repos"""
LOCAL_JOURNAL = ("journal: .upgrade                  # the rollout journal, its lock and the wave "
                 "reports (git-ignored)")
# A CI runner keeps nothing between runs: the team's journal is a PostgreSQL database whose
# URL (with its password) is a CI secret, exported as this variable.
JOURNAL_ENV = "ASTRO_FLEET_JOURNAL_URL"
TEAM_JOURNAL = f"""\
# The team's journal and lock (PostgreSQL; docs/journal.md): CI runners keep nothing between
# runs. Export the URL (postgresql://user:password@host/db) in {JOURNAL_ENV}, here and as
# the CI secret of that name. Wave reports are written to .upgrade/reports (git-ignored).
journal: {{url_env: {JOURNAL_ENV}}}"""
#: The astro CLI the CI templates install. A git mode deploys with the commit attached:
#: astro-cli 1.40 sends it for GitHub remotes, 1.43 for any other (plan/facts.py's
#: pre-flight refuses an older CLI); this is the release reference astro-cli.md describes.
ASTRO_CLI_VERSION = "1.45.0"
#: ``--ci``: the pipeline file each CI system reads, and its template.
CI_FILES = {"github": (".github/workflows/runtime-upgrade.yml", "runtime-upgrade.yml"),
            "gitlab": (".gitlab-ci.yml", "gitlab-ci.yml")}
PACKAGED_FILES = """\
# playbook: playbooks/upgrade.yaml # your own playbook and templates (astro-fleet init writes
# templates: templates             # copies to change); without these keys the packaged ones run"""


@dataclass(frozen=True)
class Scaffold:
    """The files ``init`` writes: path relative to the fleet directory -> content."""

    files: dict[str, str]

    def existing(self, root: Path) -> list[str]:
        """The files that already exist under ``root`` (init refuses to overwrite them)."""
        return [name for name in self.files if (root / name).exists()]

    def write(self, root: Path) -> list[str]:
        """Write every file under ``root``; InputError listing those in the way, if any."""
        taken = self.existing(root)
        if taken:
            raise InputError(
                f"{root.resolve()} already has {', '.join(taken)}: init writes nothing over "
                "existing files. Move them away, or init another directory (astro-fleet init "
                "DIR).")
        for name, text in self.files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, "utf-8")
        return list(self.files)


def scaffold(target: str, simulator: str | None = None, ci: str | None = None) -> Scaffold:
    """The files of a new fleet repo aiming at ``target``, on Astro or the ``simulator`` at
    that URL; with ``ci`` (``github`` or ``gitlab``), its pipeline and a team journal."""
    if ci is not None and ci not in CI_FILES:
        raise InputError(f"--ci {ci}: expected one of {', '.join(CI_FILES)}.")
    control_plane = simulator_control_plane(simulator) if simulator else None
    files = {"inventory.yaml": inventory_text(target, control_plane, own_files=True,
                                              note=SIMULATOR_NOTE if simulator else "",
                                              team_journal=ci is not None)}
    files.update({
        "tasks.py": _read("tasks.py.in"),
        "playbooks/upgrade.yaml": PACKAGED_PLAYBOOK.read_text("utf-8"),
        ".gitignore": _read("gitignore"),
    })
    if ci is not None:
        name, template = CI_FILES[ci]
        files[name] = ci_text(template)
    for template in sorted(PACKAGED_TEMPLATES.iterdir()):
        if template.is_file():
            files[f"templates/{template.name}"] = template.read_text("utf-8")
    return Scaffold(files)


def simulator_control_plane(url: str) -> ControlPlaneConfig:
    """What reaches the simulator at ``url`` (its own distribution; ``fleet-sim start`` prints
    the URL): its platform API, its ``astro-sim``, plain http to its Airflow APIs, and the
    variable astro-sim finds it by. Only configuration: the product imports none of it."""
    url = url.rstrip("/")
    why = api_url_problem(url)
    if why or not url.startswith("http://"):
        raise InputError(f"--simulator {url}: expected the simulator's http:// URL on this "
                         "machine, e.g. http://127.0.0.1:18764 (`fleet-sim start` prints it).")
    return ControlPlaneConfig(api_url=f"{url}/v1", astro_bin="astro-sim",
                              airflow_scheme="http", extra_env={"ASTRO_SIM_URL": url})


def ci_text(template: str) -> str:
    """A CI template with this release of astro-fleet and the pinned astro CLI filled in."""
    return (_read(template).replace("@VERSION@", __version__)
            .replace("@ASTRO_CLI@", ASTRO_CLI_VERSION))


def inventory_text(target: str, control_plane: ControlPlaneConfig | None = None, *,
                   own_files: bool, note: str = "", team_journal: bool = False) -> str:
    """A commented, valid inventory with no repos yet, reaching Astro (or ``control_plane``
    where that differs from Astro's defaults, under the comment ``note``); ``own_files``: it
    names the playbook and templates init copies beside it (else the packaged ones are used);
    ``team_journal``: the journal is the PostgreSQL database named by $ASTRO_FLEET_JOURNAL_URL."""
    written = target if target.startswith(("{", '"')) else f'"{target}"'
    return (_read("inventory.yaml")
            .replace('"@TARGET@"', written.ljust(10))
            .replace("@JOURNAL@", TEAM_JOURNAL if team_journal else LOCAL_JOURNAL)
            .replace("@CONTROL_PLANE@", control_plane_text(control_plane, note))
            .replace("@FILES@", OWN_FILES if own_files else PACKAGED_FILES))


def control_plane_text(config: ControlPlaneConfig | None, note: str = "") -> str:
    """The ``control_plane:`` section: the keys of ``config`` that differ from Astro's."""
    default = ControlPlaneConfig()
    given = [(f.name, getattr(config, f.name)) for f in fields(ControlPlaneConfig)
             if config is not None and getattr(config, f.name) != getattr(default, f.name)]
    if not given:
        return PRODUCTION
    # JSON is YAML: each value on one line, quoted as needed.
    lines = [f"  {name}: {json.dumps(dict(value) if name == 'extra_env' else value)}"
             for name, value in given]
    return "\n".join(filter(None, (note, "control_plane:", *lines)))


def default_target(catalog: Iterable[Release]) -> str:
    """A safe first target, as inventory YAML: the newest stable Runtime line of each
    Airflow line (``{airflow2: "13.9", airflow3: "3.1"}``), so a fleet on both lines is
    targeted whole; moving a Deployment from Airflow 2 to 3 stays an explicit choice
    (``allow_airflow3``)."""
    best: dict[str, RuntimeVersion] = {}
    for release in catalog:
        v = release.version
        if (not release.yanked and release.channel in ("stable", None) and not v.is_prerelease
                and (v.scheme not in best or v > best[v.scheme])):
            best[v.scheme] = v
    lines = {"airflow2": best.get("af2"), "airflow3": best.get("af3")}
    specs = [f'{line}: "{v.major}.{v.minor}"' for line, v in lines.items() if v is not None]
    return "{" + ", ".join(specs) + "}" if specs else '"latest"'


def _read(name: str) -> str:
    return (INIT / name).read_text("utf-8")
