"""PostgreSQL restarted under a running enrich consumer: nothing lost, nothing twice,
nothing dead-lettered for a transient error.

This stops the shared local cluster for about four seconds (other tests running at that
moment may see it), so it is one test, and skipped when DATABASE_URL is not the cluster
that deploy/local/postgres.sh runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from enrich.app import create_app
from enrich.settings import EnrichSettings
from terrain_contracts.topics import DEAD_LETTERS, SUBMISSIONS_ENRICHED, SUBMISSIONS_RAW
from terrain_testkit.database import eventually, fetchval
from terrain_testkit.factories import raw_record
from terrain_testkit.processes import local_service
from terrain_testkit.topics import produce, read_topic, running


def _postgres(action: str) -> Any:
    return local_service("postgres", action)


async def test_postgres_restart_mid_stream_loses_and_duplicates_nothing(
    settings_kwargs: dict[str, Any], namespace: str, database_url: str
) -> None:
    if _postgres("status").returncode != 0:
        pytest.skip("PostgreSQL is not the local cluster this test may restart")
    raw = SUBMISSIONS_RAW.name(namespace)
    waves = [[raw_record() for _ in range(100)] for _ in range(3)]
    ids = [key.decode() for wave in waves for key, _ in wave]
    query = "SELECT count(*) FROM terrain.submissions WHERE submission_id = ANY($1::uuid[])"

    async def stored(expected: int) -> int | None:
        try:
            found: int = await fetchval(database_url, query, ids)
        except (OSError, Exception):  # the server is away: not yet
            return None
        return found if found >= expected else None

    settings = EnrichSettings(**settings_kwargs, store_retry_max_s=1.0, batch_max_records=50)
    async with running(create_app(settings)):
        await produce(raw, waves[0])
        assert await eventually(lambda: stored(100)) == 100
        stop = await asyncio.to_thread(_postgres, "stop")
        try:
            assert stop.returncode == 0, stop.stderr
            await produce(raw, waves[1])  # Kafka keeps taking visits meanwhile
            await asyncio.sleep(4)
        finally:
            start = await asyncio.to_thread(_postgres, "start")
        assert start.returncode == 0, start.stderr
        await produce(raw, waves[2])
        assert await eventually(lambda: stored(300), timeout_s=60) == 300
        enriched = await read_topic(SUBMISSIONS_ENRICHED.name(namespace), expect=300)

    assert sorted({r.key.decode() for r in enriched}) == sorted(ids)
    assert len(enriched) == 300
    assert await read_topic(DEAD_LETTERS.name(namespace), expect=1, timeout_s=2) == []
    failed = await fetchval(
        database_url,
        "SELECT count(*) FROM terrain.failed_submissions WHERE source_topic = $1",
        raw,
    )
    assert failed == 0
