"""A consumer that is alive but cannot progress shows its lag and an ageing commit.

Enrich runs against the real broker and database while its store cannot succeed, in the
two ways a consumer gets stuck: it waits (the test holds an ACCESS EXCLUSIVE lock on
terrain.submissions), or it fails on the same batch again and again (a trigger refuses
every insert with an unexpected error, so the batch is rewound and redelivered forever).
Nothing is committed either way. Lag read from finished batches stayed silent; the monitor
reads the group's committed offsets and must show every record waiting and a commit age
that grows, then lag 0 once the cause is gone.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import REGISTRY

from enrich.app import create_app
from enrich.settings import EnrichSettings
from terrain_contracts.topics import SUBMISSIONS_RAW
from terrain_testkit.database import eventually, fetchval
from terrain_testkit.factories import raw_record
from terrain_testkit.topics import KAFKA, produce, running

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


async def members(group_id: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group_id])
        (group,) = response.to_object()["groups"]
        return len(group["members"])
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def locked(database_url: str) -> AsyncIterator[str]:
    """Every store waits on a lock until the block ends; yields how to see it waiting."""
    blocker = await asyncpg.connect(database_url)
    try:
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE terrain.submissions IN ACCESS EXCLUSIVE MODE")
            yield (
                "SELECT count(*) > 0 FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
    finally:
        await blocker.close()


@contextlib.asynccontextmanager
async def refused(database_url: str) -> AsyncIterator[str]:
    """Every store fails (SQLSTATE XX000, neither transient nor the record's fault) until
    the block ends; yields how to see it failing."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            """CREATE SEQUENCE public.stuck_attempts;
               CREATE FUNCTION public.refuse_submissions() RETURNS trigger
               LANGUAGE plpgsql AS $$
               BEGIN
                   -- A sequence survives the rollback: the test counts the attempts.
                   PERFORM nextval('public.stuck_attempts');
                   RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'XX000';
               END $$;
               CREATE TRIGGER refuse BEFORE INSERT ON terrain.submissions
                   FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_submissions();"""
        )
        try:
            # Two failed attempts at least: the batch came back after its first failure.
            yield "SELECT last_value >= 2 AND is_called FROM public.stuck_attempts"
        finally:
            await connection.execute(
                """DROP TRIGGER refuse ON terrain.submissions;
                   DROP FUNCTION public.refuse_submissions();
                   DROP SEQUENCE public.stuck_attempts;"""
            )
    finally:
        await connection.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cause", [locked, refused], ids=["waits_on_a_lock", "fails_every_time"])
async def test_a_consumer_that_cannot_commit_shows_lag_and_an_ageing_commit(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str, cause: Any
) -> None:
    records = [raw_record() for _ in range(RECORDS)]
    ids = [key.decode() for key, _ in records]
    stored = "SELECT count(*) FROM terrain.submissions WHERE submission_id = ANY($1::uuid[])"
    await produce(SUBMISSIONS_RAW.name(namespace), records)
    settings = EnrichSettings(**settings_kwargs, consumer_lag_interval_s=0.2)
    app = create_app(settings)
    async with contextlib.AsyncExitStack() as cause_in_place:
        # In place before enrich starts: its first batch already cannot be stored.
        stuck = await cause_in_place.enter_async_context(cause(database_url))
        async with running(app):
            # Alive, and stuck: its batch waits on the lock, or keeps coming back.
            assert await eventually(lambda: fetchval(database_url, stuck), timeout_s=60)

            async def stuck_with_every_record() -> bool:
                return lag() == RECORDS and commit_age() > 0

            assert await eventually(stuck_with_every_record, timeout_s=60)
            first = commit_age()

            async def older() -> bool:
                return lag() == RECORDS and commit_age() > first

            assert await eventually(older, timeout_s=30)
            # Measured from outside the group: enrich's consumer is its only member.
            assert await members(settings.group_id) == 1

            # The cause goes away: the batch is stored, committed, and lag drains to 0.
            await cause_in_place.aclose()

            async def caught_up() -> bool:
                return lag() == 0 and commit_age() == 0

            assert await eventually(caught_up, timeout_s=60)
            assert await fetchval(database_url, stored, ids) == RECORDS
