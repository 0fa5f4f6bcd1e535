"""Invoke tasks: parse flags, call one function of `upgrade`, exit with its code.

Exit codes (README): 0 done or nothing to do, 1 unexpected error, 2 invalid input,
3 refused by policy, 4 a wave halted, 5 drift found, 6 another run holds the lock.
"""

from __future__ import annotations

from invoke import Exit, task

from upgrade import cli


def _exit(code: int) -> None:
    if code:
        raise Exit(code=code)


@task(
    help={
        "resolve": "Resolve a spec (12.4, 12, 3.1, latest or an exact version) to one release.",
        "feed": "Astronomer runtime feed JSON (file path or http(s) URL) to apply.",
        "mode": "How the feed applies to the bundled snapshot: extend (default) or replace.",
        "json": "Print JSON instead of a table (for runbooks).",
    }
)
def catalog(c, resolve=None, feed=None, mode="extend", json=False):
    """Show the Astro Runtime release catalog, newest first, or resolve one spec."""
    _exit(cli.catalog(feed=feed, mode=mode, resolve=resolve, as_json=json))
