"""Ctrl-C while the gate re-verifies earlier waves: it says it was interrupted, nothing else.

It used to print "N Deployment(s) of earlier waves no longer pass verification ...
verification interrupted" and suggest `--skip-gate`: a Ctrl-C is no evidence that
anything degraded, and never a reason to skip the gate.
"""

from __future__ import annotations

import signal

import pytest
import yaml
from simulators import SimHandle

from tests.rollout.helpers import make_fleet, wait_for
from upgrade.errors import EXIT_HALTED


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_ctrl_c_during_the_gates_reverification(tmp_path, sim: SimHandle) -> None:
    fleet = make_fleet(tmp_path, sim, repos=2)
    slow, checking = tmp_path / "slow", tmp_path / "checking"
    # Wave 1's own check: instant during wave 1; slow (and announcing itself) once `slow`
    # exists, which is when wave 2's gate runs it again.
    check = (f"if [ -f {slow} ]; then touch {checking}; sleep 20; fi")
    doc = yaml.safe_load(fleet.inventory.read_text())
    doc["waves"] = {1: {"verify": {"checks": [{"name": "command", "argv": ["sh", "-c", check]}]}},
                    2: {}}
    doc["repos"]["r01"]["deployments"][0]["wave"] = 2
    fleet.inventory.write_text(yaml.safe_dump(doc, sort_keys=False))

    one = fleet.invoke("upgrade", "--wave", "1")
    assert one.returncode == 0, one.stdout + one.stderr

    slow.touch()
    child = fleet.start("upgrade", "--wave", "2")
    try:
        wait_for(checking.exists, timeout=60, what="the gate's re-verification")
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    except BaseException:
        child.kill()
        raise
    said = out + err
    assert child.returncode == EXIT_HALTED, said
    assert "interrupted while the gate re-verified the 1 Deployment(s) of earlier waves" in said
    assert "wave 2 did not start and nothing was recorded" in said
    assert "no longer pass verification" not in said
    assert "--skip-gate" not in said
    with fleet.journal() as journal:
        [rollout] = journal.rollouts()
        assert journal.wave(rollout.id, 2) is None  # nothing of wave 2 written

    slow.unlink()
    two = fleet.invoke("upgrade", "--wave", "2")
    assert two.returncode == 0, two.stdout + two.stderr
