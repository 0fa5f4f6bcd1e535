"""``astro-fleet init``: the files of a new fleet repository, never over existing ones.

A fleet repository holds the inventory (commented and valid as written), a two-line
``tasks.py`` (so ``invoke plan`` works there too), the default playbook and templates to
customise (copies of the packaged ones, named by the inventory's ``playbook:`` and
``templates:``), a ``.gitignore`` for the journal and a CI workflow: plan on pull
requests, waves by manual dispatch, one run at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from upgrade import __version__
from upgrade.config.settings import PACKAGED, PACKAGED_PLAYBOOK, PACKAGED_TEMPLATES
from upgrade.errors import InputError
from upgrade.model.catalog import Release
from upgrade.model.versions import RuntimeVersion

INIT = PACKAGED / "init"
PRODUCTION = """\
# Astro itself: the astro CLI on PATH, ASTRO_API_TOKEN in the environment. Or the local
# simulator instead: control_plane: {simulator: .sim}, then `astro-fleet sim.start`.
control_plane:
  status_via: auto                 # Astro's API when the token allows it, else astro inspect"""
OWN_FILES = """\
playbook: playbooks/upgrade.yaml   # the steps of a wave: a copy of the packaged one, to change
templates: templates               # Dockerfile templates of template-managed repos"""
PACKAGED_FILES = """\
# playbook: playbooks/upgrade.yaml # your own playbook and templates (astro-fleet init writes
# templates: templates             # copies to change); without these keys the packaged ones run"""
SIMULATOR = """control_plane:
  simulator: {where}{pad}# the local simulator of Astro; drop this key to use Astro itself"""


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


def scaffold(target: str, simulator: str | None = None) -> Scaffold:
    """The files of a new fleet repo aiming at ``target``, on Astro or a ``simulator``."""
    files = {"inventory.yaml": inventory_text(target, simulator, own_files=True)}
    files.update({
        "tasks.py": _read("tasks.py.in"),
        "playbooks/upgrade.yaml": PACKAGED_PLAYBOOK.read_text("utf-8"),
        ".gitignore": _read("gitignore"),
        ".github/workflows/runtime-upgrade.yml":
            _read("runtime-upgrade.yml").replace("@VERSION@", __version__),
    })
    for template in sorted(PACKAGED_TEMPLATES.iterdir()):
        if template.is_file():
            files[f"templates/{template.name}"] = template.read_text("utf-8")
    return Scaffold(files)


def inventory_text(target: str, simulator: str | None = None, *, own_files: bool) -> str:
    """A commented, valid inventory with no repos yet; ``own_files``: it names the
    playbook and templates init copies beside it (else the packaged ones are used)."""
    if simulator:
        pad = " " * max(1, 21 - len(simulator))
        control_plane = SIMULATOR.format(where=simulator, pad=pad)
    else:
        control_plane = PRODUCTION
    written = target if target.startswith(("{", '"')) else f'"{target}"'
    return (_read("inventory.yaml")
            .replace('"@TARGET@"', written.ljust(10))
            .replace("@CONTROL_PLANE@", control_plane)
            .replace("@FILES@", OWN_FILES if own_files else PACKAGED_FILES))


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
