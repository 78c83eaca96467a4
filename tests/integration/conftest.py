"""Integration fixtures: the real Kafka broker and PostgreSQL server from deploy/local
(or those named by KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL). One throwaway database per
session, one fresh set of topics per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from terrain_testkit.database import throwaway_database
from terrain_testkit.topics import KAFKA, throwaway_topics


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    async with throwaway_database("terrain_test") as url:
        yield url


@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    async with throwaway_topics() as ns:
        yield ns


@pytest.fixture
def settings_kwargs(database_url: str, namespace: str) -> dict[str, object]:
    """What every service's settings need to talk to this test's broker, topics and database."""
    return {
        "environment": "test",
        "kafka_bootstrap_servers": KAFKA,
        "topic_namespace": namespace,
        "database_url": database_url,
    }
