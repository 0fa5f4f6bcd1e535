"""How many deploys run at once: the runner's `parallel` and the wave's `parallel`.

Measured where it happens: the simulator records when each deploy began (its record is
created) and when it was finalized, so overlapping intervals are deploys in flight at once.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from simulators import SimHandle

from tests.rollout.helpers import GenFleet, make_fleet


def _most_at_once(fleet: GenFleet) -> int:
    events = []
    for dep in fleet.deps:
        for deploy in fleet.sim_dep(dep)["deploys"]:
            events.append((_t(deploy["created_at"]), 1))
            events.append((_t(deploy["deployed_at"]), -1))
    events.sort()  # at equal stamps an end (-1) sorts first: touching is not overlapping
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def _t(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize(
    ("wave_parallel", "runner_parallel", "limit"),
    [(10, 2, 2), (3, 10, 3)],
    ids=["runner-limits", "wave-limits"],
)
def test_never_more_deploys_at_once_than_the_tighter_limit(
    tmp_path, sim: SimHandle, wave_parallel: int, runner_parallel: int, limit: int
) -> None:
    fleet = make_fleet(tmp_path, sim, repos=6, wave={"parallel": wave_parallel},
                       runner_parallel=runner_parallel)
    for dep in fleet.deps:  # every build takes 0.5 s longer, so deploys surely overlap
        sim.set_fault(dep.id, deploy_extra_seconds=500)

    out = fleet.invoke("upgrade", "--wave", "1")

    assert out.returncode == 0, out.stdout + out.stderr
    assert fleet.deploy_counts() == {d.name: 1 for d in fleet.deps}
    assert _most_at_once(fleet) == limit
