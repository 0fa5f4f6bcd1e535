"""The failure budget as a unit: Ansible's max_fail_percentage table, plus max_failures."""

from __future__ import annotations

import pytest

from upgrade.run.rollout.budget import FailureBudget


def run(budget: FailureBudget, batch: int, outcomes: str) -> list[int]:
    """Feed ``outcomes`` (f = failed, . = ok) into one batch; the 1-based positions that
    tripped it (at most one: a budget trips once)."""
    budget.start_batch(batch)
    return [i for i, o in enumerate(outcomes, 1) if budget.record(o == "f")]


# (percentage, batch size, outcomes, position that trips or None). Ansible trips when
# failures are *strictly greater* than the percentage of the batch's size at its start.
TABLE = [
    (0, 4, "f...", 1),          # 0 %: the first failure trips
    (25, 4, "f...", None),      # 1 of 4 = 25 %, not more than 25 %
    (25, 4, "ff..", 2),         # 2 of 4 = 50 % > 25 %
    (30, 10, "fff.......", None),  # 30 % of 10 is 3: three failures are allowed
    (30, 10, "ffff......", 4),  # the fourth failure trips
    (50, 3, "f.f", 3),          # 2 of 3 = 67 % > 50 %
    (49, 2, "f.", 1),           # 1 of 2 = 50 % > 49 %
    (100, 3, "ff.", None),      # 100 % never trips on the percentage...
    (100, 3, "fff", 3),         # ...but a batch in which every Deployment failed stops it
    (None, 2, "ff", 2),         # no percentage: still stops when the whole batch failed
    (None, 3, "f.f", None),
]


@pytest.mark.parametrize(("pct", "size", "outcomes", "trips_at"), TABLE)
def test_max_fail_percentage_table(pct, size, outcomes, trips_at):
    budget = FailureBudget(max_fail_percentage=pct)
    tripped = run(budget, size, outcomes)
    assert tripped == ([] if trips_at is None else [trips_at])


def test_the_message_names_the_budget_and_both_numbers():
    budget = FailureBudget(max_fail_percentage=25)
    run(budget, 4, "ff")
    assert budget.tripped == ("max_fail_percentage tripped: 2 of 4 Deployments in this batch "
                              "failed (50%), more than the 25% allowed")


def test_max_failures_counts_across_batches_and_trips_once_exceeded():
    budget = FailureBudget(max_failures=1)
    assert run(budget, 3, "f..") == []
    assert run(budget, 3, ".f.") == [2]
    assert budget.tripped == ("max_failures tripped: 2 Deployments failed in this wave, more "
                              "than the 1 allowed")
    assert run(budget, 3, "fff") == []  # tripped already: never again


def test_the_percentage_is_per_batch_and_starts_over():
    budget = FailureBudget(max_fail_percentage=50)
    assert run(budget, 4, "ff..") == []  # 50 %, not more
    assert run(budget, 4, "f...") == []  # counted afresh in the next batch
    assert budget.wave_failures == 3


def test_no_budget_never_trips_on_a_partial_failure():
    budget = FailureBudget()
    assert run(budget, 5, "ffff.") == []
    assert budget.tripped is None
