"""The invoke collection of every command, built from their flag declarations.

A fleet repository's ``tasks.py`` is ``from upgrade.cli.tasks import namespace``, so
``invoke plan`` runs there; the ``astro-fleet`` program (``upgrade.cli.program``) runs the
same collection from any directory. Each task hands its parsed flags to
``upgrade.cli.commands.run`` and exits with the command's code.
"""

from __future__ import annotations

import inspect
from typing import Any

from invoke import Collection, Exit, Task

from upgrade.cli import commands, onboard, soak  # noqa: F401 - each registers its commands
from upgrade.cli.flags import COMMANDS, Command


def task(cmd: Command) -> Task:
    """An invoke Task whose signature, help and iterables are ``cmd``'s flags."""

    def body(c: Any, **given: Any) -> None:
        code = commands.run(cmd.name, given)
        if code:
            raise Exit(code=code)

    # Every flag has a default, so invoke never answers a missing flag itself: the command
    # does, with exit 2 and the flag's help.
    params = [inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)] + [
        inspect.Parameter(flag.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          default=False if flag.type == "bool" else None)
        for flag in cmd.flags
    ]
    body.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    body.__doc__ = cmd.run.__doc__
    name = cmd.name.split(".")[-1]
    return Task(
        body,
        name=name,
        help={flag.name: f"(required) {flag.help}" if flag.required else flag.help
              for flag in cmd.flags},
        iterable=[flag.name for flag in cmd.flags if flag.type == "list"],
    )


def collection() -> Collection:
    """Every command; a dotted one in the sub-collection its prefix names
    (``journal.export`` in ``journal``)."""
    root, groups = Collection(), {}
    for cmd in COMMANDS.values():
        group, _, _ = cmd.name.rpartition(".")
        if group:
            groups.setdefault(group, Collection(group)).add_task(task(cmd))
        else:
            root.add_task(task(cmd))
    for sub in groups.values():
        root.add_collection(sub)
    return root


namespace = collection()
