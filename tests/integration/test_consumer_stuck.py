"""A consumer that is alive but cannot progress shows its lag and an ageing commit.

Enrich runs against the real broker and database while the test holds an ACCESS EXCLUSIVE
lock on terrain.submissions: every batch waits on the lock (then times out and retries),
nothing is committed. Lag read from finished batches would stay silent; the monitor reads
the group's committed offsets and must show every record waiting and a commit age that
grows, then lag 0 once the lock is gone.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from enrich.app import create_app
from enrich.settings import EnrichSettings
from terrain_contracts.topics import SUBMISSIONS_RAW
from tests.factories import raw_record
from tests.helpers import eventually, fetchval, produce, running

RECORDS = 30


def _gauges(name: str) -> list[float]:
    values = (
        REGISTRY.get_sample_value(
            name,
            {"service": "enrich", "topic": SUBMISSIONS_RAW.id, "partition": str(partition)},
        )
        for partition in range(SUBMISSIONS_RAW.partitions)
    )
    return [value for value in values if value is not None]


def lag() -> float:
    return sum(_gauges("terrain_consumer_lag"))


def commit_age() -> float:
    return max(_gauges("terrain_consumer_commit_age_seconds"), default=0.0)


@pytest.mark.timeout(120)
async def test_a_consumer_that_cannot_commit_shows_lag_and_an_ageing_commit(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str
) -> None:
    records = [raw_record() for _ in range(RECORDS)]
    ids = [key.decode() for key, _ in records]
    blocker = await asyncpg.connect(database_url)
    lock = blocker.transaction()
    await lock.start()
    await blocker.execute("LOCK TABLE terrain.submissions IN ACCESS EXCLUSIVE MODE")
    released = False
    try:
        await produce(SUBMISSIONS_RAW.name(namespace), records)
        app = create_app(EnrichSettings(**settings_kwargs, consumer_lag_interval_s=0.2))
        async with running(app):
            # Alive, and stuck: its batch waits on the lock inside the store.
            waiting = (
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            assert await eventually(lambda: fetchval(database_url, waiting), timeout_s=60)

            async def stuck_with_every_record() -> bool:
                return lag() == RECORDS and commit_age() > 0

            assert await eventually(stuck_with_every_record, timeout_s=60)
            first = commit_age()

            async def older() -> bool:
                return lag() == RECORDS and commit_age() > first

            assert await eventually(older, timeout_s=30)
            stored = (
                "SELECT count(*) FROM terrain.submissions WHERE submission_id = ANY($1::uuid[])"
            )

            # The cause goes away: the batch is stored, committed, and lag drains to 0.
            await lock.rollback()
            released = True

            async def caught_up() -> bool:
                return lag() == 0 and commit_age() == 0

            assert await eventually(caught_up, timeout_s=60)
            assert await fetchval(database_url, stored, ids) == RECORDS
    finally:
        if not released:
            await lock.rollback()
        await blocker.close()
