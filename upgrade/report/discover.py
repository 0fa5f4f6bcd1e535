"""What ``discover`` found and wrote, as people read it (the JSON is the Discovery's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from upgrade.report import console

if TYPE_CHECKING:
    from upgrade.run.services.discover import Written

SHOWN = 8  # unmapped Deployments named in the summary line; the file lists them all


def print_discovery(written: Written) -> None:
    """A summary on stdout; what to know next (repos by url, unmapped ones) on stderr."""
    found, merged = written.discovery, written.merged
    console.say(f"{found.deployments} Deployment(s) in {len(found.workspaces)} "
                f"workspace(s) at {written.url}: {len(found.repos)} repo(s), "
                f"{len(found.unmapped)} unmapped.")
    console.say(f"{written.output}: added {len(merged.added)} Deployment(s)"
                + (f" in {len(merged.new_repos)} new repo(s)" if merged.new_repos else "")
                + (f"; {merged.kept} already listed" if merged.kept else "")
                + ". Waves are suggestions from the names: check them.")
    missing = found.missing_checkouts()
    if missing:
        names = ", ".join(repo.name for repo in missing)
        console.note(f"no checkout found here of {names}: written by url (the tool clones "
                     "them when a command needs them; a private repo over https needs "
                     "token_env, or git's credential helper).")
    if found.unmapped:
        names = [d.name for d in found.unmapped]
        shown = ", ".join(names[:SHOWN]) + (
            f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
        console.note(f"unmapped: {shown}: their deploys carry no git metadata; they are "
                     f"listed at the end of {written.output}: add each under its repo by hand.")
        if not found.blind:
            console.note("  (the astro CLI sends none from a checkout with no commits, with "
                         "uncommitted changes to tracked files, without an 'origin', with an "
                         "origin that is not a URL, or with deploy.git_metadata false)")
    for directory, why in found.blind.items():
        console.note(f"{directory}: deploys from it carry no git metadata: {why}.")
