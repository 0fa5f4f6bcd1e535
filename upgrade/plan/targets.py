"""The targets one decision works to, as a value: every spec resolved once, and which
target applies to each Deployment.

A command resolves its targets once, before it decides anything (``upgrade.run.rollout.
pins``): the inventory's layers or the command's ``--target``, resolved now, or an active
rollout's pins (with the target it started with). The planner reads them from this value
only; nothing changes the inventory or the session to make a plan follow a rollout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from upgrade.config.inventory import Deployment
from upgrade.config.targets import Target, TargetSource
from upgrade.journal.records import Rollout
from upgrade.model.catalog import Resolution
from upgrade.model.versions import RuntimeVersion


@dataclass(frozen=True)
class Targets:
    """Every target spec the decision uses, resolved, and where the targets come from."""

    resolutions: Mapping[str, Resolution]  # spec → its resolution (a rollout pins this map)
    source: TargetSource
    # One target over every layer (the command's --target, or the one a followed rollout
    # started with), and where it comes from as messages name it; None: the layers.
    given: Target | None = None
    given_by: str = ""
    rollout: Rollout | None = None  # the rollout whose pins these are (PINNED)
    note: str | None = None  # what a person should know about how these were chosen

    def target_of(self, deployment: Deployment) -> tuple[Target, str]:
        """The target that applies to ``deployment``, and where it comes from."""
        if self.given is not None:
            return self.given, self.given_by
        return deployment.target, deployment.target_source

    @property
    def versions(self) -> dict[str, RuntimeVersion]:
        """spec → exact version, as the journal stores it."""
        return {spec: r.version for spec, r in self.resolutions.items()}

    def describe(self) -> str:
        """``'13' → 13.9.0, '3.1' → 3.1-17``."""
        return describe(self.versions)


def describe(pins: Mapping[str, RuntimeVersion]) -> str:
    """A pin map as messages show it."""
    return ", ".join(f"'{spec}' → {version}" for spec, version in pins.items())
