"""A synthetic rollout written through the Journal's own API: any number of Deployments,
a fake clock, batches, a failure, a skipped gate. For the report's size and speed tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from upgrade.journal.records import DeploymentEntry
from upgrade.journal.store import Journal
from upgrade.model.versions import parse_version

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
STEPS = (("rendered", 0.4, "wrote Dockerfile"), ("committed", 0.2, "committed abc123 on "
         "runtime-upgrade/13.9.0"), ("deploying", 0.05, "deploy started"),
         ("deployed", 95.0, "deployed image deploy-2026-11-30T09-00 in 95s"),
         ("verified", 40.0, "verified (version, healthy, dag_run)."))


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, at: datetime = START):
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def tick(self, seconds: float) -> datetime:
        self.at += timedelta(seconds=seconds)
        return self.at


def synthetic_rollout(path: Path, deployments: int, *, waves: int = 2, batch: int = 50,
                      fail_every: int = 0) -> Path:
    """A journal at ``path`` with one rollout of ``deployments`` Deployments over ``waves``
    waves (the last one halted when ``fail_every`` fails some, its gate skipped)."""
    clock = Clock()
    with Journal.open(path, clock=clock, actor="tester@ci") as j:
        j.database.execute("PRAGMA synchronous = OFF")  # a fixture, not a durability test
        target = parse_version("13.9.0")
        r = j.start_rollout("13", target, "inventory.yaml")
        per_wave = -(-deployments // waves)
        for w in range(1, waves + 1):
            ids = [f"dep{n:05d}" for n in range((w - 1) * per_wave,
                                                min(deployments, w * per_wave))]
            last = w == waves
            if last and waves > 1:
                clock.tick(3600)
                j.record_skip_gate(r.id, w, "oncall@ops", "CHG-9 emergency fix")
            j.ensure_deployments(r.id, w, [
                DeploymentEntry(i, f"team{int(i[3:]) % 40:02d}-{i}", f"repo{int(i[3:]) % 97}",
                                target, parse_version("12.1.0")) for i in ids])
            j.start_wave(r.id, w, soak_seconds=0 if last else 86400)
            for b in range(0, len(ids), batch):
                chunk = ids[b:b + batch]
                j.event("batch_started", rollout_id=r.id, wave=w,
                        data={"batch": b // batch + 1, "of": -(-len(ids) // batch),
                              "size": len(chunk), "deployments": chunk})
                for n, dep in enumerate(chunk):
                    began = clock.tick(0.01).isoformat()
                    for k, (state, secs, message) in enumerate(STEPS):
                        clock.tick(secs + (n % 7) * 0.3)
                        if last and fail_every and n % fail_every == 1 and state == "deployed":
                            j.transition(r.id, dep, "failed", error="deploy failed: Internal "
                                         "server error (Authorization: Bearer s3cr3t-t0ken)")
                            break
                        j.transition(r.id, dep, state, message=message,
                                     data={"began": began} if k == 0 else None,
                                     count_deploy=state == "deploying")
                    clock.tick(-130)  # the batch's Deployments run side by side
                clock.tick(200)
            failed = [d for d in j.deployments(r.id, w) if d.state == "failed"]
            j.finish_wave(r.id, w, "halted" if failed else "passed",
                          reason=f"{len(failed)} Deployment(s) failed" if failed else None)
            clock.tick(60)
    return path
