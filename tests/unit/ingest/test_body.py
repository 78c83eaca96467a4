from __future__ import annotations

from ingest.body import BodyBudget


def test_the_budget_is_shared_and_given_back() -> None:
    budget = BodyBudget(10)
    assert budget.take(6)
    assert not budget.take(5)  # another request's chunk does not fit beside the first
    assert budget.take(4)
    budget.give_back(6)
    assert budget.take(5) and budget.held == 9
