"""Run the Deployments of one wave: batches, parallelism per wave and per runner, budgets.

A :class:`WaveRunner` takes the wave's items (each Deployment with the journal state it
starts from) through the playbook's steps, batch by batch: at most ``parallel`` at once
and at most each runner's own ``parallel`` on that runner, with the failure budget and
Astro's refusal of the target deciding when no new Deployment starts. One Deployment's
steps are ``item``'s; deciding what a wave is and recording how it ended is ``rollout``'s.
It holds no state between waves.

When the journal's database is lost (``JournalUnreachable``), no new step starts, steps
in flight finish (their outcome unrecorded: the journal only says what it committed), and
:meth:`WaveRunner.run` then raises it, so the command exits 7 and the same command, run
again once the database is back, resumes from what was committed.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

from upgrade.config.playbook import Playbook
from upgrade.config.waves import WaveSettings
from upgrade.errors import DeployRefused, ForgeError, JournalUnreachable, ServiceError
from upgrade.journal.store import Journal
from upgrade.plan.plan import Plan, unique_targets
from upgrade.run.rollout import undo
from upgrade.run.rollout.budget import FailureBudget
from upgrade.run.rollout.item import Item, ItemRunner
from upgrade.run.rollout.progress import ItemResult, Reporter
from upgrade.run.session import Session

DEFAULT_PARALLEL = 10


class WaveRunner:
    """Runs the items of one wave through the playbook. Holds no state between waves."""

    def __init__(
        self,
        fleet: Session,
        journal: Journal,
        playbook: Playbook,
        rollout_id: int,
        wave: WaveSettings,
        plan: Plan,
        reporter: Reporter,
        stop: threading.Event,
    ):
        self.fleet, self.journal, self.playbook = fleet, journal, playbook
        self.rollout_id, self.wave, self.plan = rollout_id, wave, plan
        self.reporter, self.stop = reporter, stop
        self.items = ItemRunner(fleet, journal, playbook, rollout_id, wave, plan, reporter, stop)
        self._lock = threading.Lock()
        self._stopped_by: ServiceError | None = None  # the journal's database, or a forge
        self._halted_for_target = False

    # ------------------------------------------------------------------ scheduling

    def run(self, items: list[Item]) -> tuple[str | None, dict[str, ItemResult]]:
        """Run ``items`` batch by batch; return (budget trip message, result per name).

        Raises JournalUnreachable, once every step in flight has finished, when the
        journal's database was lost during the wave.
        """
        results: dict[str, ItemResult] = {}
        budget = FailureBudget(self.wave.max_fail_percentage, self.wave.max_failures)
        sizes = self.wave.batch_sizes(len(items))
        targets = ", ".join(str(v) for v in unique_targets(i.planned for i in items)) or "none"
        self.reporter.wave_started(self.wave.number, targets, len(items), sizes)
        position = 0
        limit = self.wave.parallel or DEFAULT_PARALLEL
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="deploy") as pool:
            for index, size in enumerate(sizes):
                if self.stop.is_set() or budget.tripped:
                    break
                batch = items[position : position + size]
                position += size
                budget.start_batch(size)
                # Recorded so reports can mark where each batch began and what it held.
                self.journal.event("batch_started", rollout_id=self.rollout_id,
                                   wave=self.wave.number,
                                   data={"batch": index + 1, "of": len(sizes), "size": size,
                                         "deployments": [i.deployment.id for i in batch]})
                self.reporter.batch_started(index + 1, size)
                self._run_batch(pool, batch, limit, budget, results)
        self.reporter.wave_finished()
        if self.items.unsupported is not None:
            self._undo_unused_changes()
        if self._stopped_by is not None:
            raise self._stopped_by
        return budget.tripped, results

    def _run_batch(
        self,
        pool: ThreadPoolExecutor,
        batch: list[Item],
        limit: int,
        budget: FailureBudget,
        results: dict[str, ItemResult],
    ) -> None:
        waiting: deque[Item] = deque(batch)
        busy: dict[str, int] = {}  # runner name -> Deployments in flight
        in_flight: dict[Future[ItemResult], Item] = {}
        # Finished futures arrive on a queue: waiting on all in-flight futures again after
        # every completion cost a fifth of the orchestrator's CPU at parallel 50.
        finished: queue.SimpleQueue[Future[ItemResult]] = queue.SimpleQueue()
        while waiting or in_flight:
            while waiting and len(in_flight) < limit and not (self.stop.is_set() or budget.tripped):
                item = self._next_startable(waiting, busy)
                if item is None:
                    break
                runner = self.fleet.inventory.runner_of(item.deployment)
                busy[runner.name] = busy.get(runner.name, 0) + 1
                future = pool.submit(self._run_item, item)
                in_flight[future] = item
                future.add_done_callback(finished.put)
            if not in_flight:
                break
            future = finished.get()
            item = in_flight.pop(future)
            runner = self.fleet.inventory.runner_of(item.deployment)
            busy[runner.name] -= 1
            result = future.result()
            results[item.deployment.name] = result
            if result == "interrupted":
                continue
            if self.items.unsupported is not None and not self._halted_for_target:
                # Every later Deployment would be refused the same way: stop at the first.
                self._halted_for_target = True
                budget.tripped = self._target_message(self.items.unsupported)
                self.reporter.note(budget.tripped)
                continue
            tripped = budget.record(result == "failed")
            if tripped:
                self.reporter.note(f"budget tripped: {tripped}; no new Deployment starts")

    @property
    def target_refused(self) -> bool:
        """True once Astro refused the wave's target as unsupported (the wave stopped)."""
        return self.items.unsupported is not None

    def _target_message(self, exc: DeployRefused) -> str:
        versions = exc.supported_versions
        supported = ", ".join(versions[-5:]) + (", …" if len(versions) > 5 else "")
        targets = ", ".join(str(v) for v in unique_targets(self.plan.deployments)) or "?"
        return (f"Astro does not support the rollout's target ({targets}): "
                f"{exc.image or 'the image'} was refused as unsupported"
                f"{f' (it supports {supported})' if versions else ''}; no new Deployment "
                "starts. Abandon the rollout (astro-fleet abandon --reason …) and start one with "
                "a target Astro supports.")

    def _undo_unused_changes(self) -> None:
        """After a target refusal: say how to take back each repo's unused commit (and
        journal it, so reports show it)."""
        names = undo.never_deployed(self.journal.deployments(self.rollout_id))
        inventory = self.fleet.inventory
        lines = undo.undo_lines(
            [inventory.repos[name] for name in names if name in inventory.repos],
            lambda name: self.journal.repo_change(self.rollout_id, name),
            self.items.local_branch,
        )
        if not lines:
            return
        self.journal.event("never_deployed", rollout_id=self.rollout_id,
                           wave=self.wave.number, data={"undo": lines})
        self.reporter.note("rewritten but never deployed; to take each change back:")
        for line in lines:
            self.reporter.note(f"  {line}")

    def _next_startable(self, waiting: deque[Item], busy: dict[str, int]) -> Item | None:
        # The first Deployment whose runner has a free slot: a busy runner never blocks
        # work queued behind it for another runner.
        for i, item in enumerate(waiting):
            runner = self.fleet.inventory.runner_of(item.deployment)
            if busy.get(runner.name, 0) < runner.parallel:
                del waiting[i]
                return item
        return None

    def _run_item(self, item: Item) -> ItemResult:
        try:
            return self.items.work(item)
        except (JournalUnreachable, ForgeError) as exc:
            return self._lost(item, exc)

    def _lost(self, item: Item, exc: JournalUnreachable | ForgeError) -> ItemResult:
        """The journal (or a forge every PR of the wave needs) is gone: start nothing more;
        this Deployment stops where the journal last recorded it."""
        what = ("the journal's database is unreachable" if isinstance(exc, JournalUnreachable)
                else f"the forge failed: {exc}")
        with self._lock:
            first = self._stopped_by is None
            if first:
                self._stopped_by = exc
        if first:
            self.stop.set()
            self.reporter.note(f"{what}: no new step starts; steps in flight finish")
        self.reporter.item_finished(item.deployment.name, "interrupted", f"stopped: {what}")
        return "interrupted"
