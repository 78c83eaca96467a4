"""Reliability fixtures: faults are real (a broker stopped, a process killed). A test that
stops Kafka gets a private broker of its own, so the shared one keeps serving the rest."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from terrain_testkit.database import throwaway_database
from terrain_testkit.processes import PrivateBroker
from tests.e2e.conftest import stack, stack_env  # noqa: F401 - the services as processes
from tests.integration.conftest import namespace, settings_kwargs  # noqa: F401


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/reliability/" in str(item.fspath):
            item.add_marker(pytest.mark.reliability)


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """A database per scenario: a notify killed mid-delivery leaves alerts due, and the next
    scenario's notify would deliver them to its own receivers, where they count as
    duplicates or strangers."""
    async with throwaway_database("terrain_reliability") as url:
        yield url


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    broker = PrivateBroker(tmp_path, 19092)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
